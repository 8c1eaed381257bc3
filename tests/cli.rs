//! The operator contract of the binary, checked on any host: usage errors
//! exit 2 before anything is attached, and a kernel without sched_ext gives
//! exit 3 with a one-line reason.

use std::process::Command;

fn storeland(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scx_storeland"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running scx_storeland")
}

#[test]
fn version_prints_one_line_and_exits_0() {
    let out = storeland(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("scx_storeland "), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
}

#[test]
fn usage_errors_exit_2_without_a_panic() {
    for args in [
        &["--slice-us", "0"][..],
        &["--slice-us", "abc"],
        &["--stats", "-1"],
        &["--bogus"],
    ] {
        let out = storeland(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let out = storeland(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--slice-us",
        "--exit-dump-len",
        "--partial",
        "--stats",
        "--verbose",
        "--version",
        "Exit codes",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "4 the operator disabled sched_ext with sysrq-S",
        "101 a panic",
    ] {
        assert!(words.contains(needle), "--help lacks {needle}");
    }
    assert!(
        !help.contains("--fault-panic-after"),
        "the fault-injection option is hidden"
    );
}

#[test]
fn the_fault_injection_option_is_validated() {
    for args in [
        &["--fault-panic-after", "0"][..],
        &["--fault-panic-after", "-1"],
        &["--fault-panic-after", "x"],
    ] {
        let out = storeland(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_kernel_without_sched_ext_exits_3_with_one_line() {
    if std::path::Path::new("/sys/kernel/sched_ext").exists() {
        eprintln!("this host has sched_ext; the VM test covers it instead");
        return;
    }
    let out = storeland(&[]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<_> = stderr.lines().filter(|l| l.contains("[ERROR]")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("no sched_ext"), "{stderr}");
}

#[test]
fn help_stats_lists_every_metric_with_a_unit() {
    let out = storeland(&["--help-stats"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "user_dispatches_per_sec",
        "fastpath_dispatches_per_sec",
        "llcs.<llc>.util_pct",
        "classes.<class>.wake_to_run_p99_us",
        "nvme.<drive>.irqs_per_sec",
        "[1/s]",
        "[%]",
        "[us]",
    ] {
        assert!(
            text.contains(needle),
            "--help-stats lacks {needle}:\n{text}"
        );
    }
}

#[test]
fn stats_usage_errors_exit_2() {
    for args in [
        &["--json"][..],
        &["--monitor", "0"],
        &["--monitor", "1", "--stats", "1"],
        &["-s", "2000", "top"],
        &["top", "--interval", "-1"],
        &["top", "--bogus"],
    ] {
        let out = storeland(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn top_once_without_a_scheduler_draws_a_waiting_frame_and_exits_1() {
    let out = storeland(&[
        "top",
        "--once",
        "-i",
        "0",
        "--width",
        "90",
        "--height",
        "25",
        "--stats-socket",
        "/nonexistent/scx_storeland/stats",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let frame = String::from_utf8_lossy(&out.stdout);
    assert!(
        frame.contains("waiting for scx_storeland to start"),
        "{frame}"
    );
    assert_eq!(frame.lines().count(), 25, "{frame}");
    assert!(frame.lines().all(|l| l.chars().count() <= 90), "{frame}");
}

#[test]
fn top_replays_a_recording_without_a_terminal() {
    let rec = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vm-recording.jsonl");
    let out = storeland(&[
        "top", "--once", "--replay", rec, "--width", "120", "--height", "45",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let frame = String::from_utf8_lossy(&out.stdout);
    assert!(
        frame.contains("CCX0 ") && frame.contains("CCX1 "),
        "{frame}"
    );
    let out = storeland(&["top", "--once", "--replay", "/nonexistent.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.jsonl"));
}

#[test]
fn interactive_top_without_a_terminal_says_so() {
    let out = storeland(&["top", "--stats-socket", "/nonexistent/stats"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("top --once"), "{stderr}");
}
