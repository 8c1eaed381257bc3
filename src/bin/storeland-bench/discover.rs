//! Discovery: the machine, the tools and their versions, the schedulers
//! that can run here, and the drives.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use storeland::bench::model::{Environment, SchedulerInfo, Tool, BASELINE};
use storeland::bench::sysinfo::{self, CpuTopology, Drive, KernelInfo, Roots};

use crate::exec;

const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// A scheduler candidate and why it cannot run, if it cannot.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub info: SchedulerInfo,
    pub unavailable: Option<String>,
}

/// The messaging benchmark to use.
#[derive(Debug, Clone)]
pub enum Messaging {
    Hackbench(PathBuf),
    Perf(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Discovery {
    pub env: Environment,
    pub candidates: Vec<Candidate>,
    pub fio: Option<PathBuf>,
    pub fio_engine: String,
    pub stress_ng: Option<PathBuf>,
    pub messaging: Option<Messaging>,
    pub schbench: Option<PathBuf>,
    pub blkid: Option<PathBuf>,
}

impl Discovery {
    pub fn topo(&self) -> &CpuTopology {
        &self.env.topology
    }

    pub fn tool_version(&self, name: &str) -> Option<String> {
        self.env
            .tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.version.clone())
    }
}

fn first_line(s: &str) -> Option<String> {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

fn probe_version(path: &Path, args: &[&str]) -> Option<String> {
    let p = path.to_string_lossy();
    let mut argv = vec![p.as_ref()];
    argv.extend_from_slice(args);
    let (status, text) = exec::output(&argv, PROBE_TIMEOUT)?;
    if !status.success() {
        return None;
    }
    first_line(&text)
}

fn tool(name: &str, version_args: Option<&[&str]>) -> (Tool, Option<PathBuf>) {
    let path = exec::which(name);
    let version = match (&path, version_args) {
        (Some(p), Some(args)) => probe_version(p, args),
        _ => None,
    };
    (
        Tool {
            name: name.into(),
            path: path.as_ref().map(|p| p.display().to_string()),
            version,
        },
        path,
    )
}

/// scx_* executables in PATH and next to this binary, by name.
fn scx_binaries() -> Vec<(String, PathBuf)> {
    // Tools of the scx project that are not schedulers.
    const NOT_SCHEDULERS: [&str; 3] = ["scx_loader", "scx_lib_selftests", "scx_cargo"];
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(d);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for d in dirs {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        let mut names: Vec<(String, PathBuf)> = rd
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(n, p)| {
                n.starts_with("scx_")
                    && n.len() > 4
                    && !n.contains('.')
                    && !NOT_SCHEDULERS.contains(&n.as_str())
                    && exec::is_executable(p)
            })
            .collect();
        names.sort();
        for (n, p) in names {
            if !found.iter().any(|(f, _)| *f == n) {
                found.push((n, p));
            }
        }
    }
    found
}

fn io_uring_usable() -> bool {
    fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .map(|s| s.trim() == "0")
        .unwrap_or(true)
}

pub fn discover(
    roots: &Roots,
    devices: Option<&[String]>,
    sched_args: &[(String, Vec<String>)],
) -> Result<Discovery, String> {
    let topology = sysinfo::read_topology(roots)?;
    let kernel = sysinfo::kernel_info(roots);
    // SAFETY: geteuid() cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;

    let (fio_t, fio) = tool("fio", Some(&["--version"]));
    let (stress_t, stress_ng) = tool("stress-ng", Some(&["--version"]));
    let (hb_t, hackbench) = tool("hackbench", None);
    let (mut perf_t, perf) = tool("perf", Some(&["--version"]));
    let (sch_t, schbench) = tool("schbench", None);
    let (blkid_t, blkid) = tool("blkid", None);
    // Debian's perf is a wrapper that fails without the running kernel's perf.
    let perf = perf.filter(|_| perf_t.version.is_some());
    if perf.is_none() && perf_t.path.is_some() {
        perf_t.version = Some("unusable (no perf for this kernel)".into());
    }
    let fio_engine = match &fio {
        Some(p) => {
            let help = exec::output(&[&p.to_string_lossy(), "--enghelp"], PROBE_TIMEOUT)
                .map(|(_, t)| t)
                .unwrap_or_default();
            let has = |e: &str| help.split_whitespace().any(|w| w == e);
            if has("io_uring") && io_uring_usable() {
                "io_uring"
            } else if has("libaio") {
                "libaio"
            } else {
                "psync"
            }
        }
        None => "psync",
    }
    .to_string();
    let messaging = hackbench
        .clone()
        .map(Messaging::Hackbench)
        .or_else(|| perf.clone().map(Messaging::Perf));

    let mut candidates = schedulers(&kernel, is_root);
    for c in &mut candidates {
        if let Some((_, args)) = sched_args.iter().find(|(n, _)| *n == c.info.name) {
            c.info.args = args.clone();
        }
    }

    let irqs = fs::read_to_string(roots.proc.join("interrupts")).unwrap_or_default();
    let names: Vec<String> = match devices {
        Some(list) => list
            .iter()
            .map(|d| device_name(roots, d))
            .collect::<Result<_, _>>()?,
        None => sysinfo::nvme_namespaces(roots),
    };
    let drives: Vec<Drive> = names
        .iter()
        .map(|n| sysinfo::describe_drive(roots, n, &topology, &irqs))
        .collect();

    let hostname = fs::read_to_string(roots.proc.join("sys/kernel/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Ok(Discovery {
        env: Environment {
            hostname,
            is_root,
            kernel,
            topology,
            drives,
            tools: vec![fio_t, stress_t, hb_t, perf_t, sch_t, blkid_t],
            cpufreq_governor: fs::read_to_string(
                roots
                    .sys
                    .join("devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            )
            .ok()
            .map(|s| s.trim().to_string()),
        },
        candidates,
        fio,
        fio_engine,
        stress_ng,
        messaging,
        schbench,
        blkid,
    })
}

/// "nvme0n1", "/dev/nvme0n1" or a /dev/disk/by-id link -> kernel name,
/// or a one-line error for anything that is not a block device.
pub fn device_name(roots: &Roots, d: &str) -> Result<String, String> {
    use std::os::unix::fs::FileTypeExt;
    let d = d.trim();
    if d.is_empty() {
        return Err("--devices has an empty entry".into());
    }
    let path = if d.contains('/') {
        PathBuf::from(d)
    } else {
        roots.dev.join(d)
    };
    let meta = fs::metadata(&path).map_err(|e| format!("--devices: {}: {e}", path.display()))?;
    if !meta.file_type().is_block_device() {
        return Err(format!(
            "--devices: {} is not a block device",
            path.display()
        ));
    }
    let canon =
        fs::canonicalize(&path).map_err(|e| format!("--devices: {}: {e}", path.display()))?;
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("--devices: {} has no name", path.display()))?;
    if !roots.sys.join("class/block").join(&name).exists() {
        return Err(format!(
            "--devices: {name} is not in {}/class/block",
            roots.sys.display()
        ));
    }
    Ok(name)
}

fn schedulers(kernel: &KernelInfo, is_root: bool) -> Vec<Candidate> {
    let blocked = if !kernel.sched_ext {
        Some("this kernel has no sched_ext (CONFIG_SCHED_CLASS_EXT)".to_string())
    } else if !kernel.btf {
        Some("this kernel exposes no BTF (/sys/kernel/btf/vmlinux)".to_string())
    } else if !is_root {
        Some("loading a sched_ext scheduler needs root".to_string())
    } else {
        None
    };
    let mut out = vec![Candidate {
        info: SchedulerInfo {
            name: BASELINE.into(),
            path: None,
            version: Some(format!("Linux {}", kernel.release)),
            args: vec![],
        },
        unavailable: None,
    }];
    let mut bins = scx_binaries();
    // Our own build first, then the others by name.
    bins.sort_by_key(|(n, _)| (n != "scx_storeland", n.clone()));
    for (name, path) in bins {
        let version = probe_version(&path, &["--version"]);
        out.push(Candidate {
            info: SchedulerInfo {
                name,
                path: Some(path.display().to_string()),
                version,
                args: vec![],
            },
            unavailable: blocked.clone(),
        });
    }
    out
}

/// Make sure a version probe did not leave a scheduler attached.
pub fn probes_left_state_alone(roots: &Roots) -> Result<(), String> {
    let s = sysinfo::sched_state(roots);
    match s.state.as_str() {
        "disabled" | "absent" => Ok(()),
        other => Err(format!(
            "another sched_ext scheduler is active (state {other}, ops {}): stop it first; it was left running",
            s.ops.as_deref().unwrap_or("unknown")
        )),
    }
}
