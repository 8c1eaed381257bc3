//! Running one workload once: the tool's command lines, its processes, and
//! its numbers. Raw outputs go to `<out>/raw/`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use serde_json::{json, Value};

use storeland::bench::cpustat;
use storeland::bench::fio::{merged_mean_ns, merged_percentiles, FioDir, FioOutput, Latency};
use storeland::bench::msgbench::{parse_messaging_time, parse_schbench};
use storeland::bench::safety::{self, GUARD_BYTES};
use storeland::bench::stressng::{parse_brief, parse_yaml, StressMetrics};
use storeland::bench::sysinfo::{nvme_irq_counts_per_llc, Roots};
use storeland::topology::cpu_list;

use crate::discover::{Discovery, Messaging};
use crate::exec::{self, Waited};
use crate::plan::{Kind, Plan, Workload, FLOOR_FIFO_PRIO, HOG_WARMUP_S, MIXED_QD};

/// What one run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub metrics: BTreeMap<String, f64>,
    pub details: Value,
    pub commands: Vec<String>,
    pub error: Option<String>,
    pub interrupted: bool,
}

impl Outcome {
    fn fail(&mut self, why: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(why.into());
        }
    }
}

pub struct Ctx<'a> {
    pub disc: &'a Discovery,
    pub plan: &'a Plan,
    pub roots: &'a Roots,
    /// Raw output files start with this path ("<out>/raw/007-eevdf-qd1").
    pub raw: PathBuf,
}

impl Ctx<'_> {
    fn file(&self, suffix: &str) -> PathBuf {
        let mut p = self.raw.clone().into_os_string();
        p.push(format!("-{suffix}"));
        PathBuf::from(p)
    }
}

fn s(x: impl ToString) -> String {
    x.to_string()
}

