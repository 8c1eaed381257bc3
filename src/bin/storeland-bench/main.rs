//! storeland-bench: the benchmark harness behind `scripts/bench`.
//!
//! Compares the kernel's default scheduler (EEVDF), scx_storeland and the
//! other installed sched_ext schedulers on storage-server workloads, in one
//! session, interleaved and repeated, and writes results.json, report.md
//! and SVG plots. Runs on a real server and inside the project's VM (a
//! busybox initramfs: no interpreter, just this binary and the tools).
//!
//! It links only the kernel-free library, never scx_rustland_core (whose
//! global allocator is a fixed 64 MiB heap).
//!
//! Exit codes: 0 done; 1 failure; 2 bad input or a device refused by the
//! safety check; 130 interrupted (default scheduler restored).

mod cli;
mod discover;
mod exec;
mod plan;
mod runner;
mod sched;
mod workloads;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use storeland::bench::model::{label, Results, RunOptions, Skipped, SCHEMA};
use storeland::bench::pool;
use storeland::bench::report;
use storeland::bench::safety;
use storeland::bench::sysinfo::{sched_state, Roots};

use cli::UsageError;
use discover::Discovery;

const EXIT_USAGE: i32 = 2;

fn version() -> String {
    format!("storeland-bench {}", env!("CARGO_PKG_VERSION"))
}

fn main() {
    std::process::exit(real_main());
}

fn usage(e: UsageError) -> i32 {
    eprintln!("error: {}", e.0);
    EXIT_USAGE
}

