//! Checks made before touching BPF, each failing with one line that says
//! what is wrong and what to do, and the exit code the operator contract
//! assigns to it.

use std::fs;
use std::path::{Path, PathBuf};

/// Exit code: this kernel cannot run sched_ext schedulers.
pub const EXIT_UNSUPPORTED: i32 = 3;
/// Exit code: any other failure.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: the operator disabled sched_ext with sysrq-S. Not a failure,
/// and a service manager must not restart the scheduler after it.
pub const EXIT_SYSRQ: i32 = 4;

/// Why the scheduler cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    NoSchedExt,
    NoBtf,
    NotRoot,
    OtherScheduler(String),
    StillDisabling,
    UnknownState(String),
}

impl Blocker {
    pub fn exit_code(&self) -> i32 {
        match self {
            Blocker::NoSchedExt | Blocker::NoBtf => EXIT_UNSUPPORTED,
            _ => EXIT_FAILURE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Blocker::NoSchedExt => "this kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT): \
                                    boot a kernel built with it (6.12 or later)"
                .into(),
            Blocker::NoBtf => "this kernel exposes no BTF (/sys/kernel/btf/vmlinux): \
                               boot a kernel built with CONFIG_DEBUG_INFO_BTF"
                .into(),
            Blocker::NotRoot => "scx_storeland must run as root (it loads a BPF scheduler)".into(),
            Blocker::OtherScheduler(name) => format!(
                "another sched_ext scheduler is running ({name}): stop it first; it was left running"
            ),
            Blocker::StillDisabling => {
                "the previous sched_ext scheduler is still being disabled: retry in a few seconds"
                    .into()
            }
            Blocker::UnknownState(s) => {
                format!("unexpected sched_ext state {s:?} in /sys/kernel/sched_ext/state")
            }
        }
    }
}

/// Where the kernel's files are; a test points this at a fake tree.
#[derive(Debug, Clone)]
pub struct Host {
    pub sysfs: PathBuf,
    pub euid: u32,
}

impl Host {
    pub fn current() -> Self {
        Host {
            sysfs: PathBuf::from("/sys"),
            // SAFETY: geteuid() has no preconditions and cannot fail.
            euid: unsafe { libc::geteuid() },
        }
    }

    fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.sysfs.join(rel))
            .ok()
            .map(|s| s.trim().to_string())
    }

    fn exists(&self, rel: &str) -> bool {
        Path::new(&self.sysfs.join(rel)).exists()
    }
}

/// Everything that must hold before the scheduler may load.
pub fn check(host: &Host) -> Result<(), Blocker> {
    let state = host
        .read("kernel/sched_ext/state")
        .ok_or(Blocker::NoSchedExt)?;
    if !host.exists("kernel/btf/vmlinux") {
        return Err(Blocker::NoBtf);
    }
    if host.euid != 0 {
        return Err(Blocker::NotRoot);
    }
    match state.as_str() {
        "disabled" => Ok(()),
        "enabled" | "enabling" => {
            let name = host
                .read("kernel/sched_ext/root/ops")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "unknown".into());
            Err(Blocker::OtherScheduler(name))
        }
        "disabling" => Err(Blocker::StillDisabling),
        other => Err(Blocker::UnknownState(other.into())),
    }
}

/// [`check`], but a scheduler still being disabled (just killed, or just
/// stopped by another tool) is waited for, up to `wait`.
pub fn check_waiting(host: &Host, wait: std::time::Duration) -> Result<(), Blocker> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match check(host) {
            Err(Blocker::StillDisabling) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A throwaway sysfs tree.
    fn fake_sysfs(state: Option<&str>, ops: Option<&str>, btf: bool) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "storeland-preflight-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("kernel/btf")).unwrap();
        if let Some(state) = state {
            fs::create_dir_all(dir.join("kernel/sched_ext/root")).unwrap();
            fs::write(dir.join("kernel/sched_ext/state"), format!("{state}\n")).unwrap();
            if let Some(ops) = ops {
                fs::write(dir.join("kernel/sched_ext/root/ops"), format!("{ops}\n")).unwrap();
            }
        }
        if btf {
            fs::write(dir.join("kernel/btf/vmlinux"), b"BTF").unwrap();
        }
        dir
    }

    fn host(state: Option<&str>, ops: Option<&str>, btf: bool, euid: u32) -> Host {
        Host {
            sysfs: fake_sysfs(state, ops, btf),
            euid,
        }
    }

    #[test]
    fn a_ready_kernel_passes() {
        assert_eq!(check(&host(Some("disabled"), None, true, 0)), Ok(()));
    }

    #[test]
    fn a_kernel_without_sched_ext_exits_3() {
        let err = check(&host(None, None, true, 0)).unwrap_err();
        assert_eq!(err, Blocker::NoSchedExt);
        assert_eq!(err.exit_code(), 3);
        let err = check(&host(Some("disabled"), None, false, 0)).unwrap_err();
        assert_eq!(err, Blocker::NoBtf);
        assert_eq!(err.exit_code(), 3);
    }

    #[test]
    fn non_root_is_refused() {
        let err = check(&host(Some("disabled"), None, true, 1000)).unwrap_err();
        assert_eq!(err, Blocker::NotRoot);
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn another_scheduler_is_named_and_left_alone() {
        let err = check(&host(Some("enabled"), Some("bpfland_1.0.0"), true, 0)).unwrap_err();
        assert_eq!(err, Blocker::OtherScheduler("bpfland_1.0.0".into()));
        assert!(err.message().contains("bpfland_1.0.0"));
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn a_scheduler_still_disabling_asks_for_a_retry() {
        let err = check(&host(Some("disabling"), None, true, 0)).unwrap_err();
        assert_eq!(err, Blocker::StillDisabling);
        assert!(err.message().contains("retry"));
    }

    #[test]
    fn a_scheduler_being_disabled_is_waited_for() {
        let h = host(Some("disabling"), None, true, 0);
        let state = h.sysfs.join("kernel/sched_ext/state");
        let flip = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            fs::write(state, "disabled\n").unwrap();
        });
        assert_eq!(
            check_waiting(&h, std::time::Duration::from_secs(60)),
            Ok(())
        );
        flip.join().unwrap();
        let h = host(Some("disabling"), None, true, 0);
        assert_eq!(
            check_waiting(&h, std::time::Duration::from_millis(100)),
            Err(Blocker::StillDisabling)
        );
    }

    #[test]
    fn messages_are_one_line() {
        for b in [
            Blocker::NoSchedExt,
            Blocker::NoBtf,
            Blocker::NotRoot,
            Blocker::OtherScheduler("x".into()),
            Blocker::StillDisabling,
            Blocker::UnknownState("odd".into()),
        ] {
            assert!(!b.message().contains('\n'), "{b:?}");
        }
    }
}
