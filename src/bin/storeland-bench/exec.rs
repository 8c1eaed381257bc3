//! Child processes: each in its own process group (a terminal's Ctrl-C
//! reaches only the harness, which stops them in order) and bound to the
//! harness's life (PR_SET_PDEATHSIG), so nothing outlives a killed harness:
//! a scheduler gets SIGINT and detaches, workloads stop.

use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the SIGINT/SIGTERM handler.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Quote a command for logs and the report.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+%@".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Spawn `argv` with stdout and stderr into files (the same path for both
/// is one file), in a new process group, signalled with `death_signal` if
/// the harness dies.
pub fn spawn(
    argv: &[String],
    stdout: &Path,
    stderr: &Path,
    death_signal: i32,
) -> io::Result<Child> {
    spawn_with_policy(argv, stdout, stderr, death_signal, None)
}

/// spawn(), with the child in SCHED_FIFO at `fifo_prio` when given: the
/// real-time class runs it ahead of every task of the CPU scheduler under
/// test, whichever that is.
pub fn spawn_with_policy(
    argv: &[String],
    stdout: &Path,
    stderr: &Path,
    death_signal: i32,
    fifo_prio: Option<i32>,
) -> io::Result<Child> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let out = File::create(stdout)?;
    // One file for both streams shares one offset: nothing overwritten.
    let err = if stderr == stdout {
        out.try_clone()?
    } else {
        File::create(stderr)?
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    // SAFETY: prctl and sched_setscheduler are async-signal-safe and touch
    // no memory of ours.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                death_signal as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if let Some(prio) = fifo_prio {
                let param = libc::sched_param {
                    sched_priority: prio,
                };
                if libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Run a short command (a --version probe) and return its stdout+stderr,
/// killing it after `timeout`.
pub fn output(argv: &[&str], timeout: Duration) -> Option<(ExitStatus, String)> {
    let (prog, args) = argv.split_first()?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: as in spawn().
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    let mut child = cmd.spawn().ok()?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    let mut text = String::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    Some((status, text))
}

/// Send `sig` to a child's process group (the child leads it).
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group.
    unsafe {
        libc::kill(-(child.id() as i32), sig);
    }
}

/// How a wait ended.
#[derive(Debug)]
pub enum Waited {
    Exited(ExitStatus),
    TimedOut,
    Interrupted,
}

/// Wait for `child` until `timeout`, or until the harness is interrupted
/// when `stop_on_interrupt`.
pub fn wait(child: &mut Child, timeout: Duration, stop_on_interrupt: bool) -> Waited {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Waited::Exited(s),
            Ok(None) => {}
            Err(_) => return Waited::TimedOut,
        }
        if stop_on_interrupt && interrupted() {
            return Waited::Interrupted;
        }
        if start.elapsed() >= timeout {
            return Waited::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stop a child: `sig` to its group, then SIGKILL after `grace`; reaps it.
pub fn stop(child: &mut Child, sig: i32, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    signal(child, sig);
    if let Waited::Exited(s) = wait(child, grace, false) {
        return Some(s);
    }
    signal(child, libc::SIGKILL);
    child.wait().ok()
}

/// Sleep that ends early on an interrupt; false if interrupted.
pub fn sleep(d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if interrupted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    !interrupted()
}

/// Find an executable in PATH.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    if name.contains('/') {
        let p = Path::new(name);
        return is_executable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let argv: Vec<String> = ["fio", "--name=a b", "--x=1", "it's"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(shell_words(&argv), r#"fio '--name=a b' --x=1 'it'\''s'"#);
    }

    #[test]
    fn output_and_timeout() {
        let (st, text) = output(
            &["sh", "-c", "echo out; echo err >&2"],
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(st.success());
        assert!(text.contains("out") && text.contains("err"));
        assert!(output(&["sleep", "5"], Duration::from_millis(100)).is_none());
        assert!(output(&["/nonexistent/tool"], Duration::from_secs(1)).is_none());
    }

    #[test]
    fn both_streams_into_one_file_keep_everything() {
        let log = std::env::temp_dir().join(format!("sb-exec-both-{}.log", std::process::id()));
        let argv: Vec<String> = ["sh", "-c", "echo one; echo two >&2; echo three"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut c = spawn(&argv, &log, &log, libc::SIGKILL).unwrap();
        assert!(
            matches!(wait(&mut c, Duration::from_secs(30), false), Waited::Exited(s) if s.success())
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "one\ntwo\nthree\n");
        let _ = std::fs::remove_file(log);
    }

    #[test]
    fn spawn_wait_and_stop() {
        let dir = std::env::temp_dir();
        let (o, e) = (
            dir.join(format!("sb-exec-{}.out", std::process::id())),
            dir.join(format!("sb-exec-{}.err", std::process::id())),
        );
        let argv: Vec<String> = ["sleep", "30"].iter().map(|s| s.to_string()).collect();
        let mut c = spawn(&argv, &o, &e, libc::SIGKILL).unwrap();
        assert!(matches!(
            wait(&mut c, Duration::from_millis(100), false),
            Waited::TimedOut
        ));
        let st = stop(&mut c, libc::SIGINT, Duration::from_secs(10)).unwrap();
        assert!(!st.success());
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-here").is_none());
    }
}
