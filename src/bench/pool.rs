//! Several results files read together (`storeland-bench --pool`): each
//! run's metric over EEVDF's in the same repetition of the same file, then
//! the median of those ratios per file and over all of them.
//!
//! Pairing within a repetition is what makes files comparable: the host's
//! speed moves every absolute number between boots of a VM, and drifts
//! within one, while the runs of one repetition are minutes apart. The
//! pooled median, with its distribution-free interval, says where a ratio
//! sits when the boots themselves disagree.

use std::fmt::Write;

use super::model::{label, metric_info, Results, RunStatus, BASELINE};
use super::stats::{median, summarize, Summary};

/// One metric of one workload under one scheduler, over every file.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledRow {
    pub workload: String,
    pub metric: String,
    pub scheduler: String,
    /// The median paired ratio in each file, in the order given (None where
    /// the file has no such pair).
    pub per_file: Vec<Option<f64>>,
    /// Every paired ratio of every file.
    pub pooled: Summary,
}

/// Each successful run of `sched` on `workload`, over the baseline's
/// successful run of the same repetition, where both measured `metric`.
pub fn paired_ratios(r: &Results, sched: &str, workload: &str, metric: &str) -> Vec<f64> {
    let value = |s: &str, rep: u32| {
        r.runs
            .iter()
            .find(|x| {
                x.status == RunStatus::Ok
                    && x.scheduler == s
                    && x.workload == workload
                    && x.rep == rep
            })
            .and_then(|x| x.metrics.get(metric).copied())
    };
    r.runs
        .iter()
        .filter(|x| x.status == RunStatus::Ok && x.scheduler == sched && x.workload == workload)
        .filter_map(|x| {
            let v = x.metrics.get(metric).copied()?;
            let b = value(BASELINE, x.rep)?;
            (b != 0.0).then(|| v / b)
        })
        .collect()
}

/// Appends the `items` that `out` lacks, in the order first seen.
fn add_new<'a>(out: &mut Vec<String>, items: impl Iterator<Item = &'a String>) {
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
}

/// Every (workload, metric, scheduler other than the baseline) that has at
/// least one paired ratio in one of `files`: workloads and schedulers in the
/// order first seen, metrics in the report's order.
pub fn pool(files: &[Results]) -> Vec<PooledRow> {
    let (mut workloads, mut schedulers) = (Vec::new(), Vec::new());
    for f in files {
        add_new(&mut workloads, f.workloads.iter().map(|w| &w.name));
        add_new(
            &mut schedulers,
            f.schedulers
                .iter()
                .map(|s| &s.name)
                .filter(|s| *s != BASELINE),
        );
    }
    let mut out = Vec::new();
    for w in &workloads {
        let mut metrics = Vec::new();
        for f in files {
            let ok = f
                .runs
                .iter()
                .filter(|x| x.workload == *w && x.status == RunStatus::Ok);
            add_new(&mut metrics, ok.flat_map(|x| x.metrics.keys()));
        }
        metrics.sort_by_key(|k| (metric_info(k).order, k.clone()));
        for m in &metrics {
            for s in &schedulers {
                let per: Vec<Vec<f64>> = files.iter().map(|f| paired_ratios(f, s, w, m)).collect();
                let all: Vec<f64> = per.iter().flatten().copied().collect();
                let Some(pooled) = summarize(&all) else {
                    continue;
                };
                out.push(PooledRow {
                    workload: w.clone(),
                    metric: m.clone(),
                    scheduler: s.clone(),
                    per_file: per.iter().map(|v| median(v)).collect(),
                    pooled,
                });
            }
        }
    }
    out
}

