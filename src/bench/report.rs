//! The Markdown report and the SVG plots, rendered from the results alone
//! (deterministic: the same results.json gives the same files).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::io;
use std::path::Path;

use serde_json::Value;

use super::cpustat;
use super::model::{label, metric_info, Results, Run, RunStatus, BASELINE};
use super::stats::{summarize, Summary};
use super::svg::{Bar, Chart};
use crate::topology::cpu_list;

/// One row of the main table: a workload's metric under every scheduler.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workload: String,
    pub metric: String,
    /// Indexed like `Results::schedulers`.
    pub summaries: Vec<Option<Summary>>,
    /// Median over the baseline's median, per scheduler.
    pub ratios: Vec<Option<f64>>,
}

fn ok_runs<'a>(r: &'a Results, sched: &'a str, workload: &'a str) -> impl Iterator<Item = &'a Run> {
    r.runs.iter().filter(move |x| {
        x.status == RunStatus::Ok && x.scheduler == sched && x.workload == workload
    })
}

/// Summaries of every (workload, metric) in plan order.
pub fn rows(r: &Results) -> Vec<Row> {
    let base = r.schedulers.iter().position(|s| s.name == BASELINE);
    let mut out = Vec::new();
    for w in &r.workloads {
        let mut keys: Vec<&String> = r
            .runs
            .iter()
            .filter(|x| x.workload == w.name && x.status == RunStatus::Ok)
            .flat_map(|x| x.metrics.keys())
            .collect();
        keys.sort_by_key(|k| (metric_info(k).order, (*k).clone()));
        keys.dedup();
        for key in keys {
            let summaries: Vec<Option<Summary>> = r
                .schedulers
                .iter()
                .map(|s| {
                    let v: Vec<f64> = ok_runs(r, &s.name, &w.name)
                        .filter_map(|x| x.metrics.get(key).copied())
                        .collect();
                    summarize(&v)
                })
                .collect();
            let base_median = base.and_then(|b| summaries[b].as_ref()).map(|s| s.median);
            let ratios = summaries
                .iter()
                .map(|s| match (s, base_median) {
                    (Some(s), Some(b)) if b != 0.0 => Some(s.median / b),
                    _ => None,
                })
                .collect();
            out.push(Row {
                workload: w.name.clone(),
                metric: key.clone(),
                summaries,
                ratios,
            });
        }
    }
    out
}

/// The order the schedulers ran in: one list when every repetition used the
/// same order, else one per repetition (the harness rotates it).
fn run_order(r: &Results) -> String {
    let mut reps: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for run in &r.runs {
        let order = reps.entry(run.rep).or_default();
        let name = label(&run.scheduler);
        if !order.contains(&name) {
            order.push(name);
        }
    }
    let orders: Vec<String> = reps.values().map(|o| o.join(" → ")).collect();
    match orders.as_slice() {
        [] => r
            .schedulers
            .iter()
            .map(|s| s.label())
            .collect::<Vec<_>>()
            .join(" → "),
        [first, rest @ ..] if rest.iter().all(|o| o == first) => first.clone(),
        _ => reps
            .keys()
            .zip(&orders)
            .map(|(rep, o)| format!("rep {rep}: {o}"))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// Numbers for tables: 14,812 / 152 / 15.2 / 1.52 / 0.0152.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        let s = format!("{:.0}", a);
        let mut grouped = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(ch);
        }
        format!("{}{grouped}", if v < 0.0 { "-" } else { "" })
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a == 0.0 {
        "0".into()
    } else {
        format!("{v:.3}")
    }
}

fn cell(s: &Option<Summary>) -> String {
    match s {
        Some(s) if s.n > 1 => format!(
            "{} [{}–{}]",
            fmt_num(s.median),
            fmt_num(s.ci_low),
            fmt_num(s.ci_high)
        ),
        Some(s) => format!("{} (1 run)", fmt_num(s.median)),
        None => "–".into(),
    }
}

