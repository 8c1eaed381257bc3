//! The plan: which schedulers and workloads run, with which parameters, on
//! which devices, how many times, and how long that should take.

use std::collections::BTreeMap;
use std::ffi::CString;

use serde_json::{json, Value};

use storeland::bench::model::{label, SchedulerInfo, Skipped, WorkloadInfo, BASELINE};
use storeland::bench::sysinfo::{CpuTopology, Drive};
use storeland::topology::cpu_list;

use crate::cli::{scheduler_name, UsageError};
use crate::discover::{Discovery, Messaging};

/// The default high queue depth of the IOPS workloads (--high-qd).
pub const HIGH_QD: u32 = 32;
/// Queue depth of each mixed-scenario job.
pub const MIXED_QD: u32 = 4;
/// Seconds the hogs run before fio starts.
pub const HOG_WARMUP_S: f64 = 1.0;
/// Real-time priority of fio in the floor workloads (qd1-hogs-rt, qdN-hogs-rt).
pub const FLOOR_FIFO_PRIO: i32 = 50;
/// Estimated seconds to attach and detach a sched_ext scheduler.
pub const ATTACH_EST_S: f64 = 6.0;

#[derive(Debug, Clone)]
pub struct Settings {
    pub reps: u32,
    pub runtime_s: f64,
    pub ramp_s: f64,
    pub quick: bool,
    pub allow_writes: bool,
    /// Queue depth of the IOPS workloads.
    pub high_qd: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// With `rt`, fio runs in SCHED_FIFO: the machine's latency floor.
    Fio {
        iodepth: u32,
        hogs: bool,
        rt: bool,
    },
    Mixed,
    Messaging,
    Schbench,
}

/// What a fio workload's name asks for: qd1 or qd<high_qd>, then -hogs,
/// then -rt (fio in SCHED_FIFO).
#[derive(Debug, PartialEq)]
pub struct FioVariant {
    pub iodepth: u32,
    pub hogs: bool,
    pub rt: bool,
}

pub fn fio_variant(name: &str, high_qd: u32) -> Option<FioVariant> {
    let rt = name.ends_with("-rt");
    let rest = name.strip_suffix("-rt").unwrap_or(name);
    let hogs = rest.ends_with("-hogs");
    let base = rest.strip_suffix("-hogs").unwrap_or(rest);
    let iodepth = match base.strip_prefix("qd")?.parse::<u32>().ok()? {
        1 => 1,
        n if n == high_qd => n,
        _ => return None,
    };
    Some(FioVariant { iodepth, hogs, rt })
}

/// One mixed-scenario fio job: a drive read (and written) from one CCX.
#[derive(Debug, Clone)]
pub struct MixedJob {
    pub ccx: usize,
    pub drive: Drive,
    pub cpus: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    pub kind: Kind,
    pub title: String,
    pub params: BTreeMap<String, Value>,
    pub estimate_s: f64,
    /// True when this workload writes to the devices (mixed + --allow-writes).
    pub writes: bool,
}

