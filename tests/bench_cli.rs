//! storeland-bench's command line on any host: help, one-line usage errors
//! with exit 2 (never a panic), and a dry run that plans without touching
//! anything (on a host without sched_ext: EEVDF only, the others named
//! unavailable).

use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storeland-bench"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running storeland-bench")
}

#[test]
fn help_lists_every_option() {
    let out = bench(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--dry-run",
        "--quick",
        "--devices",
        "--schedulers",
        "--workloads",
        "--reps",
        "--out",
        "--allow-writes",
        "--runtime",
        "--report-from",
        "--pool",
        "--high-qd",
        "--sched-args",
        "Exit codes",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    let out = bench(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("storeland-bench "));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--reps", "0"],
        &["--reps", "abc"],
        &["--reps", "-3"],
        &["--runtime", "0"],
        &["--runtime", "99999"],
        &["--workloads", "nope"],
        &["--workloads", ","],
        &["--schedulers", "../x"],
        &["--schedulers", ""],
        &["--devices", "/nonexistent/nvme0n1"],
        &["--devices", "/dev/null"],
        &["--out", "/etc/passwd"],
        &["--report-from", "/nonexistent-dir"],
        &["--report-from", "/etc"],
        &["--pool", "/nonexistent-dir"],
        &["--pool", "/etc"],
        &["--pool", "/etc", "--report-from", "/etc"],
        &["--high-qd", "1"],
        &["--workloads", "qd32", "--high-qd", "16"],
        &["--sched-args", "storeland"],
        &["--sched-args", "eevdf=-x"],
        &["positional"],
    ] {
        let out = bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_dry_run_plans_and_writes_nothing() {
    let dir = std::env::temp_dir().join(format!("storeland-bench-dry-{}", std::process::id()));
    let out_dir = dir.join("out");
    let out = bench(&[
        "--dry-run",
        "--quick",
        "--workloads",
        "messaging",
        "--schedulers",
        "eevdf,storeland",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("plan: 3 repetition(s)"), "{stderr}");
    assert!(stderr.contains("estimated time:"), "{stderr}");
    assert!(
        stderr.contains("dry run: nothing was started or written"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "a dry run created {}", out_dir.display());
    if !std::path::Path::new("/sys/kernel/sched_ext").exists() {
        assert!(stderr.contains("sched_ext: not in this kernel"), "{stderr}");
        assert!(
            stderr.contains("skipped scheduler scx_storeland: "),
            "{stderr}"
        );
        assert!(stderr.contains("repetition(s) of [EEVDF]"), "{stderr}");
    }
}

/// Two copies of one results file pooled: each repetition's ratio to EEVDF,
/// per file and over both, worked out by hand from the fixture's numbers
/// (qd1 IOPS 16,133 / 16,125 and 19,031 / 17,393; p99 799 / 897 and
/// 627 / 840 µs).
#[test]
fn pool_pairs_each_repetition_with_eevdf() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bench/pool");
    let both = format!("{dir},{dir}");
    let out = bench(&["--pool", &both]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "| qd1 | IOPS | scx_storeland | 1.05 | 1.05 | 1.05 [1.00–1.09] | 1.00–1.09 | 4 |",
        "| qd1 | completion latency p99 | scx_storeland | 0.82 | 0.82 | 0.82 [0.75–0.89] | 0.75–0.89 | 4 |",
    ] {
        assert!(stdout.contains(row), "no row {row} in:\n{stdout}");
    }
    assert!(
        !stdout.contains("| EEVDF |"),
        "the baseline over itself: {stdout}"
    );
}
