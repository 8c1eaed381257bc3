//! What the machine is, read from sysfs and procfs under configurable roots
//! (tests point them at a fake tree): CPUs grouped by L3 (= CCX on EPYC),
//! NUMA nodes, block devices and where NVMe interrupts land, the kernel
//! and its sched_ext state.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::interrupts;
use crate::topology::cpu_list;

/// Where sysfs, procfs and /dev are.
#[derive(Debug, Clone)]
pub struct Roots {
    pub sys: PathBuf,
    pub proc: PathBuf,
    pub dev: PathBuf,
}

impl Roots {
    pub fn host() -> Self {
        Self {
            sys: "/sys".into(),
            proc: "/proc".into(),
            dev: "/dev".into(),
        }
    }

    fn read_sys(&self, rel: &str) -> Option<String> {
        read_trim(&self.sys.join(rel))
    }

    fn read_proc(&self, rel: &str) -> Option<String> {
        read_trim(&self.proc.join(rel))
    }
}

fn read_trim(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

/// Parse a kernel CPU list ("0-3,8,10-11"); an empty string is no CPU.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = BTreeSet::new();
    for part in s.trim().split(',').filter(|p| !p.trim().is_empty()) {
        let part = part.trim();
        let bad = || format!("bad CPU list {s:?}");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b - a > 65_536 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => {
                out.insert(part.parse::<u32>().map_err(|_| bad())?);
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The CPUs and their caches and NUMA nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuTopology {
    pub model: String,
    pub online: Vec<u32>,
    /// Online CPUs grouped by shared L3 (CCX on Genoa), ordered by first CPU.
    pub llcs: Vec<Vec<u32>>,
    /// True when no CPU reported an L3 and all CPUs were put in one group.
    pub llc_guessed: bool,
    pub numa_nodes: Vec<NumaNode>,
    pub packages: usize,
    pub smt: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumaNode {
    pub id: u32,
    pub cpus: Vec<u32>,
}

impl CpuTopology {
    pub fn llc_of(&self, cpu: u32) -> Option<usize> {
        self.llcs.iter().position(|l| l.contains(&cpu))
    }

    /// The NPS mode a single-socket EPYC's node count suggests.
    pub fn nps(&self) -> String {
        let nodes = self
            .numa_nodes
            .iter()
            .filter(|n| !n.cpus.is_empty())
            .count();
        if self.packages != 1 {
            return format!("{} sockets, {nodes} NUMA node(s) with CPUs", self.packages);
        }
        match nodes {
            0 | 1 => "NPS1 (one NUMA node)".into(),
            n if n == self.llcs.len() && n > 4 => format!("L3 as NUMA ({n} nodes)"),
            n @ (2 | 4) => format!("NPS{n} ({n} NUMA nodes)"),
            n => format!("{n} NUMA nodes"),
        }
    }

    /// "4 CPUs in 2 L3 (CCX): 0-1 | 2-3"
    pub fn describe(&self) -> String {
        format!(
            "{} CPUs in {} L3 domain(s){}: {}",
            self.online.len(),
            self.llcs.len(),
            if self.llc_guessed {
                " (no L3 reported: one group assumed)"
            } else {
                ""
            },
            self.llcs
                .iter()
                .enumerate()
                .map(|(i, l)| format!("CCX{i}=[{}]", cpu_list(l)))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

/// Read the CPU topology.
pub fn read_topology(roots: &Roots) -> Result<CpuTopology, String> {
    let cpu_dir = "devices/system/cpu";
    let online = match roots.read_sys(&format!("{cpu_dir}/online")) {
        Some(s) => parse_cpu_list(&s)?,
        None => {
            return Err(format!(
                "{}/{cpu_dir}/online is missing",
                roots.sys.display()
            ))
        }
    };
    if online.is_empty() {
        return Err("no online CPU".into());
    }
    let mut groups: BTreeSet<Vec<u32>> = BTreeSet::new();
    let mut packages = BTreeSet::new();
    let mut smt = false;
    let mut missing_l3 = false;
    for &cpu in &online {
        let base = roots.sys.join(format!("{cpu_dir}/cpu{cpu}"));
        match l3_of(&base) {
            Some(list) => {
                let l: Vec<u32> = parse_cpu_list(&list)?
                    .into_iter()
                    .filter(|c| online.contains(c))
                    .collect();
                groups.insert(if l.contains(&cpu) { l } else { vec![cpu] });
            }
            None => missing_l3 = true,
        }
        if let Some(p) = read_trim(&base.join("topology/physical_package_id")) {
            packages.insert(p);
        }
        let siblings = read_trim(&base.join("topology/core_cpus_list"))
            .or_else(|| read_trim(&base.join("topology/thread_siblings_list")));
        if let Some(s) = siblings {
            smt |= parse_cpu_list(&s)?.len() > 1;
        }
    }
    let llc_guessed = missing_l3 && groups.is_empty();
    let mut llcs: Vec<Vec<u32>> = if llc_guessed {
        vec![online.clone()]
    } else {
        groups.into_iter().collect()
    };
    // A CPU without an L3 of its own (mixed reports) gets a group alone.
    for &cpu in &online {
        if !llcs.iter().any(|l| l.contains(&cpu)) {
            llcs.push(vec![cpu]);
        }
    }
    llcs.sort_by_key(|l| l[0]);
    Ok(CpuTopology {
        model: cpu_model(roots),
        online,
        llcs,
        llc_guessed,
        numa_nodes: numa_nodes(roots)?,
        packages: packages.len().max(1),
        smt,
    })
}

/// The shared_cpu_list of the cache with level 3, if any.
fn l3_of(cpu_base: &Path) -> Option<String> {
    let entries = fs::read_dir(cpu_base.join("cache")).ok()?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("index"))
        })
        .collect();
    dirs.sort();
    dirs.into_iter()
        .find(|d| read_trim(&d.join("level")).as_deref() == Some("3"))
        .and_then(|d| read_trim(&d.join("shared_cpu_list")))
}

fn numa_nodes(roots: &Roots) -> Result<Vec<NumaNode>, String> {
    let mut nodes = Vec::new();
    let Ok(entries) = fs::read_dir(roots.sys.join("devices/system/node")) else {
        return Ok(nodes);
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("node").and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cpus = read_trim(&e.path().join("cpulist")).unwrap_or_default();
        nodes.push(NumaNode {
            id,
            cpus: parse_cpu_list(&cpus)?,
        });
    }
    nodes.sort_by_key(|n| n.id);
    Ok(nodes)
}

fn cpu_model(roots: &Roots) -> String {
    fs::read_to_string(roots.proc.join("cpuinfo"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A block device under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drive {
    /// Kernel name ("nvme0n1").
    pub name: String,
    pub path: String,
    /// The NVMe controller ("nvme0"), for NVMe namespaces.
    pub controller: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub size_bytes: u64,
    pub numa_node: Option<i32>,
    pub irqs: Option<DriveIrqs>,
}

/// Where a controller's I/O queue interrupts land.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriveIrqs {
    pub io_queues: usize,
    /// Union of the I/O queues' effective affinity (/proc/irq/N/).
    pub affinity_cpus: Vec<u32>,
    /// Interrupt counts so far, per L3 domain (index = CCX).
    pub counts_per_llc: Vec<u64>,
    /// The L3 domains of the CPUs in the queues' affinity (or, unknown,
    /// those that took a fair share of the interrupts so far). A drive with
    /// a queue per CPU is at home everywhere.
    pub home_llcs: Vec<usize>,
}

impl Drive {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} ({}, {:.1} GiB",
            self.path,
            self.model.as_deref().unwrap_or("unknown model"),
            self.size_bytes as f64 / (1u64 << 30) as f64
        );
        if let Some(n) = self.numa_node.filter(|&n| n >= 0) {
            s += &format!(", node {n}");
        }
        s.push(')');
        if let Some(irq) = &self.irqs {
            s += &format!(
                ": {} I/O queue IRQs on CPUs {} (CCX {}), counts per CCX {:?}",
                irq.io_queues,
                if irq.affinity_cpus.is_empty() {
                    "?".into()
                } else {
                    cpu_list(&irq.affinity_cpus)
                },
                irq.home_llcs
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                irq.counts_per_llc
            );
        }
        s
    }
}

/// NVMe namespaces ("nvme0n1"), in numeric order; multipath's hidden
/// per-path nodes ("nvme0c0n1") and partitions are left out.
pub fn nvme_namespaces(roots: &Roots) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(roots.sys.join("class/block"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_nvme_namespace(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| natural_key(n));
    names
}

fn is_nvme_namespace(n: &str) -> bool {
    let Some(rest) = n.strip_prefix("nvme") else {
        return false;
    };
    let Some((c, ns)) = rest.split_once('n') else {
        return false;
    };
    !c.is_empty()
        && c.chars().all(|x| x.is_ascii_digit())
        && !ns.is_empty()
        && ns.chars().all(|x| x.is_ascii_digit())
}

/// Sort key that orders "nvme2n1" before "nvme10n1".
pub fn natural_key(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut num = String::new();
    for ch in s.chars() {
        if ch.is_ascii_digit() {
            num.push(ch);
        } else {
            if !num.is_empty() {
                out.push((std::mem::take(&mut text), num.parse().unwrap_or(u64::MAX)));
                num.clear();
            }
            text.push(ch);
        }
    }
    out.push((text, num.parse().unwrap_or(0)));
    out
}

/// Describe the block device `name` (kernel name, "nvme0n1" or "loop0").
pub fn describe_drive(roots: &Roots, name: &str, topo: &CpuTopology, irqs: &str) -> Drive {
    let blk = format!("class/block/{name}");
    let size_bytes = roots
        .read_sys(&format!("{blk}/size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 512;
    // The namespace's parent device is its controller (".../nvme0").
    let controller = fs::read_link(roots.sys.join(format!("{blk}/device")))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| {
            n.strip_prefix("nvme")
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
        })
        .or_else(|| {
            is_nvme_namespace(name)
                .then(|| name[..name.rfind('n').unwrap_or(name.len())].to_string())
        });
    let ctrl_attr = |attr: &str| {
        controller
            .as_ref()
            .and_then(|c| roots.read_sys(&format!("class/nvme/{c}/{attr}")))
            .filter(|s| !s.is_empty())
    };
    let numa_node = controller
        .as_ref()
        .and_then(|c| roots.read_sys(&format!("class/nvme/{c}/device/numa_node")))
        .and_then(|s| s.parse().ok());
    let irqs = controller
        .as_ref()
        .and_then(|c| drive_irqs(roots, c, topo, irqs));
    Drive {
        name: name.to_string(),
        path: roots.dev.join(name).to_string_lossy().into_owned(),
        model: ctrl_attr("model").or_else(|| roots.read_sys(&format!("{blk}/device/model"))),
        serial: ctrl_attr("serial"),
        firmware: ctrl_attr("firmware_rev"),
        controller,
        size_bytes,
        numa_node,
        irqs,
    }
}

fn drive_irqs(
    roots: &Roots,
    ctrl: &str,
    topo: &CpuTopology,
    proc_interrupts: &str,
) -> Option<DriveIrqs> {
    let lines = interrupts::parse(proc_interrupts).ok()?;
    let all = interrupts::nvme_queues(&lines);
    let queues = all.get(ctrl)?;
    let io: Vec<_> = queues.iter().filter(|q| q.queue > 0).collect();
    let mut affinity = BTreeSet::new();
    for q in &io {
        let rel = format!("irq/{}/effective_affinity_list", q.irq);
        if let Some(s) = roots
            .read_proc(&rel)
            .or_else(|| roots.read_proc(&format!("irq/{}/smp_affinity_list", q.irq)))
        {
            affinity.extend(parse_cpu_list(&s).unwrap_or_default());
        }
    }
    let mut counts_per_llc = vec![0u64; topo.llcs.len()];
    for (cpu, n) in interrupts::io_counts_per_cpu(queues) {
        if let Some(l) = topo.llc_of(cpu) {
            counts_per_llc[l] += n;
        }
    }
    // The queues' affinity says where completions can land; the counts so
    // far (boot-time probing, earlier load) are only a fallback.
    let home_llcs: Vec<usize> = if !affinity.is_empty() {
        let s: BTreeSet<usize> = affinity.iter().filter_map(|&c| topo.llc_of(c)).collect();
        s.into_iter().collect()
    } else {
        let total: u64 = counts_per_llc.iter().sum();
        let fair = total as f64 / counts_per_llc.len().max(1) as f64;
        (0..counts_per_llc.len())
            .filter(|&l| counts_per_llc[l] > 0 && counts_per_llc[l] as f64 >= fair / 4.0)
            .collect()
    };
    Some(DriveIrqs {
        io_queues: io.len(),
        affinity_cpus: affinity.into_iter().collect(),
        counts_per_llc,
        home_llcs,
    })
}

/// The kernel and its sched_ext support.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelInfo {
    pub release: String,
    pub version: String,
    pub sched_ext: bool,
    pub btf: bool,
    pub state: Option<String>,
    pub ops: Option<String>,
}

pub fn kernel_info(roots: &Roots) -> KernelInfo {
    let state = roots.read_sys("kernel/sched_ext/state");
    KernelInfo {
        release: roots
            .read_proc("sys/kernel/osrelease")
            .unwrap_or_else(|| "unknown".into()),
        version: roots.read_proc("version").unwrap_or_default(),
        sched_ext: state.is_some(),
        btf: roots.sys.join("kernel/btf/vmlinux").exists(),
        ops: roots
            .read_sys("kernel/sched_ext/root/ops")
            .filter(|s| !s.is_empty()),
        state,
    }
}

/// The sched_ext state as the harness checks it around every run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedState {
    /// "enabled", "disabled"... or "absent" on a kernel without sched_ext.
    pub state: String,
    pub ops: Option<String>,
    pub enable_seq: Option<u64>,
}

pub fn sched_state(roots: &Roots) -> SchedState {
    let state = roots
        .read_sys("kernel/sched_ext/state")
        .unwrap_or_else(|| "absent".into());
    let ops = (state == "enabled")
        .then(|| roots.read_sys("kernel/sched_ext/root/ops"))
        .flatten()
        .filter(|s| !s.is_empty());
    SchedState {
        state,
        ops,
        enable_seq: roots
            .read_sys("kernel/sched_ext/enable_seq")
            .and_then(|s| s.parse().ok()),
    }
}

/// Count of interrupts per L3 domain, for reading before/after a run.
pub fn nvme_irq_counts_per_llc(
    proc_interrupts: &str,
    topo: &CpuTopology,
) -> BTreeMap<String, Vec<u64>> {
    let mut out = BTreeMap::new();
    let Ok(lines) = interrupts::parse(proc_interrupts) else {
        return out;
    };
    for (ctrl, queues) in interrupts::nvme_queues(&lines) {
        let mut v = vec![0u64; topo.llcs.len()];
        for (cpu, n) in interrupts::io_counts_per_cpu(&queues) {
            if let Some(l) = topo.llc_of(cpu) {
                v[l] += n;
            }
        }
        out.insert(ctrl, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Fake(PathBuf);
    impl Fake {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "storeland-bench-sysfs-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Fake(dir)
        }
        fn put(&self, rel: &str, content: &str) {
            let p = self.0.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, format!("{content}\n")).unwrap();
        }
        fn roots(&self) -> Roots {
            Roots {
                sys: self.0.join("sys"),
                proc: self.0.join("proc"),
                dev: "/dev".into(),
            }
        }
    }
    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A small Genoa: 2 CCX of 2 cores with SMT (siblings +4), NPS1,
    /// CPU 7 offline; two NVMe drives whose IRQs land on CCX 0 and 1.
    fn genoa_like() -> Fake {
        let f = Fake::new();
        f.put("sys/devices/system/cpu/online", "0-6");
        for cpu in 0..8u32 {
            let ccx = (cpu % 4) / 2;
            let l3 = if ccx == 0 { "0-1,4-5" } else { "2-3,6-7" };
            let base = format!("sys/devices/system/cpu/cpu{cpu}");
            for (idx, level, shared) in [(0, 1, "x"), (2, 2, "x"), (3, 3, l3)] {
                let shared = if shared == "x" {
                    format!("{},{}", cpu % 4, cpu % 4 + 4)
                } else {
                    shared.into()
                };
                f.put(
                    &format!("{base}/cache/index{idx}/level"),
                    &level.to_string(),
                );
                f.put(&format!("{base}/cache/index{idx}/shared_cpu_list"), &shared);
            }
            f.put(&format!("{base}/topology/physical_package_id"), "0");
            f.put(
                &format!("{base}/topology/core_cpus_list"),
                &format!("{},{}", cpu % 4, cpu % 4 + 4),
            );
        }
        f.put("sys/devices/system/node/node0/cpulist", "0-6");
        f.put(
            "proc/cpuinfo",
            "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n",
        );
        for (n, model) in [(0, "Micron_7450"), (1, "SAMSUNG MZWLR3T8")] {
            f.put(&format!("sys/class/block/nvme{n}n1/size"), "7501476528");
            f.put(
                &format!("sys/class/nvme/nvme{n}/model"),
                &format!("{model}   "),
            );
            f.put(&format!("sys/class/nvme/nvme{n}/serial"), &format!("S{n}"));
            f.put(&format!("sys/class/nvme/nvme{n}/firmware_rev"), "E2MU200");
            f.put(&format!("sys/class/nvme/nvme{n}/device/numa_node"), "-1");
        }
        f.put("sys/class/block/nvme0n1p1/size", "100");
        f.put("sys/class/block/nvme0c0n1/size", "100");
        f.put("sys/class/block/nvme10n1/size", "100");
        f.put("proc/irq/25/effective_affinity_list", "0-1");
        f.put("proc/irq/26/effective_affinity_list", "2");
        f.put("proc/irq/27/effective_affinity_list", "3");
        f.put("proc/sys/kernel/osrelease", "7.3.4+deb13-amd64");
        f.put("proc/version", "Linux version 7.3.4+deb13-amd64");
        f
    }

    const IRQS: &str = "      CPU0 CPU1 CPU2 CPU3 CPU4 CPU5 CPU6
 24:  1 0 0 0 0 0 0  PCI-MSIX-0000:00:02.0 0-edge nvme0q0
 25:  500 300 0 0 0 0 0  PCI-MSIX-0000:00:02.0 1-edge nvme0q1
 26:  0 0 9 0 0 0 0  PCI-MSIX-0000:00:03.0 1-edge nvme1q1
 27:  0 0 0 0 0 0 0  PCI-MSIX-0000:00:03.0 2-edge nvme1q2
 28:  1 0 0 50 0 0 0  PCI-MSIX-0000:00:04.0 1-edge nvme2q1
";

    #[test]
    fn cpu_lists() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("5").unwrap(), vec![5]);
        for bad in ["a", "3-1", "1-", "0-99999999"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topology_from_a_fake_tree() {
        let f = genoa_like();
        let t = read_topology(&f.roots()).unwrap();
        assert_eq!(t.online, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            t.llcs,
            vec![vec![0, 1, 4, 5], vec![2, 3, 6]],
            "offline CPU 7 left out"
        );
        assert!(!t.llc_guessed);
        assert!(t.smt);
        assert_eq!(t.packages, 1);
        assert_eq!(t.model, "AMD EPYC 9654 96-Core Processor");
        assert_eq!(t.nps(), "NPS1 (one NUMA node)");
        assert_eq!(t.llc_of(6), Some(1));
        assert_eq!(t.llc_of(7), None);
        assert_eq!(
            t.describe(),
            "7 CPUs in 2 L3 domain(s): CCX0=[0-1,4-5] CCX1=[2-3,6]"
        );
    }

    #[test]
    fn no_l3_means_one_guessed_group() {
        let f = Fake::new();
        f.put("sys/devices/system/cpu/online", "0-1");
        f.put("sys/devices/system/cpu/cpu0/cache/index0/level", "1");
        let t = read_topology(&f.roots()).unwrap();
        assert_eq!(t.llcs, vec![vec![0, 1]]);
        assert!(t.llc_guessed);
        assert!(read_topology(&Fake::new().roots()).is_err());
    }

    #[test]
    fn nps_modes() {
        let mut t = read_topology(&genoa_like().roots()).unwrap();
        t.numa_nodes = (0..4).map(|id| NumaNode { id, cpus: vec![id] }).collect();
        assert_eq!(t.nps(), "NPS4 (4 NUMA nodes)");
        t.llcs = (0..12).map(|c| vec![c]).collect();
        t.numa_nodes = (0..12).map(|id| NumaNode { id, cpus: vec![id] }).collect();
        assert_eq!(t.nps(), "L3 as NUMA (12 nodes)");
    }

    #[test]
    fn nvme_namespaces_in_natural_order() {
        let f = genoa_like();
        assert_eq!(
            nvme_namespaces(&f.roots()),
            vec!["nvme0n1", "nvme1n1", "nvme10n1"]
        );
    }

    #[test]
    fn drives_with_model_and_irq_locality() {
        let f = genoa_like();
        let roots = f.roots();
        let t = read_topology(&roots).unwrap();
        let d = describe_drive(&roots, "nvme0n1", &t, IRQS);
        assert_eq!(d.path, "/dev/nvme0n1");
        assert_eq!(d.controller.as_deref(), Some("nvme0"));
        assert_eq!(d.model.as_deref(), Some("Micron_7450"));
        assert_eq!(d.size_bytes, 7501476528 * 512);
        assert_eq!(d.numa_node, Some(-1));
        let irq = d.irqs.as_ref().unwrap();
        assert_eq!(irq.io_queues, 1);
        assert_eq!(irq.affinity_cpus, vec![0, 1]);
        assert_eq!(irq.counts_per_llc, vec![800, 0]);
        assert_eq!(irq.home_llcs, vec![0]);
        assert!(d.describe().contains("Micron_7450"), "{}", d.describe());

        let d = describe_drive(&roots, "nvme1n1", &t, IRQS);
        let irq = d.irqs.unwrap();
        assert_eq!((irq.io_queues, irq.counts_per_llc.clone()), (2, vec![0, 9]));
        assert_eq!(irq.affinity_cpus, vec![2, 3]);
        assert_eq!(irq.home_llcs, vec![1]);

        // No affinity files: the interrupts taken so far decide.
        let irq = describe_drive(&roots, "nvme2n1", &t, IRQS).irqs.unwrap();
        assert!(irq.affinity_cpus.is_empty());
        assert_eq!(
            (irq.counts_per_llc.clone(), irq.home_llcs),
            (vec![1, 50], vec![1])
        );

        let counts = nvme_irq_counts_per_llc(IRQS, &t);
        assert_eq!(counts["nvme0"], vec![800, 0]);
        // A non-NVMe device has no controller and no IRQ view.
        let d = describe_drive(&roots, "loop0", &t, IRQS);
        assert!(d.controller.is_none() && d.irqs.is_none());
    }

    #[test]
    fn kernel_and_sched_ext_state() {
        let f = genoa_like();
        let k = kernel_info(&f.roots());
        assert_eq!(k.release, "7.3.4+deb13-amd64");
        assert!(!k.sched_ext);
        assert_eq!(sched_state(&f.roots()).state, "absent");
        f.put("sys/kernel/sched_ext/state", "enabled");
        f.put("sys/kernel/sched_ext/root/ops", "storeland_0.1.0");
        f.put("sys/kernel/sched_ext/enable_seq", "3");
        let s = sched_state(&f.roots());
        assert_eq!(s.state, "enabled");
        assert_eq!(s.ops.as_deref(), Some("storeland_0.1.0"));
        assert_eq!(s.enable_seq, Some(3));
        assert!(kernel_info(&f.roots()).sched_ext);
    }
}