fn workload_title(r: &Results, name: &str) -> String {
    r.workloads
        .iter()
        .find(|w| w.name == name)
        .map(|w| w.title.clone())
        .unwrap_or_else(|| name.to_string())
}

fn param_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The whole Markdown report.
pub fn markdown(r: &Results) -> String {
    let mut m = String::new();
    let env = &r.environment;
    let topo = &env.topology;
    let _ = writeln!(m, "# storeland-bench: scheduler comparison\n");
    let _ = writeln!(
        m,
        "- **When**: {} to {} ({})",
        r.started,
        r.finished.as_deref().unwrap_or("–"),
        r.status
    );
    let _ = writeln!(
        m,
        "- **Host**: {}, kernel {}, {}",
        env.hostname, env.kernel.release, topo.model
    );
    let _ = writeln!(m, "- **CPUs**: {}; {}", topo.describe(), topo.nps());
    let models: BTreeMap<String, usize> = env.drives.iter().fold(BTreeMap::new(), |mut acc, d| {
        *acc.entry(d.model.clone().unwrap_or_else(|| "unknown".into()))
            .or_default() += 1;
        acc
    });
    let _ = writeln!(
        m,
        "- **Drives**: {} ({})",
        env.drives.len(),
        if models.is_empty() {
            "none".into()
        } else {
            models
                .iter()
                .map(|(k, v)| format!("{v}× {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        m,
        "- **Schedulers**: {}",
        r.schedulers
            .iter()
            .map(|s| match &s.version {
                Some(v) if s.name != BASELINE => format!("{} ({v})", s.label()),
                _ if s.name == BASELINE => "EEVDF (kernel default)".into(),
                _ => s.label(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let ci_levels: Vec<String> = {
        let mut n: Vec<usize> = rows(r)
            .iter()
            .flat_map(|row| row.summaries.iter().flatten().map(|s| s.n))
            .collect();
        n.sort_unstable();
        n.dedup();
        n.iter()
            .filter_map(|&n| {
                let s = summarize(&(0..n).map(|i| i as f64).collect::<Vec<_>>())?;
                (n > 1).then(|| format!("{:.1}% with {n} runs", s.ci_level * 100.0))
            })
            .collect()
    };
    let _ = writeln!(
        m,
        "- **Method**: {} repetition(s){}, the schedulers interleaved in each ({}); each run starts once the CPUs are quiet \
         (under {} CPUs busy over {} ms, at most {} s of waiting); fio runs {} s after a {} s ramp. \
         Cells are the median over successful runs with a distribution-free confidence interval \
         of the median in brackets (order statistics, 95% asked; coverage {}). \
         ×EEVDF is the median divided by EEVDF's. ↓ lower is better, ↑ higher is better. \
         Completion latency is fio's clat (submission to completion); total latency is fio's lat, \
         which adds the submission call, where a submitting thread that waits for a CPU shows up. \
         Runs where the scheduler was not active before and after (ejected, restarted) are failed and left out.",
        r.options.reps,
        if r.options.quick { " (--quick)" } else { "" },
        run_order(r),
        cpustat::QUIET_BUSY_CPUS,
        cpustat::SETTLE_WINDOW_MS,
        cpustat::SETTLE_MAX_S,
        r.options.runtime_s,
        r.options.ramp_s,
        if ci_levels.is_empty() { "n/a".into() } else { ci_levels.join(", ") }
    );
    let _ = writeln!(m, "- **Command**: `{}`\n", r.command.join(" "));

    // Main table.
    let _ = writeln!(m, "## Main results\n");
    let base = r.schedulers.iter().position(|s| s.name == BASELINE);
    let mut header = "| workload | metric |".to_string();
    let mut rule = "|---|---|".to_string();
    for (i, s) in r.schedulers.iter().enumerate() {
        header += &format!(" {} |", s.label());
        rule += "---:|";
        if base.is_some() && Some(i) != base {
            header += &format!(" {} ×EEVDF |", s.label());
            rule += "---:|";
        }
    }
    let _ = writeln!(m, "{header}\n{rule}");
    let all_rows = rows(r);
    for row in &all_rows {
        let info = metric_info(&row.metric);
        let _ = write!(
            m,
            "| {} | {} {} |",
            row.workload,
            info.with_unit(),
            if info.higher_is_better { "↑" } else { "↓" }
        );
        for (i, s) in row.summaries.iter().enumerate() {
            let _ = write!(m, " {} |", cell(s));
            if base.is_some() && Some(i) != base {
                let _ = write!(
                    m,
                    " {} |",
                    row.ratios[i].map_or("–".into(), |x| format!("{x:.2}"))
                );
            }
        }
        m.push('\n');
    }
    if all_rows.is_empty() {
        let _ = writeln!(m, "| (no successful runs) | | |");
    }

    // Runs.
    let count = |st: RunStatus| r.runs.iter().filter(|x| x.status == st).count();
    let _ = writeln!(
        m,
        "\n## Runs\n\n{} runs: {} ok, {} failed, {} interrupted.\n",
        r.runs.len(),
        count(RunStatus::Ok),
        count(RunStatus::Failed),
        count(RunStatus::Interrupted)
    );
    let unsettled = r
        .runs
        .iter()
        .filter(|x| x.details["settle"]["quiet"] == Value::Bool(false))
        .count();
    if unsettled > 0 {
        let _ = writeln!(
            m,
            "{unsettled} run(s) started with the CPUs still busy after {} s of waiting for quiet \
             (`details.settle` in results.json).\n",
            cpustat::SETTLE_MAX_S
        );
    }
    let bad: Vec<&Run> = r
        .runs
        .iter()
        .filter(|x| x.status != RunStatus::Ok)
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(
            m,
            "| # | rep | scheduler | workload | status | reason |\n|---|---|---|---|---|---|"
        );
        for x in bad {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {:?} | {} |",
                x.index,
                x.rep,
                label(&x.scheduler),
                x.workload,
                x.status,
                x.error.as_deref().unwrap_or("").replace('|', "/")
            );
        }
        m.push('\n');
    }

    // Plots.
    let plots = plots(r);
    if !plots.is_empty() {
        let _ = writeln!(m, "## Plots\n");
        for (file, title, _) in &plots {
            let _ = writeln!(m, "![{title}]({file})\n");
        }
    }

    // Per-drive and per-CCX detail of the contention workloads.
    let detail = detail_tables(r);
    if !detail.is_empty() {
        let _ = writeln!(m, "## Per drive and per CCX\n\n{detail}");
    }

    // Workloads.
    let _ = writeln!(m, "## Workloads\n");
    for w in &r.workloads {
        let params = w
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", param_str(v)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(m, "- **{}**: {}. Parameters: {params}.", w.name, w.title);
        if let Some(run) = r.runs.iter().find(|x| x.workload == w.name) {
            for c in &run.commands {
                let _ = writeln!(m, "  - `{c}`");
            }
        }
    }

    // Environment.
    let _ = writeln!(m, "\n## Environment\n");
    let _ = writeln!(
        m,
        "- sched_ext: {}{}",
        if env.kernel.sched_ext {
            "available"
        } else {
            "not in this kernel"
        },
        if env.kernel.sched_ext && !env.kernel.btf {
            " (but no BTF)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        m,
        "- NUMA: {}",
        topo.numa_nodes
            .iter()
            .map(|n| format!("node{}=[{}]", n.id, cpu_list(&n.cpus)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        m,
        "- SMT: {}, packages: {}, cpufreq governor: {}\n",
        if topo.smt { "on" } else { "off" },
        topo.packages,
        env.cpufreq_governor.as_deref().unwrap_or("none")
    );
    if !env.drives.is_empty() {
        let _ = writeln!(
            m,
            "| drive | model | size (GiB) | I/O queue IRQs | IRQ CPUs | IRQ CCX |\n|---|---|---:|---:|---|---|"
        );
        for d in &env.drives {
            let (q, cpus, ccx) = match &d.irqs {
                Some(i) => (
                    i.io_queues.to_string(),
                    cpu_list(&i.affinity_cpus),
                    i.home_llcs
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                None => ("–".into(), "–".into(), "–".into()),
            };
            let _ = writeln!(
                m,
                "| {} | {} | {:.1} | {q} | {cpus} | {ccx} |",
                d.path,
                d.model.as_deref().unwrap_or("–"),
                d.size_bytes as f64 / (1u64 << 30) as f64
            );
        }
        m.push('\n');
    }
    let _ = writeln!(m, "| scheduler | version | binary |\n|---|---|---|");
    for s in &r.schedulers {
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            s.label(),
            s.version.as_deref().unwrap_or("–"),
            s.path.as_deref().unwrap_or("(kernel)")
        );
    }
    let _ = writeln!(m, "\n| tool | version | path |\n|---|---|---|");
    for t in &env.tools {
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            t.name,
            t.version.as_deref().unwrap_or("–"),
            t.path.as_deref().unwrap_or("not installed")
        );
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(m, "\n## Skipped\n");
        for s in &r.skipped {
            let _ = writeln!(m, "- {}: {}", s.what, s.why);
        }
    }
    m
}

/// Medians per drive (fio workloads with hogs) and per CCX (mixed).
fn detail_tables(r: &Results) -> String {
    let mut m = String::new();
    for w in &r.workloads {
        for (key, what) in [("per_drive", "drive"), ("per_ccx", "CCX")] {
            // (unit name, metric) -> scheduler -> values
            let mut vals: BTreeMap<(String, String), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
            for run in r
                .runs
                .iter()
                .filter(|x| x.workload == w.name && x.status == RunStatus::Ok)
            {
                let Some(items) = run.details.get(key).and_then(Value::as_array) else {
                    continue;
                };
                for it in items {
                    let Some(name) = it.get("name").and_then(Value::as_str) else {
                        continue;
                    };
                    for metric in ["iops", "clat_p99_us", "lat_p99_us"] {
                        if let Some(v) = it.get(metric).and_then(Value::as_f64) {
                            vals.entry((name.to_string(), metric.to_string()))
                                .or_default()
                                .entry(run.scheduler.clone())
                                .or_default()
                                .push(v);
                        }
                    }
                }
            }
            if vals.is_empty() || !(w.name.contains("hogs") || key == "per_ccx") {
                continue;
            }
            let _ = writeln!(
                m,
                "**{}** ({}), median per {what}:\n",
                w.name,
                workload_title(r, &w.name)
            );
            let mut header = format!("| {what} | metric |");
            let mut rule = "|---|---|".to_string();
            for s in &r.schedulers {
                header += &format!(" {} |", s.label());
                rule += "---:|";
            }
            let _ = writeln!(m, "{header}\n{rule}");
            let mut keys: Vec<&(String, String)> = vals.keys().collect();
            keys.sort_by_key(|(n, metric)| {
                (super::sysinfo::natural_key(n), metric_info(metric).order)
            });
            for k in keys {
                let info = metric_info(&k.1);
                let _ = write!(m, "| {} | {} |", k.0, info.with_unit());
                for s in &r.schedulers {
                    let med = vals[k].get(&s.name).and_then(|v| super::stats::median(v));
                    let _ = write!(m, " {} |", med.map_or("–".into(), fmt_num));
                }
                m.push('\n');
            }
            m.push('\n');
        }
    }
    m
}

fn bar(s: &Option<Summary>) -> Option<Bar> {
    s.as_ref().map(|s| Bar {
        median: s.median,
        low: s.ci_low,
        high: s.ci_high,
    })
}

/// The plots: (file name, title, SVG).
pub fn plots(r: &Results) -> Vec<(String, String, String)> {
    let rows = rows(r);
    let series: Vec<String> = r.schedulers.iter().map(|s| s.label()).collect();
    let find = |w: &str, k: &str| rows.iter().find(|x| x.workload == w && x.metric == k);
    let mut out = Vec::new();
    let fio_workloads: Vec<&str> = r
        .workloads
        .iter()
        .map(|w| w.name.as_str())
        .filter(|w| find(w, "clat_p99_us").is_some())
        .collect();
    // Latency percentiles, contention workloads first.
    let mut lat: Vec<&str> = fio_workloads
        .iter()
        .copied()
        .filter(|w| w.contains("hogs") || *w == "mixed")
        .collect();
    lat.extend(
        fio_workloads
            .iter()
            .copied()
            .filter(|w| !(w.contains("hogs") || *w == "mixed")),
    );
    for w in lat {
        let keys = [
            "clat_p50_us",
            "clat_p99_us",
            "clat_p999_us",
            "lat_p50_us",
            "lat_p99_us",
            "lat_p999_us",
        ];
        let groups: Vec<String> = [
            "clat p50",
            "clat p99",
            "clat p99.9",
            "lat p50",
            "lat p99",
            "lat p99.9",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let values = keys
            .iter()
            .map(|k| match find(w, k) {
                Some(row) => row.summaries.iter().map(bar).collect(),
                None => vec![None; series.len()],
            })
            .collect();
        let title = format!("Latency percentiles, {w}: completion (clat) and total (lat)");
        let sub = workload_title(r, w);
        let svg = Chart {
            title: &title,
            subtitle: &sub,
            y_label: "latency (µs)",
            groups,
            series: series.clone(),
            values,
            log: true,
        }
        .render();
        out.push((format!("latency-{w}.svg"), title, svg));
    }
    let mut simple =
        |file: &str, title: &str, subtitle: &str, y_label: &str, metric: &str, log: bool| {
            let ws: Vec<&str> = r
                .workloads
                .iter()
                .map(|w| w.name.as_str())
                .filter(|w| find(w, metric).is_some())
                .collect();
            if ws.is_empty() {
                return;
            }
            let values = ws
                .iter()
                .map(|w| {
                    find(w, metric).map_or(vec![None; series.len()], |row| {
                        row.summaries.iter().map(bar).collect()
                    })
                })
                .collect();
            let svg = Chart {
                title,
                subtitle,
                y_label,
                groups: ws.iter().map(|s| s.to_string()).collect(),
                series: series.clone(),
                values,
                log,
            }
            .render();
            out.push((file.to_string(), title.to_string(), svg));
        };
    simple(
        "iops.svg",
        "fio 4k random read IOPS, all drives",
        "higher is better",
        "IOPS",
        "iops",
        false,
    );
    simple(
        "throughput.svg",
        "CPU hog throughput while fio runs",
        "stress-ng bogo-ops/s over the hogs' lifetime; higher is better",
        "bogo-ops/s",
        "hog_ops_per_s",
        false,
    );
    simple(
        "messaging.svg",
        "Messaging benchmark wall time",
        "lower is better",
        "seconds",
        "time_s",
        false,
    );
    simple(
        "schbench.svg",
        "schbench wake-up latency p99",
        "lower is better",
        "µs",
        "wakeup_p99_us",
        true,
    );
    out
}

/// Write report.md and the plots into `dir`; returns the file names.
pub fn write_report(r: &Results, dir: &Path) -> io::Result<Vec<String>> {
    let mut files = vec!["report.md".to_string()];
    fs::write(dir.join("report.md"), markdown(r))?;
    for (file, _, svg) in plots(r) {
        fs::write(dir.join(&file), svg)?;
        files.push(file);
    }
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bench::model::*;
    use crate::bench::sysinfo::*;
    use serde_json::json;

    fn sched_state(s: &str) -> SchedState {
        SchedState {
            state: s.into(),
            ops: None,
            enable_seq: Some(0),
        }
    }

    pub(crate) fn sample() -> Results {
        let topo = CpuTopology {
            model: "AMD EPYC-Genoa".into(),
            online: vec![0, 1, 2, 3],
            llcs: vec![vec![0, 1], vec![2, 3]],
            llc_guessed: false,
            numa_nodes: vec![NumaNode {
                id: 0,
                cpus: vec![0, 1, 2, 3],
            }],
            packages: 1,
            smt: false,
        };
        let mut runs = Vec::new();
        let scheds = ["eevdf", "scx_storeland"];
        for rep in 1..=3u32 {
            for (si, s) in scheds.iter().enumerate() {
                let p99 = if si == 0 {
                    14000.0 + rep as f64 * 100.0
                } else {
                    7000.0 + rep as f64 * 10.0
                };
                let failed = si == 1 && rep == 2;
                runs.push(Run {
                    index: runs.len(),
                    rep,
                    scheduler: s.to_string(),
                    scheduler_version: None,
                    workload: "qd1-hogs".into(),
                    status: if failed { RunStatus::Failed } else { RunStatus::Ok },
                    error: failed.then(|| "scheduler ejected: runnable task stall".into()),
                    started: "2026-11-25T16:00:00Z".into(),
                    duration_s: 5.0,
                    params: BTreeMap::new(),
                    commands: vec!["fio --rw=randread".into()],
                    sched_before: sched_state("disabled"),
                    sched_after: sched_state("disabled"),
                    versions: BTreeMap::new(),
                    topology: topo.describe(),
                    metrics: BTreeMap::from([
                        ("iops".to_string(), 1000.0 * (si + 1) as f64),
                        ("clat_p50_us".to_string(), p99 / 10.0),
                        ("clat_p99_us".to_string(), p99),
                        ("clat_p999_us".to_string(), p99 * 2.0),
                        ("hog_ops_per_s".to_string(), 5000.0),
                    ]),
                    details: json!({"per_drive": [{"name": "nvme0n1", "iops": 500.0, "clat_p99_us": p99}]}),
                });
            }
        }
        Results {
            schema: SCHEMA.into(),
            tool: "storeland-bench 0.1.0".into(),
            started: "2026-11-25T16:00:00Z".into(),
            finished: Some("2026-11-25T16:05:00Z".into()),
            status: "complete".into(),
            command: vec!["storeland-bench".into(), "--quick".into()],
            options: RunOptions {
                quick: true,
                reps: 3,
                runtime_s: 3.0,
                ramp_s: 1.0,
                allow_writes: false,
                devices: vec!["/dev/nvme0n1".into()],
                out: "/tmp/x".into(),
            },
            environment: Environment {
                hostname: "vm".into(),
                is_root: true,
                kernel: KernelInfo {
                    release: "7.3.4".into(),
                    version: "Linux".into(),
                    sched_ext: true,
                    btf: true,
                    state: Some("disabled".into()),
                    ops: None,
                },
                topology: topo,
                drives: vec![],
                tools: vec![Tool {
                    name: "fio".into(),
                    path: Some("/bin/fio".into()),
                    version: Some("fio-3.33".into()),
                }],
                cpufreq_governor: None,
            },
            schedulers: scheds
                .iter()
                .map(|s| SchedulerInfo {
                    name: s.to_string(),
                    path: None,
                    version: None,
                    args: vec![],
                })
                .collect(),
            workloads: vec![WorkloadInfo {
                name: "qd1-hogs".into(),
                title: "fio 4k randread qd1 per drive + CPU hogs".into(),
                params: BTreeMap::from([("iodepth".to_string(), json!(1))]),
            }],
            skipped: vec![Skipped {
                what: "schbench".into(),
                why: "not installed".into(),
            }],
            runs,
        }
    }

    #[test]
    fn rows_leave_failed_runs_out_and_compute_ratios() {
        let r = sample();
        let rows = rows(&r);
        let p99 = rows.iter().find(|x| x.metric == "clat_p99_us").unwrap();
        let e = p99.summaries[0].as_ref().unwrap();
        let s = p99.summaries[1].as_ref().unwrap();
        assert_eq!((e.n, e.median), (3, 14200.0));
        assert_eq!(s.n, 2, "the failed run is not averaged in");
        assert_eq!(s.median, 7020.0);
        assert!((p99.ratios[1].unwrap() - 7020.0 / 14200.0).abs() < 1e-12);
        assert_eq!(p99.ratios[0], Some(1.0));
        assert_eq!(rows[0].metric, "iops", "IOPS first");
    }

    #[test]
    fn the_method_gives_the_order_the_schedulers_ran_in() {
        let mut r = sample();
        assert!(
            markdown(&r).contains("interleaved in each (EEVDF → scx_storeland);"),
            "one order for every repetition"
        );
        // Repetition 2 ran scx_storeland first.
        for run in r.runs.iter_mut().filter(|x| x.rep == 2) {
            run.scheduler = if run.scheduler == "eevdf" {
                "scx_storeland".into()
            } else {
                "eevdf".into()
            };
        }
        let md = markdown(&r);
        assert!(
            md.contains(
                "(rep 1: EEVDF → scx_storeland; rep 2: scx_storeland → EEVDF; \
                 rep 3: EEVDF → scx_storeland)"
            ),
            "{md}"
        );
    }

    #[test]
    fn markdown_has_the_main_table_and_failures() {
        let md = markdown(&sample());
        assert!(
            md.contains("| workload | metric | EEVDF | scx_storeland | scx_storeland ×EEVDF |"),
            "{md}"
        );
        assert!(md.contains("| qd1-hogs | completion latency p99 (µs) ↓ | 14,200 [14,100–14,300] | 7,020 [7,010–7,030] | 0.49 |"), "{md}");
        assert!(md.contains("6 runs: 5 ok, 1 failed, 0 interrupted."));
        assert!(md.contains("scheduler ejected"));
        assert!(md.contains("![Latency percentiles"));
        assert!(md.contains("- schbench: not installed"));
        assert!(md.contains("75.0% with 3 runs"));
        assert!(md.contains("| nvme0n1 | completion latency p99 (µs) |"));
        assert!(md.contains("| qd1-hogs | IOPS ↑ |"), "{md}");
    }

    #[test]
    fn runs_that_started_busy_are_counted() {
        let mut r = sample();
        let md = markdown(&r);
        assert!(
            md.contains("each run starts once the CPUs are quiet"),
            "{md}"
        );
        assert!(!md.contains("still busy"), "{md}");
        r.runs[0].details["settle"] = json!({"waited_s": 10.1, "busy_cpus": 1.9, "quiet": false});
        r.runs[1].details["settle"] = json!({"waited_s": 0.25, "busy_cpus": 0.1, "quiet": true});
        let md = markdown(&r);
        assert!(
            md.contains("1 run(s) started with the CPUs still busy after 10 s"),
            "{md}"
        );
    }

    #[test]
    fn plots_are_svg_and_rendering_is_deterministic() {
        let r = sample();
        let p = plots(&r);
        let names: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            vec!["latency-qd1-hogs.svg", "iops.svg", "throughput.svg"]
        );
        for (_, _, svg) in &p {
            assert!(svg.starts_with("<svg") && svg.contains("scx_storeland"));
        }
        // Through JSON and back: the same report.
        let json = serde_json::to_string_pretty(&r).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(markdown(&back), markdown(&r));
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(14812.3), "14,812");
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(152.4), "152");
        assert_eq!(fmt_num(15.24), "15.2");
        assert_eq!(fmt_num(1.524), "1.52");
        assert_eq!(fmt_num(0.0152), "0.015");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(-2500.0), "-2,500");
    }
}