fn last_line(p: &Path) -> String {
    fs::read_to_string(p)
        .ok()
        .and_then(|t| {
            t.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_default()
}

pub fn run(w: &Workload, ctx: &Ctx) -> Outcome {
    let mut out = Outcome::default();
    let settled = settle(ctx);
    match &w.kind {
        Kind::Fio { iodepth, hogs, rt } => fio_run(w, ctx, *iodepth, *hogs, *rt, &mut out),
        Kind::Mixed => fio_run(w, ctx, MIXED_QD, true, false, &mut out),
        Kind::Messaging => messaging(ctx, &mut out),
        Kind::Schbench => schbench(ctx, &mut out),
    }
    if exec::interrupted() {
        out.interrupted = true;
    }
    if !out.details.is_object() {
        out.details = json!({});
    }
    out.details["settle"] = settled;
    out
}

const SETTLE_MAX: Duration = Duration::from_secs(cpustat::SETTLE_MAX_S);
const SETTLE_WINDOW: Duration = Duration::from_millis(cpustat::SETTLE_WINDOW_MS);

/// Wait, up to SETTLE_MAX, until the CPUs are quiet (cpustat::is_quiet())
/// over a whole window, so that work the run before left behind does not
/// count towards this one. Runs anyway when they never are, with a warning.
/// Returns what it saw, for the run's details.
fn settle(ctx: &Ctx) -> Value {
    let start = std::time::Instant::now();
    let mut busy = None;
    let mut before = read_cpu_times(ctx);
    loop {
        if !exec::sleep(SETTLE_WINDOW) {
            break;
        }
        let after = read_cpu_times(ctx);
        busy = busy_between(before.as_ref(), after.as_ref());
        match busy {
            Some(b) if !cpustat::is_quiet(b) && start.elapsed() < SETTLE_MAX => before = after,
            Some(b) if !cpustat::is_quiet(b) => {
                eprintln!(
                    "          warning: {b:.2} CPUs still busy after {} s of waiting for quiet; running anyway",
                    SETTLE_MAX.as_secs()
                );
                break;
            }
            // Quiet, or no reading to wait on (no /proc/stat): null in the details.
            _ => break,
        }
    }
    json!({
        "waited_s": start.elapsed().as_secs_f64(),
        "busy_cpus": busy,
        "quiet": busy.map(cpustat::is_quiet),
    })
}

/// A running stress-ng with its output files.
struct Hogs {
    child: Child,
    yaml: PathBuf,
    err: PathBuf,
}

fn start_hogs(ctx: &Ctx, stressor: &str, out: &mut Outcome) -> Option<Hogs> {
    let ncpu = ctx.disc.topo().online.len();
    let set = &ctx.plan.settings;
    let bin = ctx.disc.stress_ng.as_ref()?;
    let yaml = ctx.file("hogs.yaml");
    let err = ctx.file("hogs.log");
    // The timeout is only a backstop: the hogs are stopped when fio ends.
    let backstop = (set.ramp_s + set.runtime_s) as u64 * 3 + 120;
    let mut argv = vec![bin.display().to_string(), format!("--{stressor}"), s(ncpu)];
    if stressor == "cpu" {
        argv.extend([s("--cpu-method"), s("int64")]);
    }
    argv.extend([
        s("--timeout"),
        s(backstop),
        s("--metrics-brief"),
        s("--yaml"),
        yaml.display().to_string(),
    ]);
    out.commands.push(exec::shell_words(&argv));
    match exec::spawn(&argv, &err, &err, libc::SIGINT) {
        Ok(child) => Some(Hogs { child, yaml, err }),
        Err(e) => {
            out.fail(format!("cannot start stress-ng: {e}"));
            None
        }
    }
}

/// Stop the hogs (SIGINT makes stress-ng report) and read their rate.
fn stop_hogs(mut h: Hogs, out: &mut Outcome) -> Option<StressMetrics> {
    let status = exec::stop(&mut h.child, libc::SIGINT, Duration::from_secs(60));
    let parsed = fs::read_to_string(&h.yaml)
        .map_err(|e| e.to_string())
        .and_then(|t| parse_yaml(&t))
        .or_else(|_| {
            fs::read_to_string(&h.err)
                .map_err(|e| e.to_string())
                .and_then(|t| parse_brief(&t))
        });
    match parsed {
        Ok(m) => m.into_iter().next(),
        Err(e) => {
            out.fail(format!(
                "stress-ng gave no metrics ({e}; exit {}): {}",
                status.map_or("?".into(), |s| s.to_string()),
                last_line(&h.err)
            ));
            None
        }
    }
}

struct FioJobSpec {
    name: String,
    filename: String,
    cpus: Option<Vec<u32>>,
    ccx: Option<usize>,
    size: u64,
}

fn fio_run(w: &Workload, ctx: &Ctx, iodepth: u32, hogs: bool, rt: bool, out: &mut Outcome) {
    let set = &ctx.plan.settings;
    let Some(fio) = &ctx.disc.fio else {
        return out.fail("fio is not installed");
    };
    let mixed = w.kind == Kind::Mixed;
    let jobs: Vec<FioJobSpec> = if mixed {
        ctx.plan
            .mixed_jobs
            .iter()
            .map(|j| FioJobSpec {
                name: format!("ccx{}-{}", j.ccx, j.drive.name),
                filename: j.drive.path.clone(),
                cpus: Some(j.cpus.clone()),
                ccx: Some(j.ccx),
                size: j.drive.size_bytes,
            })
            .collect()
    } else {
        ctx.plan
            .drives
            .iter()
            .map(|d| FioJobSpec {
                name: d.name.clone(),
                filename: d.path.clone(),
                cpus: None,
                ccx: None,
                size: d.size_bytes,
            })
            .collect()
    };
    // Writes only after the safety check, right now, of every target.
    if w.writes {
        let mut seen = Vec::new();
        for j in &jobs {
            if seen.contains(&j.filename) {
                continue;
            }
            seen.push(j.filename.clone());
            let i = safety::inspect(ctx.roots, Path::new(&j.filename));
            if !i.is_safe() {
                return out.fail(i.refusal());
            }
            if j.size <= 4 * GUARD_BYTES {
                return out.fail(format!(
                    "refusing to write to {}: smaller than 4 MiB",
                    j.filename
                ));
            }
        }
    }
    let mut argv = vec![
        fio.display().to_string(),
        s("--output-format=json+"),
        s("--percentile_list=50:99:99.9"),
        s("--lat_percentiles=1"),
        s("--direct=1"),
        format!("--ioengine={}", ctx.disc.fio_engine),
        s("--bs=4k"),
        format!("--iodepth={iodepth}"),
        s("--time_based=1"),
        format!("--runtime={}", set.runtime_s),
        format!("--ramp_time={}", set.ramp_s),
        s("--norandommap=1"),
        s("--randrepeat=0"),
        s("--group_reporting=0"),
    ];
    if w.writes {
        argv.extend([s("--rw=randrw"), s("--rwmixread=70")]);
    } else {
        argv.extend([s("--rw=randread"), s("--readonly")]);
    }
    for j in &jobs {
        argv.push(format!("--name={}", j.name));
        argv.push(format!("--filename={}", j.filename));
        if let Some(c) = &j.cpus {
            argv.push(format!("--cpus_allowed={}", cpu_list(c)));
        }
        if w.writes {
            // Never the first or last MiB: the safety check's blank guard.
            argv.push(format!("--offset={GUARD_BYTES}"));
            argv.push(format!("--size={}", j.size - 2 * GUARD_BYTES));
        }
    }

    let hog = if hogs {
        let h = start_hogs(ctx, if mixed { "zlib" } else { "cpu" }, out);
        if h.is_none() {
            return;
        }
        if !exec::sleep(Duration::from_secs_f64(HOG_WARMUP_S)) {
            if let Some(h) = h {
                stop_hogs(h, out);
            }
            return;
        }
        h
    } else {
        None
    };

    let irq_before = fs::read_to_string(ctx.roots.proc.join("interrupts")).unwrap_or_default();
    let cpu_before = read_cpu_times(ctx);
    let json_path = ctx.file("fio.json");
    let err_path = ctx.file("fio.log");
    let fifo = rt.then_some(FLOOR_FIFO_PRIO);
    let mut shown = exec::shell_words(&argv);
    if let Some(prio) = fifo {
        shown = format!("chrt -f {prio} {shown}");
    }
    out.commands.push(shown);
    let timeout = Duration::from_secs_f64((set.ramp_s + set.runtime_s) * 3.0 + 120.0);
    let fio_status = match exec::spawn_with_policy(&argv, &json_path, &err_path, libc::SIGINT, fifo)
    {
        Ok(mut child) => match exec::wait(&mut child, timeout, true) {
            Waited::Exited(st) => Some(st),
            Waited::TimedOut => {
                exec::stop(&mut child, libc::SIGINT, Duration::from_secs(10));
                out.fail(format!("fio did not finish within {} s", timeout.as_secs()));
                None
            }
            Waited::Interrupted => {
                exec::stop(&mut child, libc::SIGINT, Duration::from_secs(10));
                out.fail("interrupted");
                None
            }
        },
        Err(e) => {
            out.fail(format!("cannot start fio: {e}"));
            None
        }
    };
    let irq_after = fs::read_to_string(ctx.roots.proc.join("interrupts")).unwrap_or_default();
    let cpu_after = read_cpu_times(ctx);
    let hog_metrics = hog.and_then(|h| stop_hogs(h, out));
    let Some(st) = fio_status else { return };
    if !st.success() {
        return out.fail(format!("fio exited with {st}: {}", last_line(&err_path)));
    }
    let parsed = fs::read_to_string(&json_path)
        .map_err(|e| e.to_string())
        .and_then(|t| FioOutput::parse(&t));
    let fo = match parsed {
        Ok(f) => f,
        Err(e) => return out.fail(format!("{e} ({})", last_line(&err_path))),
    };
    if let Some(e) = fo.first_error() {
        return out.fail(e);
    }

    let ps = [50.0, 99.0, 99.9];
    let us = |v: Option<u64>| v.map(|ns| ns as f64 / 1000.0);
    let reads: Vec<&FioDir> = fo.jobs.iter().filter_map(|j| j.read.as_ref()).collect();
    if reads.is_empty() {
        return out.fail("fio completed no reads");
    }
    out.metrics.insert("iops".into(), fo.total_iops());
    // Completion latency (clat) and total latency (lat) of the reads.
    let latency_keys = |dirs: &[&FioDir], into: &mut serde_json::Map<String, Value>| -> bool {
        let clats: Vec<&Latency> = dirs.iter().map(|d| &d.clat).collect();
        let (c, exact) = merged_percentiles(&clats, &ps);
        for (k, v) in ["clat_p50_us", "clat_p99_us", "clat_p999_us"].iter().zip(c) {
            if let Some(v) = us(v) {
                into.insert(k.to_string(), json!(v));
            }
        }
        let lats: Vec<&Latency> = dirs.iter().filter_map(|d| d.lat.as_ref()).collect();
        if lats.len() == dirs.len() {
            let (l, _) = merged_percentiles(&lats, &ps);
            for (k, v) in ["lat_p50_us", "lat_p99_us", "lat_p999_us"].iter().zip(l) {
                if let Some(v) = us(v) {
                    into.insert(k.to_string(), json!(v));
                }
            }
        }
        exact
    };
    let mut all = serde_json::Map::new();
    let exact = latency_keys(&reads, &mut all);
    for (k, v) in &all {
        if let Some(x) = v.as_f64() {
            out.metrics.insert(k.clone(), x);
        }
    }
    if let Some(h) = &hog_metrics {
        out.metrics.insert("hog_ops_per_s".into(), h.ops_per_s_real);
        // Throughput is CPU held times work per CPU-second: which one a
        // scheduler changed tells CPU given to I/O from overhead.
        if let Some(per_cpu_s) = h.ops_per_s_cpu.filter(|&c| c > 0.0) {
            out.metrics
                .insert("hog_cpus".into(), h.ops_per_s_real / per_cpu_s);
            out.metrics.insert("hog_ops_per_cpu_s".into(), per_cpu_s);
        }
        if let Some(pct) = h.system_pct() {
            out.metrics.insert("hog_sys_pct".into(), pct);
        }
    }
    // Without hogs, the CPU time the machine spent per I/O: fio, the
    // kernel's I/O path and the scheduler's own work on every wake-up. The
    // readings span fio's ramp, which runs at about the same rate.
    let busy = busy_between(cpu_before.as_ref(), cpu_after.as_ref());
    if let Some(us) = busy
        .filter(|_| !hogs)
        .and_then(|b| cpustat::cpu_us_per_io(b, fo.total_iops()))
    {
        out.metrics.insert("cpu_us_per_io".into(), us);
    }
    let per_drive: Vec<Value> = fo
        .jobs
        .iter()
        .filter_map(|j| {
            let r = j.read.as_ref()?;
            let mut m = serde_json::Map::new();
            m.insert("name".into(), json!(j.name));
            m.insert(
                "iops".into(),
                json!(r.iops + j.write.as_ref().map_or(0.0, |w| w.iops)),
            );
            latency_keys(&[r], &mut m);
            if let Some(wr) = &j.write {
                m.insert("write_iops".into(), json!(wr.iops));
                m.insert(
                    "write_clat_p99_us".into(),
                    json!(us(wr.clat.percentile(99.0))),
                );
            }
            Some(Value::Object(m))
        })
        .collect();
    let mut details = json!({
        "fio_version": fo.version,
        "percentiles_exact": exact,
        "clat_mean_us": merged_mean_ns(&reads, |d| Some(&d.clat)).map(|ns| ns / 1000.0),
        "lat_mean_us": merged_mean_ns(&reads, |d| d.lat.as_ref()).map(|ns| ns / 1000.0),
        "per_drive": per_drive,
        "busy_cpus": busy,
    });
    if mixed {
        let n = ctx.disc.topo().llcs.len();
        let per_ccx: Vec<Value> = (0..n)
            .filter_map(|c| {
                let dirs: Vec<&FioDir> = jobs
                    .iter()
                    .filter(|spec| spec.ccx == Some(c))
                    .filter_map(|spec| fo.jobs.iter().find(|j| j.name == spec.name))
                    .filter_map(|j| j.read.as_ref())
                    .collect();
                if dirs.is_empty() {
                    return None;
                }
                let mut m = serde_json::Map::new();
                m.insert("name".into(), json!(format!("ccx{c}")));
                m.insert(
                    "iops".into(),
                    json!(dirs.iter().map(|d| d.iops).sum::<f64>()),
                );
                latency_keys(&dirs, &mut m);
                Some(Value::Object(m))
            })
            .collect();
        details["per_ccx"] = json!(per_ccx);
        if w.writes {
            let write_iops: f64 = fo
                .jobs
                .iter()
                .filter_map(|j| j.write.as_ref())
                .map(|d| d.iops)
                .sum();
            out.metrics.insert("write_iops".into(), write_iops);
        }
    }
    if let Some(h) = &hog_metrics {
        details["hogs"] = json!({
            "stressor": h.stressor, "bogo_ops": h.bogo_ops, "ops_per_s_real": h.ops_per_s_real,
            "ops_per_s_cpu": h.ops_per_s_cpu, "wall_s": h.wall_s,
            "user_s": h.user_s, "system_s": h.system_s,
        });
    }
    // Where the drives' completions were handled during the run, per CCX.
    let topo = ctx.disc.topo();
    let (b, a) = (
        nvme_irq_counts_per_llc(&irq_before, topo),
        nvme_irq_counts_per_llc(&irq_after, topo),
    );
    let delta: BTreeMap<String, Vec<u64>> = a
        .iter()
        .map(|(k, v)| {
            let before = b.get(k);
            let d = v
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.saturating_sub(before.and_then(|bv| bv.get(i)).copied().unwrap_or(0))
                })
                .collect();
            (k.clone(), d)
        })
        .collect();
    if !delta.is_empty() {
        details["nvme_irqs_per_ccx"] = json!(delta);
    }
    out.details = details;
}