fn real_main() -> i32 {
    let opts = match cli::parse(std::env::args()) {
        Ok(o) => o,
        Err(Ok(help)) => {
            print!("{help}");
            return 0;
        }
        Err(Err(e)) => return usage(e),
    };
    if opts.version {
        println!("{}", version());
        return 0;
    }
    if let Some(dir) = &opts.report_from {
        return report_from(dir, opts.out.as_deref().unwrap_or(dir));
    }
    if let Some(dirs) = &opts.pool {
        return print_pool(dirs);
    }
    let reps = match &opts.reps {
        Some(r) => match cli::bounded("--reps", r, 1, 1000) {
            Ok(n) => n as u32,
            Err(e) => return usage(e),
        },
        None if opts.quick => 3,
        None => 5,
    };
    let runtime_s = match &opts.runtime {
        Some(r) => match cli::bounded("--runtime", r, 1, 3600) {
            Ok(n) => n as f64,
            Err(e) => return usage(e),
        },
        None if opts.quick => 2.0,
        None => 20.0,
    };
    let ramp_s = if opts.quick { 1.0 } else { 2.0 };
    let high_qd = match &opts.high_qd {
        Some(q) => match cli::bounded("--high-qd", q, 2, 4096) {
            Ok(n) => n as u32,
            Err(e) => return usage(e),
        },
        None => plan::HIGH_QD,
    };
    let want_workloads = match cli::workload_list(&opts.workloads, high_qd) {
        Ok(w) => w,
        Err(e) => return usage(e),
    };
    if let Some(out) = &opts.out {
        if out.exists() && !out.is_dir() {
            return usage(UsageError(format!(
                "--out {} exists and is not a directory",
                out.display()
            )));
        }
    }
    // Validate scheduler names before the (slower) discovery.
    if let Some(list) = &opts.schedulers {
        if list.iter().all(|s| s.trim().is_empty()) {
            return usage(UsageError("--schedulers is empty".into()));
        }
        for s in list
            .iter()
            .filter(|s| !s.trim().is_empty() && s.trim() != "all")
        {
            if let Err(e) = cli::scheduler_name(s) {
                return usage(e);
            }
        }
    }

    let sched_args = match cli::sched_args(&opts.sched_args) {
        Ok(a) => a,
        Err(e) => return usage(e),
    };
    let roots = Roots::host();
    for d in opts.devices.iter().flatten() {
        if let Err(e) = discover::device_name(&roots, d) {
            return usage(UsageError(e));
        }
    }
    // Ctrl-C, SIGTERM, SIGHUP: stop the current run, restore the default
    // scheduler, write what was measured.
    let _ = ctrlc::set_handler(|| {
        if exec::INTERRUPTED.swap(true, Ordering::Relaxed) {
            eprintln!("storeland-bench: still stopping (the scheduler is being detached)...");
        } else {
            eprintln!("storeland-bench: interrupted: stopping the current run and restoring the default scheduler");
        }
    });

    eprintln!("{}: discovering the machine", version());
    let disc = match discover::discover(&roots, opts.devices.as_deref(), &sched_args) {
        Ok(d) => d,
        Err(e) if e.starts_with("--devices") => return usage(UsageError(e)),
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    print_discovery(&disc);

    let settings = plan::Settings {
        reps,
        runtime_s,
        ramp_s,
        quick: opts.quick,
        allow_writes: opts.allow_writes,
        high_qd,
    };
    let plan = match plan::build(&disc, &opts.schedulers, &want_workloads, settings) {
        Ok(p) => p,
        Err(e) => return usage(e),
    };
    eprint!("{}", plan.describe());

    // Data safety: every device a write workload would touch is inspected
    // now (read-only); one refusal stops everything before it starts.
    if opts.allow_writes {
        let write_drives: Vec<String> = if plan.workloads.iter().any(|w| w.writes) {
            let mut v: Vec<String> = plan
                .mixed_jobs
                .iter()
                .map(|j| j.drive.path.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        } else {
            eprintln!("note: --allow-writes has no effect: no selected workload writes (only 'mixed' does)");
            vec![]
        };
        let mut refused = 0;
        for d in &write_drives {
            let mut i = safety::inspect(&roots, Path::new(d));
            if let Some(blkid) = &disc.blkid {
                if let Some((_, out)) = exec::output(
                    &[&blkid.to_string_lossy(), "-p", "-o", "export", d],
                    std::time::Duration::from_secs(30),
                ) {
                    i.findings.extend(safety::blkid_findings(&out));
                }
            }
            if i.is_safe() {
                eprintln!("safety: {d} is blank and unused: writes allowed outside its first and last MiB");
            } else {
                eprintln!("error: {}", i.refusal());
                refused += 1;
            }
        }
        if refused > 0 {
            return EXIT_USAGE;
        }
    }

    if opts.dry_run {
        eprintln!("dry run: nothing was started or written");
        return 0;
    }
    if let Err(e) = discover::probes_left_state_alone(&roots) {
        eprintln!("error: {e}");
        return 1;
    }
    if plan.workloads.is_empty() || plan.schedulers.is_empty() {
        eprintln!(
            "error: nothing to run: every selected workload or scheduler was skipped (see above)"
        );
        return 1;
    }
    let unavailable: Vec<&Skipped> = plan
        .skipped
        .iter()
        .filter(|s| s.what.starts_with("scheduler"))
        .collect();
    if !unavailable.is_empty() {
        eprintln!(
            "note: measuring {} only; unavailable: {}",
            plan.schedulers
                .iter()
                .map(|s| label(&s.name))
                .collect::<Vec<_>>()
                .join(", "),
            unavailable
                .iter()
                .map(|s| format!("{} ({})", s.what.trim_start_matches("scheduler "), s.why))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }

    let started = runner::now();
    let dir = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "storeland-bench-{}",
            started
                .replace(['-', ':'], "")
                .replace('T', "-")
                .trim_end_matches('Z')
        ))
    });
    if let Err(e) = fs::create_dir_all(&dir) {
        eprintln!("error: cannot create {}: {e}", dir.display());
        return 1;
    }
    let dir = fs::canonicalize(&dir).unwrap_or(dir);
    let mut skipped = plan.skipped.clone();
    if !disc.env.kernel.sched_ext {
        skipped.push(Skipped {
            what: "sched_ext schedulers".into(),
            why: "this kernel has no sched_ext: only the default scheduler (EEVDF) was measured"
                .into(),
        });
    }
    let results = Results {
        schema: SCHEMA.into(),
        tool: version(),
        started,
        finished: None,
        status: "running".into(),
        command: std::env::args().collect(),
        options: RunOptions {
            quick: plan.settings.quick,
            reps: plan.settings.reps,
            runtime_s: plan.settings.runtime_s,
            ramp_s: plan.settings.ramp_s,
            allow_writes: plan.settings.allow_writes,
            devices: plan.drives.iter().map(|d| d.path.clone()).collect(),
            out: dir.display().to_string(),
        },
        environment: disc.env.clone(),
        schedulers: plan.schedulers.clone(),
        workloads: plan.workloads.iter().map(|w| w.info()).collect(),
        skipped,
        runs: vec![],
    };
    runner::run(&plan, &disc, &roots, &dir, results)
}

