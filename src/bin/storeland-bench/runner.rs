//! The benchmark loop: repetitions, each running every scheduler in turn
//! (A B C A B C ...) through every workload, with the scheduler confirmed
//! before and after each run, progress and ETA on stderr, and results.json
//! rewritten after every run.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::Instant;

use storeland::bench::model::{label, Results, Run, RunStatus};
use storeland::bench::report;
use storeland::bench::sysinfo::{sched_state, Roots};

use crate::discover::Discovery;
use crate::exec;
use crate::plan::{fmt_duration, Plan, ATTACH_EST_S};
use crate::sched::{self, Active};
use crate::workloads::{self, Ctx};

pub const EXIT_INTERRUPTED: i32 = 130;

/// Write `results.json` atomically.
pub fn save(results: &Results, dir: &Path) -> io::Result<()> {
    let tmp = dir.join(".results.json.tmp");
    let json = serde_json::to_string_pretty(results).map_err(io::Error::other)?;
    fs::write(&tmp, json + "\n")?;
    fs::rename(tmp, dir.join("results.json"))
}

/// Seconds since the Unix epoch as RFC 3339 UTC ("2026-11-25T16:49:08Z").
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

pub fn now() -> String {
    utc(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

fn one_line_result(run: &Run) -> String {
    let word = match run.status {
        RunStatus::Ok => "ok",
        RunStatus::Failed => "FAILED",
        RunStatus::Interrupted => "INTERRUPTED",
    };
    if run.status != RunStatus::Ok {
        return format!("{word}: {}", run.error.as_deref().unwrap_or(""));
    }
    let m = &run.metrics;
    let f = report::fmt_num;
    let parts: Vec<String> = [
        ("iops", "", " IOPS"),
        ("clat_p99_us", "p99 ", " µs"),
        ("hog_ops_per_s", "hogs ", " ops/s"),
        ("time_s", "", " s"),
        ("wakeup_p99_us", "wake-up p99 ", " µs"),
    ]
    .iter()
    .filter_map(|(k, pre, post)| m.get(*k).map(|v| format!("{pre}{}{post}", f(*v))))
    .collect();
    format!("{word}: {}", parts.join(", "))
}

/// Run the plan; returns the exit code.
pub fn run(plan: &Plan, disc: &Discovery, roots: &Roots, dir: &Path, mut results: Results) -> i32 {
    let raw = dir.join("raw");
    let logs = dir.join("logs");
    for d in [&raw, &logs] {
        if let Err(e) = fs::create_dir_all(d) {
            eprintln!("error: cannot create {}: {e}", d.display());
            return 1;
        }
    }
    if let Err(e) = save(&results, dir) {
        eprintln!("error: cannot write {}/results.json: {e}", dir.display());
        return 1;
    }
    let mut versions: BTreeMap<String, String> =
        BTreeMap::from([("kernel".to_string(), disc.env.kernel.release.clone())]);
    for t in &disc.env.tools {
        if let Some(v) = &t.version {
            versions.insert(t.name.clone(), v.clone());
        }
    }
    let topo_line = disc.topo().describe();
    let total = plan.runs();
    let est_total = plan.estimate_s();
    let mut est_done = 0.0;
    let t0 = Instant::now();
    let reps = plan.settings.reps;

    'reps: for rep in 1..=reps {
        for info in plan.rep_order(rep) {
            if exec::interrupted() {
                break 'reps;
            }
            let log = logs.join(format!("rep{rep}-{}.log", info.name));
            let mut active: Option<Active> = None;
            let mut start_error: Option<String> = None;
            for w in &plan.workloads {
                if exec::interrupted() {
                    break;
                }
                let index = results.runs.len();
                let elapsed = t0.elapsed().as_secs_f64();
                let eta = if est_done > 0.0 {
                    (est_total - est_done).max(0.0) * elapsed / est_done
                } else {
                    est_total
                };
                eprintln!(
                    "[{:>3}/{total} {:>3.0}%] rep {rep}/{reps} · {} · {} · elapsed {} · ETA {}",
                    index + 1,
                    100.0 * index as f64 / total.max(1) as f64,
                    label(&info.name),
                    w.name,
                    fmt_duration(elapsed),
                    fmt_duration(eta)
                );
                if active.is_none() && start_error.is_none() {
                    match sched::start(info, roots, &log) {
                        Ok(a) => {
                            if a.name != storeland::bench::model::BASELINE {
                                eprintln!(
                                    "          {} attached ({})",
                                    label(&info.name),
                                    sched_state(roots).ops.unwrap_or_default()
                                );
                            }
                            active = Some(a);
                        }
                        Err(e) => start_error = Some(format!("could not start the scheduler: {e}")),
                    }
                }
                let started = now();
                let t_run = Instant::now();
                let raw_prefix = raw.join(format!("{index:03}-{}-{}", info.name, w.name));
                let (before, after, outcome, check_error) = match active.as_mut() {
                    Some(a) => {
                        let (before, ok_before) = a.confirm(roots);
                        if let Err(e) = ok_before {
                            (
                                before.clone(),
                                before,
                                workloads::Outcome::default(),
                                Some(format!("not active before the run: {e}")),
                            )
                        } else {
                            let ctx = Ctx {
                                disc,
                                plan,
                                roots,
                                raw: raw_prefix,
                            };
                            let o = workloads::run(w, &ctx);
                            let (after, ok_after) = a.confirm(roots);
                            (
                                before,
                                after,
                                o,
                                ok_after
                                    .err()
                                    .map(|e| format!("not active after the run: {e}")),
                            )
                        }
                    }
                    None => {
                        let s = sched_state(roots);
                        (
                            s.clone(),
                            s,
                            workloads::Outcome::default(),
                            start_error.clone(),
                        )
                    }
                };
                let (status, error) = if outcome.interrupted {
                    (
                        RunStatus::Interrupted,
                        Some("interrupted (Ctrl-C)".to_string()),
                    )
                } else if let Some(e) = check_error.clone() {
                    (RunStatus::Failed, Some(e))
                } else if let Some(e) = outcome.error.clone() {
                    (RunStatus::Failed, Some(e))
                } else {
                    (RunStatus::Ok, None)
                };
                let run = Run {
                    index,
                    rep,
                    scheduler: info.name.clone(),
                    scheduler_version: info.version.clone(),
                    workload: w.name.clone(),
                    status,
                    error,
                    started,
                    duration_s: (t_run.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
                    params: w.params.clone(),
                    commands: outcome.commands,
                    sched_before: before,
                    sched_after: after,
                    versions: {
                        let mut v = versions.clone();
                        if let Some(sv) = &info.version {
                            v.insert("scheduler".into(), sv.clone());
                        }
                        v
                    },
                    topology: topo_line.clone(),
                    metrics: if status == RunStatus::Ok {
                        outcome.metrics
                    } else {
                        BTreeMap::new()
                    },
                    details: outcome.details,
                };
                eprintln!("          {}", one_line_result(&run));
                results.runs.push(run);
                if let Err(e) = save(&results, dir) {
                    eprintln!("warning: cannot update results.json: {e}");
                }
                est_done += w.estimate_s;
                // An ejected or exited scheduler is restarted for the next
                // workload; one that cannot start is not retried this round.
                if check_error.is_some() && start_error.is_none() {
                    if let Some(a) = active.take() {
                        if let Err(e) = a.stop(roots) {
                            eprintln!("warning: {e}");
                        }
                    }
                }
            }
            if let Some(a) = active.take() {
                if let Err(e) = a.stop(roots) {
                    eprintln!("warning: {e}");
                }
            }
            if info.name != storeland::bench::model::BASELINE {
                est_done += ATTACH_EST_S;
            }
        }
    }

    let interrupted = exec::interrupted();
    results.status = if interrupted {
        "interrupted"
    } else {
        "complete"
    }
    .into();
    results.finished = Some(now());
    if let Err(e) = save(&results, dir) {
        eprintln!("error: cannot write results.json: {e}");
        return 1;
    }
    let files = match report::write_report(&results, dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot write the report: {e}");
            return 1;
        }
    };
    let md = report::markdown(&results);
    if let Some(table) = md
        .split("## Main results\n")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
    {
        println!("{}", table.trim());
    }
    let ok = results
        .runs
        .iter()
        .filter(|r| r.status == RunStatus::Ok)
        .count();
    eprintln!(
        "{} runs ({ok} ok) in {}; results in {}: results.json {}",
        results.runs.len(),
        fmt_duration(t0.elapsed().as_secs_f64()),
        dir.display(),
        files.join(" ")
    );
    if interrupted {
        let s = sched_state(roots);
        eprintln!(
            "interrupted: sched_ext state is {} (the kernel's default scheduler is back); partial results written",
            s.state
        );
        return EXIT_INTERRUPTED;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_795_625_348), "2026-11-25T16:49:08Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