fn run_simple(
    ctx: &Ctx,
    argv: Vec<String>,
    timeout: Duration,
    out: &mut Outcome,
) -> Option<String> {
    let o = ctx.file("out.log");
    out.commands.push(exec::shell_words(&argv));
    let mut child = match exec::spawn(&argv, &o, &o, libc::SIGINT) {
        Ok(c) => c,
        Err(e) => {
            out.fail(format!("cannot start {}: {e}", argv[0]));
            return None;
        }
    };
    match exec::wait(&mut child, timeout, true) {
        Waited::Exited(st) if st.success() => fs::read_to_string(&o).ok(),
        Waited::Exited(st) => {
            out.fail(format!("{} exited with {st}: {}", argv[0], last_line(&o)));
            None
        }
        Waited::TimedOut => {
            exec::stop(&mut child, libc::SIGINT, Duration::from_secs(10));
            out.fail(format!(
                "{} did not finish within {} s",
                argv[0],
                timeout.as_secs()
            ));
            None
        }
        Waited::Interrupted => {
            exec::stop(&mut child, libc::SIGINT, Duration::from_secs(10));
            out.fail("interrupted");
            None
        }
    }
}

fn messaging(ctx: &Ctx, out: &mut Outcome) {
    let (g, l) = (s(ctx.plan.msg_groups), s(ctx.plan.msg_loops));
    let argv = match &ctx.disc.messaging {
        Some(Messaging::Hackbench(p)) => vec![p.display().to_string(), s("-g"), g, s("-l"), l],
        Some(Messaging::Perf(p)) => vec![
            p.display().to_string(),
            s("bench"),
            s("-f"),
            s("simple"),
            s("sched"),
            s("messaging"),
            s("-g"),
            g,
            s("-l"),
            l,
        ],
        None => return out.fail("no messaging benchmark installed"),
    };
    let timeout = Duration::from_secs(if ctx.plan.settings.quick { 600 } else { 1800 });
    if let Some(text) = run_simple(ctx, argv, timeout, out) {
        match parse_messaging_time(&text) {
            Ok(t) => {
                out.metrics.insert("time_s".into(), t);
            }
            Err(e) => out.fail(e),
        }
    }
}