/// The pooled rows as a Markdown table, one column per file (named by
/// `names`), then the pooled median with its interval, range and count.
pub fn markdown(names: &[String], rows: &[PooledRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Each run's metric over EEVDF's in the same repetition of the same file; the median \
         of those ratios per file, then over all {} file(s): the pooled median with its {:.0}% \
         interval (order statistics), the range and the number of pairs.\n",
        names.len(),
        super::stats::CONFIDENCE * 100.0
    );
    let mut head = "| workload | metric | scheduler |".to_string();
    let mut rule = "|---|---|---|".to_string();
    for n in names {
        let _ = write!(head, " {n} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head} pooled | range | pairs |");
    let _ = writeln!(s, "{rule}---:|---:|---:|");
    let ratio = |v: f64| format!("{v:.2}");
    for r in rows {
        let _ = write!(
            s,
            "| {} | {} | {} |",
            r.workload,
            metric_info(&r.metric).label,
            label(&r.scheduler)
        );
        for v in &r.per_file {
            let _ = write!(s, " {} |", v.map(ratio).unwrap_or_else(|| "–".into()));
        }
        let p = &r.pooled;
        let _ = writeln!(
            s,
            " {} [{}–{}] | {}–{} | {} |",
            ratio(p.median),
            ratio(p.ci_low),
            ratio(p.ci_high),
            ratio(p.min),
            ratio(p.max),
            p.n
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::model::{Run, SchedulerInfo, WorkloadInfo};
    use crate::bench::report::tests::sample;
    use std::collections::BTreeMap;

    /// A results file of (rep, scheduler, workload, iops) runs, all ok.
    fn file(runs: &[(u32, &str, &str, f64)]) -> Results {
        let mut r = sample();
        let template = r.runs[0].clone();
        r.runs = runs
            .iter()
            .enumerate()
            .map(|(index, &(rep, s, w, v))| Run {
                index,
                rep,
                scheduler: s.into(),
                workload: w.into(),
                status: RunStatus::Ok,
                error: None,
                metrics: BTreeMap::from([("iops".to_string(), v)]),
                ..template.clone()
            })
            .collect();
        r.schedulers.clear();
        r.workloads.clear();
        for &(_, s, w, _) in runs {
            if !r.schedulers.iter().any(|x| x.name == s) {
                r.schedulers.push(SchedulerInfo {
                    name: s.into(),
                    path: None,
                    version: None,
                    args: vec![],
                });
            }
            if !r.workloads.iter().any(|x| x.name == w) {
                r.workloads.push(WorkloadInfo {
                    name: w.into(),
                    title: w.into(),
                    params: BTreeMap::new(),
                });
            }
        }
        r
    }

    #[test]
    fn ratios_pair_runs_of_the_same_repetition() {
        // Repetition 2 ran on a host twice as fast: paired, it says the same.
        let f = file(&[
            (1, "eevdf", "qd1", 100.0),
            (1, "scx_a", "qd1", 90.0),
            (2, "scx_a", "qd1", 180.0),
            (2, "eevdf", "qd1", 200.0),
            // No baseline run in repetition 3: no pair.
            (3, "scx_a", "qd1", 50.0),
        ]);
        assert_eq!(paired_ratios(&f, "scx_a", "qd1", "iops"), vec![0.9, 0.9]);
        assert!(paired_ratios(&f, "scx_a", "qd1", "clat_p99_us").is_empty());
        assert!(paired_ratios(&f, "scx_b", "qd1", "iops").is_empty());
    }

    #[test]
    fn failed_runs_and_a_zero_baseline_make_no_pair() {
        let mut f = file(&[
            (1, "eevdf", "qd1", 100.0),
            (1, "scx_a", "qd1", 90.0),
            (2, "eevdf", "qd1", 0.0),
            (2, "scx_a", "qd1", 80.0),
            (3, "eevdf", "qd1", 100.0),
            (3, "scx_a", "qd1", 70.0),
        ]);
        f.runs[5].status = RunStatus::Failed;
        assert_eq!(paired_ratios(&f, "scx_a", "qd1", "iops"), vec![0.9]);
    }

    #[test]
    fn pooling_keeps_each_file_and_the_whole() {
        let a = file(&[
            (1, "eevdf", "qd1", 100.0),
            (1, "scx_a", "qd1", 80.0),
            (2, "eevdf", "qd1", 100.0),
            (2, "scx_a", "qd1", 90.0),
        ]);
        let b = file(&[
            (1, "eevdf", "qd1", 10.0),
            (1, "scx_a", "qd1", 11.0),
            (1, "scx_b", "qd1", 5.0),
        ]);
        let rows = pool(&[a, b]);
        assert_eq!(rows.len(), 2, "{rows:?}");
        let r = &rows[0];
        assert_eq!(
            (r.workload.as_str(), r.metric.as_str(), r.scheduler.as_str()),
            ("qd1", "iops", "scx_a")
        );
        assert_eq!(r.per_file.len(), 2);
        assert!((r.per_file[0].unwrap() - 0.85).abs() < 1e-9);
        assert!((r.per_file[1].unwrap() - 1.1).abs() < 1e-9);
        assert_eq!(r.pooled.n, 3);
        assert!((r.pooled.median - 0.9).abs() < 1e-9);
        assert_eq!((r.pooled.min, r.pooled.max), (0.8, 1.1));
        // A scheduler only one file ran: absent from the other, not zero.
        assert_eq!(rows[1].scheduler, "scx_b");
        assert_eq!(rows[1].per_file, vec![None, Some(0.5)]);

        let md = markdown(&["s1".into(), "s2".into()], &rows);
        assert!(
            md.contains("| workload | metric | scheduler | s1 | s2 | pooled | range | pairs |"),
            "{md}"
        );
        assert!(
            md.contains("| qd1 | IOPS | scx_a | 0.85 | 1.10 | 0.90 [0.80–1.10] | 0.80–1.10 | 3 |"),
            "{md}"
        );
        assert!(md.contains("| qd1 | IOPS | scx_b | – | 0.50 |"), "{md}");
    }

    #[test]
    fn nothing_to_pair_gives_no_rows() {
        let only_base = file(&[(1, "eevdf", "qd1", 100.0)]);
        assert!(pool(&[only_base]).is_empty());
        assert!(pool(&[]).is_empty());
    }
}
