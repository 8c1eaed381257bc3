//! Command line. Every bad input is one line on stderr and exit 2.

use std::path::PathBuf;

use clap::Parser;

/// storeland-bench: compare CPU schedulers on a storage server (EEVDF,
/// scx_storeland and every installed sched_ext scheduler) with fio, CPU
/// hogs, a messaging benchmark, schbench and a mixed storage-server load,
/// interleaved and repeated, and write results.json, report.md and SVG plots.
///
/// Read-only unless --allow-writes. Exit codes: 0 done (a host without
/// sched_ext measures EEVDF only); 1 failure; 2 bad input or a device
/// refused by the safety check; 130 interrupted (the default scheduler is
/// restored and partial results are written).
#[derive(Debug, Parser)]
#[command(
    name = "storeland-bench",
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Opts {
    /// Output directory (default: ./storeland-bench-<UTC date-time>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Schedulers to compare, comma-separated: eevdf, storeland, any scx_*
    /// in PATH (the scx_ prefix may be left out), or all [default: all found].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub schedulers: Option<Vec<String>>,

    /// Workloads, comma-separated: qd1, qd1-hogs, qd32, qd32-hogs (32 is
    /// --high-qd), messaging, schbench, mixed; "fio" is the four qd* ones,
    /// "all" all seven [default: all]. Run only when named: qd1-hogs-rt and
    /// qd32-hogs-rt, fio in SCHED_FIFO next to the hogs (the latency floor
    /// no CPU scheduler can beat).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub workloads: Option<Vec<String>>,

    /// Block devices for the fio workloads, comma-separated (nvme0n1 or
    /// /dev/nvme0n1) [default: every NVMe namespace].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub devices: Option<Vec<String>>,

    /// Repetitions of every (scheduler, workload) pair, 1..=1000
    /// [default: 5, or 3 with --quick].
    #[arg(long, value_name = "N")]
    pub reps: Option<String>,

    /// Seconds each fio or schbench run measures, 1..=3600 [default: 20,
    /// or 2 with --quick].
    #[arg(long, value_name = "SECS")]
    pub runtime: Option<String>,

    /// Queue depth per drive of the IOPS workloads (qdN, qdN-hogs),
    /// 2..=4096 [default: 32].
    #[arg(long, value_name = "N")]
    pub high_qd: Option<String>,

    /// Options for one scheduler, as NAME=ARGS (repeatable), for example
    /// --sched-args 'storeland=--slice-us 2000'.
    #[arg(long, value_name = "NAME=ARGS")]
    pub sched_args: Vec<String>,

    /// Short runs and few repetitions: for CI and a first look.
    #[arg(long)]
    pub quick: bool,

    /// Print what was found and the plan with its estimated time; start
    /// nothing, write nothing (devices are only inspected, read-only, for
    /// --allow-writes).
    #[arg(long)]
    pub dry_run: bool,

    /// Let the mixed workload write (70/30 random read/write, never the
    /// first or last MiB), only on devices proven blank and unused: not
    /// mounted, not swap, no holders, not open elsewhere, no partitions and
    /// no partition table, filesystem or other signature.
    #[arg(long)]
    pub allow_writes: bool,

    /// Render report.md and the plots again from DIR/results.json (into
    /// --out, default DIR), without running anything.
    #[arg(long, value_name = "DIR", conflicts_with = "pool")]
    pub report_from: Option<PathBuf>,

    /// Read several runs' DIR/results.json (comma-separated) and print, as
    /// Markdown, each scheduler's metrics over EEVDF's in the same
    /// repetition: the median per run and pooled over all, with its
    /// interval and range. For boots of a VM, whose speed differs from one
    /// boot to the next. Runs nothing.
    #[arg(long, value_name = "DIRS", value_delimiter = ',', num_args = 1)]
    pub pool: Option<Vec<PathBuf>>,

    /// Print the version and exit.
    #[arg(short = 'V', long)]
    pub version: bool,
}

/// A one-line usage error.
#[derive(Debug)]
pub struct UsageError(pub String);

/// Parse argv; `Err(Ok(text))` is help to print with exit 0.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Opts, Result<String, UsageError>> {
    match Opts::try_parse_from(args) {
        Ok(o) => Ok(o),
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                Err(Ok(e.render().to_string()))
            }
            _ => {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or("error: invalid arguments");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                Err(Err(UsageError(format!("{first} (see --help)"))))
            }
        },
    }
}

/// A whole number within bounds.
pub fn bounded(name: &str, v: &str, lo: u64, hi: u64) -> Result<u64, UsageError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(UsageError(format!(
            "{name} must be a whole number in {lo}..={hi}, got '{v}'"
        ))),
    }
}

/// All workload names, in run order; the high queue depth is part of two.
pub fn workload_names(high_qd: u32) -> Vec<String> {
    vec![
        "qd1".into(),
        "qd1-hogs".into(),
        format!("qd{high_qd}"),
        format!("qd{high_qd}-hogs"),
        "messaging".into(),
        "schbench".into(),
        "mixed".into(),
    ]
}

/// Workloads run only when named: the floor measurements, fio in SCHED_FIFO
/// next to the hogs.
pub fn extra_workloads(high_qd: u32) -> Vec<String> {
    vec!["qd1-hogs-rt".into(), format!("qd{high_qd}-hogs-rt")]
}

