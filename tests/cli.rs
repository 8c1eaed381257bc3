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
