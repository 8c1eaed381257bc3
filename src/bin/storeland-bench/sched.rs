//! Starting, confirming and stopping a scheduler. A sched_ext scheduler is
//! its binary, spawned and then SIGINT-ed; it counts as active only while
//! /sys/kernel/sched_ext/state is "enabled", root/ops names what it named
//! when it attached, enable_seq has not moved (no re-attach) and its
//! process lives. EEVDF is active while no sched_ext scheduler is.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use storeland::bench::model::{SchedulerInfo, BASELINE};
use storeland::bench::sysinfo::{sched_state, Roots, SchedState};

use crate::exec;

/// How long a scheduler may take to attach (TCG VMs are slow).
const ATTACH_TIMEOUT: Duration = Duration::from_secs(90);
/// How long it may take to detach after SIGINT before SIGKILL.
const DETACH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Active {
    pub name: String,
    child: Option<Child>,
    /// root/ops and enable_seq right after it attached.
    ops: Option<String>,
    enable_seq: Option<u64>,
    log: std::path::PathBuf,
}

fn last_log_line(log: &Path) -> String {
    std::fs::read_to_string(log)
        .ok()
        .and_then(|s| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.trim().to_string())
        })
        .map(|l| format!(": {l}"))
        .unwrap_or_default()
}

fn wait_state(
    roots: &Roots,
    want: &str,
    timeout: Duration,
    mut also: impl FnMut(&SchedState) -> bool,
) -> Result<SchedState, SchedState> {
    let start = Instant::now();
    loop {
        let s = sched_state(roots);
        if s.state == want && also(&s) {
            return Ok(s);
        }
        if start.elapsed() >= timeout {
            return Err(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Make `info` the active scheduler. For a sched_ext scheduler: spawn it
/// (its output to `log`) and wait until the kernel reports it enabled.
pub fn start(info: &SchedulerInfo, roots: &Roots, log: &Path) -> Result<Active, String> {
    let now = sched_state(roots);
    if info.name == BASELINE {
        return match now.state.as_str() {
            "disabled" | "absent" => Ok(Active {
                name: info.name.clone(),
                child: None,
                ops: None,
                enable_seq: now.enable_seq,
                log: log.to_path_buf(),
            }),
            other => Err(format!(
                "EEVDF is not active: sched_ext state is {other} ({})",
                now.ops.as_deref().unwrap_or("?")
            )),
        };
    }
    // The previous scheduler may still be disabling.
    if now.state != "disabled" {
        wait_state(roots, "disabled", DETACH_TIMEOUT, |_| true).map_err(|s| {
            format!(
                "sched_ext state is {} before starting {}",
                s.state, info.name
            )
        })?;
    }
    let seq0 = sched_state(roots).enable_seq;
    let path = info.path.clone().ok_or("no binary")?;
    let mut argv = vec![path];
    argv.extend(info.args.iter().cloned());
    let mut child = exec::spawn(&argv, log, log, libc::SIGINT)
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let start = Instant::now();
    loop {
        let s = sched_state(roots);
        let seq_moved = match (seq0, s.enable_seq) {
            (Some(a), Some(b)) => b > a,
            _ => true,
        };
        if s.state == "enabled" && seq_moved && s.ops.is_some() {
            return Ok(Active {
                name: info.name.clone(),
                child: Some(child),
                ops: s.ops,
                enable_seq: s.enable_seq,
                log: log.to_path_buf(),
            });
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(format!(
                "{} exited ({st}) before attaching{}",
                info.name,
                last_log_line(log)
            ));
        }
        if exec::interrupted() || start.elapsed() >= ATTACH_TIMEOUT {
            let why = if exec::interrupted() {
                "interrupted".to_string()
            } else {
                format!("not enabled after {} s", ATTACH_TIMEOUT.as_secs())
            };
            exec::stop(&mut child, libc::SIGINT, DETACH_TIMEOUT);
            let _ = wait_state(roots, "disabled", DETACH_TIMEOUT, |_| true);
            return Err(format!("{}: {why}{}", info.name, last_log_line(log)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Active {
    /// Check that this scheduler is (still) the one scheduling; returns the
    /// state read, or why it is not.
    pub fn confirm(&mut self, roots: &Roots) -> (SchedState, Result<(), String>) {
        let s = sched_state(roots);
        let Some(child) = self.child.as_mut() else {
            let ok = match s.state.as_str() {
                "disabled" | "absent" => Ok(()),
                other => Err(format!(
                    "EEVDF not active: sched_ext state is {other} ({})",
                    s.ops.as_deref().unwrap_or("?")
                )),
            };
            return (s, ok);
        };
        let res = if let Ok(Some(st)) = child.try_wait() {
            Err(format!(
                "{} exited ({st}){}",
                self.name,
                last_log_line(&self.log)
            ))
        } else if s.state != "enabled" {
            Err(format!(
                "{} ejected: sched_ext state is {}{}",
                self.name,
                s.state,
                last_log_line(&self.log)
            ))
        } else if s.ops != self.ops {
            Err(format!(
                "root/ops is {:?}, not {:?} as when {} attached",
                s.ops, self.ops, self.name
            ))
        } else if s.enable_seq != self.enable_seq {
            Err(format!(
                "{} re-attached during the run (enable_seq {:?} -> {:?})",
                self.name, self.enable_seq, s.enable_seq
            ))
        } else {
            Ok(())
        };
        (s, res)
    }

    /// Stop it (SIGINT, then SIGKILL) and wait for the kernel's default
    /// scheduler to be back. Returns a problem worth reporting, if any.
    pub fn stop(mut self, roots: &Roots) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = exec::stop(&mut child, libc::SIGINT, DETACH_TIMEOUT);
        let back = wait_state(roots, "disabled", DETACH_TIMEOUT, |_| true);
        match (status, back) {
            (_, Err(s)) => Err(format!(
                "sched_ext state is still {} after stopping {}",
                s.state, self.name
            )),
            (Some(st), Ok(_)) if st.success() => Ok(()),
            (Some(st), Ok(_)) => Err(format!(
                "{} exited with {st} when stopped{}",
                self.name,
                last_log_line(&self.log)
            )),
            (None, Ok(_)) => Ok(()),
        }
    }
}
