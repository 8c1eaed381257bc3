//! What a running scx_storeland leaves on the host, kept so that a start
//! after a SIGKILL (which skips every `Drop`) can repair it.
//!
//! Everything lives in [`STATE_DIR`] (`/run/scx_storeland`, gone at reboot):
//!
//! - `lock`: an exclusive `flock` held for the life of the scheduling
//!   process, with its pid inside. Only one scx_storeland gets past it, so
//!   two instances started at once cannot both change the host; the kernel
//!   drops the lock when the holder dies, however it dies.
//! - `sysctl.compact_unevictable_allowed`: the value of
//!   `vm.compact_unevictable_allowed` before scx_rustland_core's
//!   `lock_memory()` set it to 0, with the pid that changed it. It is removed
//!   after the clean exit restored the value; if it is still there at the
//!   next start, the previous instance died and the next start restores it.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where the state lives on a real host.
pub const STATE_DIR: &str = "/run/scx_storeland";
/// The sysctl scx_rustland_core sets to 0 while the scheduler runs.
pub const COMPACT_UNEVICTABLE: &str = "/proc/sys/vm/compact_unevictable_allowed";
/// The value the sysctl has while we run.
const WHILE_RUNNING: &str = "0";

fn ensure_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Why the instance lock was not ours.
#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another scx_storeland holds it (its pid, if it wrote one yet).
    Held(Option<u32>),
    /// The lock file could not be created or locked.
    Io(String),
}

impl LockError {
    pub fn message(&self) -> String {
        match self {
            LockError::Held(pid) => format!(
                "another scx_storeland{} is starting or running: stop it first; it was left alone",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            LockError::Io(e) => format!("cannot take the instance lock: {e}"),
        }
    }
}

/// The exclusive right to schedule; released when dropped or when the
/// process dies.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        ensure_dir(dir).map_err(|e| LockError::Io(format!("{e:#}")))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| LockError::Io(format!("{}: {e}", path.display())))?;
        // SAFETY: flock on an fd we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::WouldBlock {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held(text.trim().parse().ok()));
            }
            return Err(LockError::Io(format!("{}: {err}", path.display())));
        }
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Self { _file: file })
    }
}

/// A sysctl we change while running, with its original value on record.
#[derive(Debug, Clone)]
pub struct SysctlRecord {
    /// The sysctl's file under /proc/sys.
    sysctl: PathBuf,
    /// Our record of its original value.
    record: PathBuf,
}

/// A previous instance's change, undone.
#[derive(Debug, PartialEq, Eq)]
pub struct Repaired {
    pub pid: Option<u32>,
    pub restored: String,
}

impl SysctlRecord {
    /// `vm.compact_unevictable_allowed`, recorded in `dir`.
    pub fn compact_unevictable(dir: &Path) -> Self {
        Self::new(dir, Path::new(COMPACT_UNEVICTABLE))
    }

    pub fn new(dir: &Path, sysctl: &Path) -> Self {
        let name = sysctl
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sysctl".into());
        Self {
            sysctl: sysctl.to_path_buf(),
            record: dir.join(format!("sysctl.{name}")),
        }
    }

    pub fn name(&self) -> String {
        self.sysctl
            .strip_prefix("/proc/sys")
            .map(|p| p.to_string_lossy().replace('/', "."))
            .unwrap_or_else(|_| self.sysctl.display().to_string())
    }

    fn read_sysctl(&self) -> Option<String> {
        fs::read_to_string(&self.sysctl)
            .ok()
            .map(|s| s.trim().to_string())
    }