impl Workload {
    pub fn info(&self) -> WorkloadInfo {
        WorkloadInfo {
            name: self.name.to_string(),
            title: self.title.clone(),
            params: self.params.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub schedulers: Vec<SchedulerInfo>,
    pub workloads: Vec<Workload>,
    pub drives: Vec<Drive>,
    pub mixed_jobs: Vec<MixedJob>,
    pub settings: Settings,
    pub skipped: Vec<Skipped>,
    pub msg_groups: u32,
    pub msg_loops: u32,
}

fn readable(path: &str) -> bool {
    CString::new(path)
        // SAFETY: access(2) only reads the NUL-terminated path.
        .map(|c| unsafe { libc::access(c.as_ptr(), libc::R_OK) } == 0)
        .unwrap_or(false)
}

/// Drives for the mixed scenario: a drive goes to the CCX its interrupts
/// land on when that is known and free, else round robin; every CCX gets
/// at least one job.
pub fn mixed_jobs(topo: &CpuTopology, drives: &[Drive]) -> Vec<MixedJob> {
    let n = topo.llcs.len();
    if drives.is_empty() || n == 0 {
        return vec![];
    }
    let home = |d: &Drive| {
        d.irqs
            .as_ref()
            .filter(|i| i.home_llcs.len() == 1)
            .map(|i| i.home_llcs[0])
            .filter(|&c| c < n)
    };
    let mut per_ccx: Vec<Vec<&Drive>> = vec![Vec::new(); n];
    for d in drives {
        if let Some(c) = home(d) {
            per_ccx[c].push(d);
        }
    }
    // The rest to the least-loaded CCX (lowest index on ties).
    for d in drives.iter().filter(|d| home(d).is_none()) {
        let c = (0..n).min_by_key(|&c| per_ccx[c].len()).unwrap_or(0);
        per_ccx[c].push(d);
    }
    // A CCX left without a drive shares one (the CCX's index modulo count).
    for (c, list) in per_ccx.iter_mut().enumerate() {
        if list.is_empty() {
            list.push(&drives[c % drives.len()]);
        }
    }
    per_ccx
        .into_iter()
        .enumerate()
        .flat_map(|(ccx, list)| {
            list.into_iter().map(move |d| MixedJob {
                ccx,
                drive: d.clone(),
                cpus: topo.llcs[ccx].clone(),
            })
        })
        .collect()
}

pub fn build(
    disc: &Discovery,
    want_scheds: &Option<Vec<String>>,
    want_workloads: &[String],
    settings: Settings,
) -> Result<Plan, UsageError> {
    let mut skipped = Vec::new();

    // Schedulers.
    let mut schedulers = Vec::new();
    let names: Vec<String> = match want_scheds {
        None => disc
            .candidates
            .iter()
            .map(|c| c.info.name.clone())
            .collect(),
        Some(list) => {
            let mut v = Vec::new();
            for s in list.iter().filter(|s| !s.trim().is_empty()) {
                if s.trim() == "all" {
                    v.extend(disc.candidates.iter().map(|c| c.info.name.clone()));
                } else {
                    v.push(scheduler_name(s)?);
                }
            }
            if v.is_empty() {
                return Err(UsageError("--schedulers is empty".into()));
            }
            v
        }
    };
    for name in names {
        if schedulers.iter().any(|s: &SchedulerInfo| s.name == name) {
            continue;
        }
        match disc.candidates.iter().find(|c| c.info.name == name) {
            Some(c) => match &c.unavailable {
                None => schedulers.push(c.info.clone()),
                Some(why) => skipped.push(Skipped {
                    what: format!("scheduler {}", label(&name)),
                    why: why.clone(),
                }),
            },
            None => skipped.push(Skipped {
                what: format!("scheduler {name}"),
                why: "not found next to storeland-bench or in PATH".into(),
            }),
        }
    }
    // EEVDF first: it is the baseline of every ratio.
    schedulers.sort_by_key(|s| s.name != BASELINE);

    // Devices.
    let topo = disc.topo();
    let mut drives = Vec::new();
    for d in &disc.env.drives {
        if readable(&d.path) {
            drives.push(d.clone());
        } else {
            skipped.push(Skipped {
                what: format!("device {}", d.path),
                why: "not readable by this user (run as root)".into(),
            });
        }
    }
    let no_drives = if disc.env.drives.is_empty() {
        "no NVMe drive found (name devices with --devices)"
    } else {
        "no readable device"
    };

    let s = &settings;
    let ncpu = topo.online.len() as u32;
    let fio_est = s.ramp_s + s.runtime_s + 2.0;
    let mixed = mixed_jobs(topo, &drives);
    let msg_groups = (ncpu / 4).clamp(2, 24);
    let msg_loops = if s.quick { 100 } else { 1000 };
    let mut workloads = Vec::new();
    let hq = settings.high_qd;
    for name in want_workloads {
        let fio_common = |iodepth: u32, hogs: bool| {
            let mut p = BTreeMap::from([
                (
                    "tool".to_string(),
                    json!(disc.tool_version("fio").unwrap_or_else(|| "fio".into())),
                ),
                ("ioengine".to_string(), json!(disc.fio_engine)),
                ("rw".to_string(), json!("randread")),
                ("bs".to_string(), json!("4k")),
                ("iodepth".to_string(), json!(iodepth)),
                ("direct".to_string(), json!(1)),
                (
                    "jobs".to_string(),
                    json!("one per drive, all drives at once"),
                ),
                (
                    "devices".to_string(),
                    json!(drives.iter().map(|d| d.path.clone()).collect::<Vec<_>>()),
                ),
                ("runtime_s".to_string(), json!(s.runtime_s)),
                ("ramp_s".to_string(), json!(s.ramp_s)),
            ]);
            if hogs {
                p.insert(
                    "hogs".into(),
                    json!(format!("stress-ng --cpu {ncpu} --cpu-method int64")),
                );
                p.insert("hog_warmup_s".into(), json!(HOG_WARMUP_S));
            }
            p
        };
        let (kind, title, params, est, missing) = match fio_variant(name, hq) {
            Some(FioVariant { iodepth, hogs, rt }) => {
                let iodepth = if disc.fio_engine == "psync" {
                    1
                } else {
                    iodepth
                };
                let missing = if disc.fio.is_none() {
                    Some("fio is not installed".to_string())
                } else if drives.is_empty() {
                    Some(no_drives.to_string())
                } else if hogs && disc.stress_ng.is_none() {
                    Some("stress-ng is not installed".to_string())
                } else {
                    None
                };
                let title = format!(
                    "fio 4k random read, queue depth {iodepth} per drive, all drives{}{}",
                    if hogs {
                        ", with a CPU hog on every CPU"
                    } else {
                        ""
                    },
                    if rt {
                        "; fio in SCHED_FIFO, ahead of any CPU scheduler: the machine's floor"
                    } else {
                        ""
                    }
                );
                let est = fio_est + if hogs { HOG_WARMUP_S + 1.0 } else { 0.0 };
                let mut params = fio_common(iodepth, hogs);
                if rt {
                    params.insert(
                        "fio_policy".into(),
                        json!(format!("SCHED_FIFO {FLOOR_FIFO_PRIO}")),
                    );
                }
                (Kind::Fio { iodepth, hogs, rt }, title, params, est, missing)
            }
            None if name == "mixed" => {
                let writes = s.allow_writes;
                let mut p = fio_common(MIXED_QD, false);
                p.insert(
                    "jobs".into(),
                    json!(mixed
                        .iter()
                        .map(|j| format!(
                            "ccx{}:{}@cpus {}",
                            j.ccx,
                            j.drive.name,
                            cpu_list(&j.cpus)
                        ))
                        .collect::<Vec<_>>()),
                );
                if writes {
                    p.insert("rw".into(), json!("randrw"));
                    p.insert("rwmixread".into(), json!(70));
                    p.insert(
                        "write_region".into(),
                        json!("all but the first and last MiB"),
                    );
                }
                p.insert("hogs".into(), json!(format!("stress-ng --zlib {ncpu}")));
                p.insert("hog_warmup_s".into(), json!(HOG_WARMUP_S));
                let missing = if disc.fio.is_none() {
                    Some("fio is not installed".to_string())
                } else if drives.is_empty() {
                    Some(no_drives.to_string())
                } else if disc.stress_ng.is_none() {
                    Some("stress-ng is not installed".to_string())
                } else {
                    None
                };
                let title = format!(
                    "storage server: fio 4k random {} (qd{MIXED_QD}) on each CCX's drives, pinned to the CCX, next to zlib compression hogs on every CPU",
                    if writes { "70/30 read/write" } else { "read" }
                );
                (Kind::Mixed, title, p, fio_est + HOG_WARMUP_S + 1.0, missing)
            }
            None if name == "messaging" => {
                let (tool, missing) = match &disc.messaging {
                    Some(Messaging::Hackbench(_)) => {
                        ("hackbench (rt-tests), process mode, sockets", None)
                    }
                    Some(Messaging::Perf(_)) => {
                        ("perf bench sched messaging, process mode, sockets", None)
                    }
                    None => (
                        "",
                        Some("neither hackbench nor a working perf is installed".to_string()),
                    ),
                };
                let p = BTreeMap::from([
                    ("tool".to_string(), json!(tool)),
                    ("groups".to_string(), json!(msg_groups)),
                    ("loops".to_string(), json!(msg_loops)),
                    ("tasks".to_string(), json!(msg_groups * 40)),
                ]);
                let title = format!(
                    "messaging: {msg_groups} groups of 20 sender/receiver pairs, {msg_loops} loops"
                );
                (
                    Kind::Messaging,
                    title,
                    p,
                    if s.quick { 4.0 } else { 10.0 },
                    missing,
                )
            }
            None if name == "schbench" => {
                let per = topo.llcs.first().map_or(1, |l| l.len());
                let p = BTreeMap::from([
                    ("message_threads".to_string(), json!(topo.llcs.len())),
                    ("workers_per_thread".to_string(), json!(per)),
                    ("runtime_s".to_string(), json!(s.runtime_s)),
                ]);
                let missing = disc
                    .schbench
                    .is_none()
                    .then(|| "schbench is not installed".to_string());
                let title = format!(
                    "schbench wake-up latency, {} message threads x {per} workers",
                    topo.llcs.len()
                );
                (Kind::Schbench, title, p, s.runtime_s + 2.0, missing)
            }
            None => return Err(UsageError(format!("unknown workload '{name}'"))),
        };
        if let Some(why) = missing {
            skipped.push(Skipped {
                what: format!("workload {name}"),
                why,
            });
            continue;
        }
        workloads.push(Workload {
            name: name.clone(),
            writes: kind == Kind::Mixed && s.allow_writes,
            kind,
            title,
            params,
            estimate_s: est,
        });
    }
    Ok(Plan {
        schedulers,
        workloads,
        drives,
        mixed_jobs: mixed,
        settings,
        skipped,
        msg_groups,
        msg_loops,
    })
}

/// `items` in the order repetition `rep` (from 1) runs them: rotated by one
/// more each repetition, so that no scheduler always runs first or last. In
/// the VM the slot in a round moved results by more than some differences
/// between schedulers (in A/B rounds of hackbench, whichever build ran third
/// was the slowest in 5 of 6 rounds).
pub fn rotated<T>(items: &[T], rep: u32) -> impl Iterator<Item = &T> {
    let first = match items.len() {
        0 => 0,
        n => rep.saturating_sub(1) as usize % n,
    };
    items[first..].iter().chain(&items[..first])
}

impl Plan {
    /// The schedulers in the order repetition `rep` runs them.
    pub fn rep_order(&self, rep: u32) -> impl Iterator<Item = &SchedulerInfo> {
        rotated(&self.schedulers, rep)
    }

    pub fn runs(&self) -> usize {
        self.settings.reps as usize * self.schedulers.len() * self.workloads.len()
    }

    /// Seconds for the whole plan.
    pub fn estimate_s(&self) -> f64 {
        let per_rep: f64 = self.workloads.iter().map(|w| w.estimate_s).sum::<f64>()
            * self.schedulers.len() as f64
            + ATTACH_EST_S
                * self
                    .schedulers
                    .iter()
                    .filter(|s| s.name != BASELINE)
                    .count() as f64;
        per_rep * self.settings.reps as f64
    }

    /// The plan as text, for --dry-run and the start of a run.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let order: Vec<String> = self.schedulers.iter().map(|x| label(&x.name)).collect();
        s += &format!(
            "plan: {} repetition(s) of [{}] interleaved, the order rotating by one each \
             repetition, {} workload(s) each: {} runs\n",
            self.settings.reps,
            order.join(" → "),
            self.workloads.len(),
            self.runs()
        );
        for w in &self.workloads {
            s += &format!(
                "  {:<10} {}{}\n",
                w.name,
                w.title,
                if w.writes { " [WRITES]" } else { "" }
            );
        }
        if !self.drives.is_empty() {
            s += &format!(
                "  devices: {}\n",
                self.drives
                    .iter()
                    .map(|d| d.path.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        s += &format!(
            "  fio runs {} s after a {} s ramp{}\n",
            self.settings.runtime_s,
            self.settings.ramp_s,
            if self.settings.quick {
                " (--quick)"
            } else {
                ""
            }
        );
        for k in &self.skipped {
            s += &format!("  skipped {}: {}\n", k.what, k.why);
        }
        s += &format!("  estimated time: {}\n", fmt_duration(self.estimate_s()));
        s
    }
}

/// "1h02m", "4m10s", "35s"
pub fn fmt_duration(secs: f64) -> String {
    let t = secs.max(0.0).round() as u64;
    if t >= 3600 {
        format!("{}h{:02}m", t / 3600, (t % 3600) / 60)
    } else if t >= 60 {
        format!("{}m{:02}s", t / 60, t % 60)
    } else {
        format!("{t}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storeland::bench::sysinfo::DriveIrqs;

    fn topo(llcs: Vec<Vec<u32>>) -> CpuTopology {
        CpuTopology {
            model: "x".into(),
            online: llcs.iter().flatten().copied().collect(),
            llcs,
            llc_guessed: false,
            numa_nodes: vec![],
            packages: 1,
            smt: false,
        }
    }

    fn drive(name: &str, home: Option<usize>) -> Drive {
        Drive {
            name: name.into(),
            path: format!("/dev/{name}"),
            controller: None,
            model: None,
            serial: None,
            firmware: None,
            size_bytes: 1 << 30,
            numa_node: None,
            irqs: home.map(|h| DriveIrqs {
                io_queues: 1,
                affinity_cpus: vec![],
                counts_per_llc: vec![],
                home_llcs: vec![h],
            }),
        }
    }

    #[test]
    fn mixed_jobs_follow_irq_homes_then_round_robin() {
        let t = topo(vec![vec![0, 1], vec![2, 3]]);
        let jobs = mixed_jobs(
            &t,
            &[
                drive("a", Some(1)),
                drive("b", None),
                drive("c", None),
                drive("d", Some(1)),
            ],
        );
        let got: Vec<(usize, &str)> = jobs
            .iter()
            .map(|j| (j.ccx, j.drive.name.as_str()))
            .collect();
        assert_eq!(got, vec![(0, "b"), (0, "c"), (1, "a"), (1, "d")]);
        assert_eq!(jobs[2].cpus, vec![2, 3]);
    }

    #[test]
    fn every_ccx_gets_a_job() {
        let t = topo(vec![vec![0], vec![1], vec![2]]);
        let jobs = mixed_jobs(&t, &[drive("a", None)]);
        assert_eq!(jobs.len(), 3);
        assert!(jobs.iter().all(|j| j.drive.name == "a"));
        assert!(mixed_jobs(&t, &[]).is_empty());
    }

    #[test]
    fn fio_workload_names() {
        let v = |iodepth, hogs, rt| Some(FioVariant { iodepth, hogs, rt });
        assert_eq!(fio_variant("qd1", 32), v(1, false, false));
        assert_eq!(fio_variant("qd1-hogs", 32), v(1, true, false));
        assert_eq!(fio_variant("qd1-hogs-rt", 32), v(1, true, true));
        assert_eq!(fio_variant("qd16-hogs", 16), v(16, true, false));
        assert_eq!(fio_variant("qd16", 32), None);
        assert_eq!(fio_variant("mixed", 32), None);
        assert_eq!(fio_variant("qd", 32), None);
    }

    #[test]
    fn each_repetition_starts_one_scheduler_later() {
        let order = |rep| rotated(&["a", "b", "c"], rep).copied().collect::<Vec<_>>();
        assert_eq!(order(1), ["a", "b", "c"]);
        assert_eq!(order(2), ["b", "c", "a"]);
        assert_eq!(order(3), ["c", "a", "b"]);
        assert_eq!(order(4), ["a", "b", "c"]);
        assert_eq!(rotated::<u8>(&[], 3).count(), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(fmt_duration(35.4), "35s");
        assert_eq!(fmt_duration(250.0), "4m10s");
        assert_eq!(fmt_duration(3720.0), "1h02m");
        assert_eq!(fmt_duration(-3.0), "0s");
    }
}