/// Expand the --workloads list (groups, duplicates) into run order.
pub fn workload_list(list: &Option<Vec<String>>, high_qd: u32) -> Result<Vec<String>, UsageError> {
    let all = workload_names(high_qd);
    let Some(list) = list else {
        return Ok(all);
    };
    // "all" stops before the extras; they can only be named.
    let known: Vec<String> = all
        .iter()
        .cloned()
        .chain(extra_workloads(high_qd))
        .collect();
    let mut want: Vec<&String> = Vec::new();
    for w in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        match w {
            "all" => want.extend(&all),
            "fio" => want.extend(&all[..4]),
            w => match known.iter().find(|x| *x == w) {
                Some(x) => want.push(x),
                None => {
                    return Err(UsageError(format!(
                        "unknown workload '{w}' (known: {}, fio, all)",
                        known.join(", ")
                    )))
                }
            },
        }
    }
    if want.is_empty() {
        return Err(UsageError("--workloads is empty".into()));
    }
    Ok(known.iter().filter(|w| want.contains(w)).cloned().collect())
}

/// Parse --sched-args NAME=ARGS into (scheduler name, argv words).
pub fn sched_args(list: &[String]) -> Result<Vec<(String, Vec<String>)>, UsageError> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for item in list {
        let Some((name, args)) = item.split_once('=') else {
            return Err(UsageError(format!(
                "--sched-args '{item}' is not NAME=ARGS"
            )));
        };
        let name = scheduler_name(name)?;
        if name == "eevdf" {
            return Err(UsageError("--sched-args: EEVDF takes no arguments".into()));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(UsageError(format!("--sched-args: {name} given twice")));
        }
        out.push((name, args.split_whitespace().map(String::from).collect()));
    }
    Ok(out)
}

/// Normalise a --schedulers name: "eevdf", "scx_<name>", or an error.
pub fn scheduler_name(s: &str) -> Result<String, UsageError> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    if lower == "eevdf" || lower == "default" || lower == "cfs" {
        return Ok("eevdf".into());
    }
    let bare = s.strip_prefix("scx_").unwrap_or(s);
    if bare.is_empty()
        || !bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(UsageError(format!(
            "'{s}' is not a scheduler name (eevdf, storeland, bpfland, scx_<name>...)"
        )));
    }
    Ok(format!("scx_{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Opts, Result<String, UsageError>> {
        parse(
            std::iter::once("storeland-bench")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    #[test]
    fn help_is_not_an_error() {
        match p(&["--help"]) {
            Err(Ok(help)) => assert!(help.contains("--allow-writes") && help.contains("--dry-run")),
            _ => panic!("--help"),
        }
    }

    #[test]
    fn usage_errors_are_one_line() {
        for args in [&["--bogus"][..], &["--out"], &["extra"]] {
            match p(args) {
                Err(Err(UsageError(m))) => {
                    assert!(!m.contains('\n') && m.ends_with("(see --help)"), "{m}")
                }
                _ => panic!("{args:?}"),
            }
        }
    }

    #[test]
    fn lists() {
        let o = p(&[
            "--schedulers",
            "eevdf,storeland",
            "--workloads",
            "mixed,qd1",
        ])
        .unwrap();
        assert_eq!(o.schedulers.unwrap(), vec!["eevdf", "storeland"]);
        assert_eq!(
            workload_list(&o.workloads, 32).unwrap(),
            vec!["qd1", "mixed"]
        );
        assert_eq!(workload_list(&None, 32).unwrap().len(), 7);
        assert_eq!(
            workload_list(&Some(vec!["qd1-hogs-rt".into(), "all".into()]), 32)
                .unwrap()
                .len(),
            8
        );
        assert_eq!(
            workload_list(&Some(vec!["qd16-hogs-rt".into(), "qd16".into()]), 16).unwrap(),
            vec!["qd16", "qd16-hogs-rt"]
        );
        assert!(workload_list(&Some(vec!["qd32-hogs-rt".into()]), 16).is_err());
        assert_eq!(
            workload_list(&Some(vec!["fio".into(), "qd1".into()]), 32).unwrap(),
            vec!["qd1", "qd1-hogs", "qd32", "qd32-hogs"]
        );
        assert_eq!(
            workload_list(&Some(vec!["qd16-hogs".into(), "qd1".into()]), 16).unwrap(),
            vec!["qd1", "qd16-hogs"]
        );
        assert!(workload_list(&Some(vec!["qd32".into()]), 16).is_err());
        assert!(workload_list(&Some(vec!["nope".into()]), 32).is_err());
        assert!(workload_list(&Some(vec!["".into()]), 32).is_err());
    }

    #[test]
    fn scheduler_names() {
        assert_eq!(scheduler_name("EEVDF").ok().unwrap(), "eevdf");
        assert_eq!(scheduler_name("storeland").ok().unwrap(), "scx_storeland");
        assert_eq!(scheduler_name("scx_bpfland").ok().unwrap(), "scx_bpfland");
        assert!(scheduler_name("../evil").is_err());
        assert!(scheduler_name("scx_").is_err());
        assert!(scheduler_name("a b").is_err());
    }

    #[test]
    fn scheduler_args() {
        let a =
            sched_args(&["storeland=--slice-us 2000 -v".into(), "scx_bpfland=".into()]).unwrap();
        assert_eq!(
            a[0],
            (
                "scx_storeland".into(),
                vec!["--slice-us".into(), "2000".into(), "-v".into()]
            )
        );
        assert_eq!(a[1], ("scx_bpfland".into(), vec![]));
        assert!(sched_args(&["storeland".into()]).is_err());
        assert!(sched_args(&["eevdf=-x".into()]).is_err());
        assert!(sched_args(&["a=1".into(), "scx_a=2".into()]).is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(bounded("--reps", "5", 1, 1000).ok(), Some(5));
        assert!(bounded("--reps", "0", 1, 1000).is_err());
        assert!(bounded("--reps", "-1", 1, 1000).is_err());
        assert!(bounded("--reps", "x", 1, 1000).is_err());
    }
}