fn schbench(ctx: &Ctx, out: &mut Outcome) {
    let Some(bin) = &ctx.disc.schbench else {
        return out.fail("schbench is not installed");
    };
    let topo = ctx.disc.topo();
    let per = topo.llcs.first().map_or(1, |l| l.len());
    let rt = ctx.plan.settings.runtime_s.ceil() as u64;
    let argv = vec![
        bin.display().to_string(),
        s("-m"),
        s(topo.llcs.len()),
        s("-t"),
        s(per),
        s("-r"),
        s(rt),
    ];
    let timeout = Duration::from_secs(rt * 3 + 120);
    if let Some(text) = run_simple(ctx, argv, timeout, out) {
        match parse_schbench(&text) {
            Ok(r) => {
                for (p, key) in [
                    (50.0, "wakeup_p50_us"),
                    (99.0, "wakeup_p99_us"),
                    (99.9, "wakeup_p999_us"),
                ] {
                    if let Some(v) = r.wakeup(p) {
                        out.metrics.insert(key.into(), v);
                    }
                }
                if let Some(v) = r.request_us.iter().find(|(q, _)| *q == 99.0) {
                    out.metrics.insert("request_p99_us".into(), v.1);
                }
                if let Some(rps) = r.rps {
                    out.metrics.insert("rps".into(), rps);
                }
            }
            Err(e) => out.fail(e),
        }
    }
}

/// /proc/stat's CPU times, or None if it cannot be read (the metric is left out).
fn read_cpu_times(ctx: &Ctx) -> Option<cpustat::CpuTimes> {
    let text = fs::read_to_string(ctx.roots.proc.join("stat")).ok()?;
    cpustat::parse(&text).ok()
}

/// CPUs busy on average between two readings, where both were taken.
fn busy_between(
    before: Option<&cpustat::CpuTimes>,
    after: Option<&cpustat::CpuTimes>,
) -> Option<f64> {
    cpustat::busy_cpus(before?, after?)
}