    /// If a previous instance died with its change in place, put the
    /// original value back. Call it holding the [`InstanceLock`]: then the
    /// instance that wrote the record is gone. A value the operator changed
    /// since is left as it is.
    pub fn repair(&self) -> Result<Option<Repaired>> {
        let text = match fs::read_to_string(&self.record) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.record.display())),
        };
        let mut words = text.split_ascii_whitespace();
        let original = words.next().map(str::to_string);
        let pid = words.next().and_then(|w| w.parse().ok());
        let repaired = match original {
            Some(orig) if self.read_sysctl().as_deref() == Some(WHILE_RUNNING) => {
                if orig != WHILE_RUNNING {
                    fs::write(&self.sysctl, &orig)
                        .with_context(|| format!("restoring {}", self.sysctl.display()))?;
                }
                Some(Repaired {
                    pid,
                    restored: orig,
                })
            }
            _ => None,
        };
        fs::remove_file(&self.record)
            .with_context(|| format!("removing {}", self.record.display()))?;
        Ok(repaired)
    }

    /// Record the current value as the original, before it is changed.
    /// Without the sysctl (a kernel without compaction) nothing is recorded.
    pub fn record_original(&self) -> Result<()> {
        let Some(value) = self.read_sysctl() else {
            return Ok(());
        };
        if value.is_empty() || value.contains(char::is_whitespace) {
            bail!("unexpected value {value:?} in {}", self.sysctl.display());
        }
        if let Some(dir) = self.record.parent() {
            ensure_dir(dir)?;
        }
        let tmp = self.record.with_extension("tmp");
        fs::write(&tmp, format!("{value} {}\n", std::process::id()))
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, &self.record).with_context(|| format!("writing {}", self.record.display()))
    }

    /// The change was undone: forget the original.
    pub fn clear(&self) {
        let _ = fs::remove_file(&self.record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn tmpdir() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "storeland-hoststate-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sysctl_file(dir: &Path, value: &str) -> PathBuf {
        let p = dir.join("compact_unevictable_allowed");
        fs::write(&p, format!("{value}\n")).unwrap();
        p
    }

    #[test]
    fn the_lock_admits_one_holder_at_a_time() {
        let dir = tmpdir().join("state");
        let first = InstanceLock::acquire(&dir).unwrap();
        let err = InstanceLock::acquire(&dir).unwrap_err();
        assert_eq!(err, LockError::Held(Some(std::process::id())));
        assert!(err.message().contains("another scx_storeland"));
        assert!(!err.message().contains('\n'));
        drop(first);
        InstanceLock::acquire(&dir).unwrap();
    }

    #[test]
    fn a_clean_run_leaves_no_record() {
        let dir = tmpdir();
        let sysctl = sysctl_file(&dir, "1");
        let rec = SysctlRecord::new(&dir.join("state"), &sysctl);
        assert_eq!(rec.repair().unwrap(), None);
        rec.record_original().unwrap();
        fs::write(&sysctl, "0").unwrap(); // lock_memory()
        fs::write(&sysctl, "1").unwrap(); // unlock_memory() on a clean exit
        rec.clear();
        assert_eq!(rec.repair().unwrap(), None);
        assert_eq!(fs::read_to_string(&sysctl).unwrap(), "1");
    }

    #[test]
    fn the_next_start_restores_what_a_killed_instance_left() {
        let dir = tmpdir();
        let sysctl = sysctl_file(&dir, "1");
        let rec = SysctlRecord::new(&dir.join("state"), &sysctl);
        rec.record_original().unwrap();
        fs::write(&sysctl, "0").unwrap(); // lock_memory(), then SIGKILL
        let repaired = rec.repair().unwrap().unwrap();
        assert_eq!(repaired.restored, "1");
        assert_eq!(repaired.pid, Some(std::process::id()));
        assert_eq!(fs::read_to_string(&sysctl).unwrap(), "1");
        // The record is gone; recording again saves the real original.
        assert_eq!(rec.repair().unwrap(), None);
        rec.record_original().unwrap();
        assert!(fs::read_to_string(&rec.record).unwrap().starts_with("1 "));
    }

    #[test]
    fn a_value_the_operator_changed_since_is_kept() {
        let dir = tmpdir();
        let sysctl = sysctl_file(&dir, "1");
        let rec = SysctlRecord::new(&dir.join("state"), &sysctl);
        rec.record_original().unwrap();
        fs::write(&sysctl, "0").unwrap(); // then killed, then the operator:
        fs::write(&sysctl, "1").unwrap();
        assert_eq!(rec.repair().unwrap(), None);
        assert_eq!(fs::read_to_string(&sysctl).unwrap(), "1");
        assert!(!rec.record.exists());
    }

    #[test]
    fn no_sysctl_no_record() {
        let dir = tmpdir();
        let rec = SysctlRecord::new(&dir.join("state"), &dir.join("missing"));
        rec.record_original().unwrap();
        assert!(!rec.record.exists());
        assert_eq!(rec.repair().unwrap(), None);
    }

    #[test]
    fn the_name_is_the_sysctl_name() {
        let rec = SysctlRecord::compact_unevictable(Path::new(STATE_DIR));
        assert_eq!(rec.name(), "vm.compact_unevictable_allowed");
    }
}