fn print_discovery(d: &Discovery) {
    let e = &d.env;
    let t = &e.topology;
    eprintln!(
        "host: {}, kernel {}, {}",
        e.hostname, e.kernel.release, t.model
    );
    eprintln!(
        "cpus: {}; {}; SMT {}",
        t.describe(),
        t.nps(),
        if t.smt { "on" } else { "off" }
    );
    if let Some(g) = e
        .cpufreq_governor
        .as_deref()
        .filter(|g| *g != "performance")
    {
        eprintln!("note: the cpufreq governor is {g}: results vary more than with 'performance'");
    }
    let roots = Roots::host();
    let st = sched_state(&roots);
    eprintln!(
        "sched_ext: {}",
        if e.kernel.sched_ext {
            format!(
                "available (state {}{}){}",
                st.state,
                st.ops.map(|o| format!(", ops {o}")).unwrap_or_default(),
                if e.kernel.btf { "" } else { " but no BTF" }
            )
        } else {
            "not in this kernel: only EEVDF can be measured".into()
        }
    );
    if e.drives.is_empty() {
        eprintln!("drives: none found");
    }
    for dr in &e.drives {
        eprintln!("drive: {}", dr.describe());
    }
    for c in &d.candidates {
        eprintln!(
            "scheduler: {} {}{}{}",
            label(&c.info.name),
            c.info.version.as_deref().unwrap_or("(version unknown)"),
            if c.info.args.is_empty() {
                String::new()
            } else {
                format!(" with args {:?}", c.info.args)
            },
            match &c.unavailable {
                Some(why) => format!(" — unavailable: {why}"),
                None => c
                    .info
                    .path
                    .as_ref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default(),
            }
        );
    }
    let tools: Vec<String> = e
        .tools
        .iter()
        .map(|t| match (&t.path, &t.version) {
            (Some(_), Some(v)) => format!("{} [{v}]", t.name),
            (Some(p), None) => format!("{} [{p}]", t.name),
            (None, _) => format!("{} [not installed]", t.name),
        })
        .collect();
    eprintln!("tools: {}; fio engine {}", tools.join(", "), d.fio_engine);
}

/// DIR/results.json, read for @flag: a usage error if it is missing or not
/// a results file this tool reads.
fn load_results(flag: &str, dir: &Path) -> Result<Results, UsageError> {
    let path = dir.join("results.json");
    let text = fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("{flag}: {}: {e}", path.display())))?;
    let results: Results = serde_json::from_str(&text).map_err(|e| {
        UsageError(format!(
            "{flag}: {} is not a results file: {e}",
            path.display()
        ))
    })?;
    if results.schema != SCHEMA {
        return Err(UsageError(format!(
            "{flag}: {} has schema {:?}, this tool reads {SCHEMA:?}",
            path.display(),
            results.schema
        )));
    }
    Ok(results)
}

/// Render report.md and the plots from DIR/results.json.
fn report_from(dir: &Path, out: &Path) -> i32 {
    let results = match load_results("--report-from", dir) {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    if let Err(e) = fs::create_dir_all(out) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return 1;
    }
    match report::write_report(&results, out) {
        Ok(files) => {
            eprintln!("wrote {} into {}", files.join(" "), out.display());
            0
        }
        Err(e) => {
            eprintln!("error: cannot write the report into {}: {e}", out.display());
            1
        }
    }
}

/// Print the paired ratios of several results files, pooled (--pool).
fn print_pool(dirs: &[PathBuf]) -> i32 {
    let mut files = Vec::new();
    for d in dirs {
        match load_results("--pool", d) {
            Ok(r) => files.push(r),
            Err(e) => return usage(e),
        }
    }
    let rows = pool::pool(&files);
    if rows.is_empty() {
        return usage(UsageError(
            "--pool: no run in these files has an EEVDF run of the same repetition to compare with"
                .into(),
        ));
    }
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    print!("{}", pool::markdown(&names, &rows));
    0
}

#[cfg(test)]
mod tests {
    /// This binary must not carry scx_rustland_core's fixed 64 MiB heap:
    /// an allocation beyond it would abort here.
    #[test]
    fn the_global_allocator_is_the_system_one() {
        let mut v = vec![0u8; 128 << 20];
        v[(128 << 20) - 1] = 1;
        assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 1);
    }
}
