//! What the kernel already counts and the stats add to the BPF counters:
//! per-CPU time (`/proc/stat`), NVMe interrupts per drive and CPU
//! (`/proc/interrupts`), and the daemon's own CPU time and page faults.
//!
//! Parsers take text so they are tested on any host. `/proc/interrupts` is
//! read line by line: on a box with 24 drives and 192 CPUs it is megabytes,
//! and it is read inside the scheduler's process, whose heap is fixed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Cumulative time of one CPU, in USER_HZ ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Running anything (user, nice, system, irq, softirq, steal).
    pub busy: u64,
    /// Servicing hard and soft interrupts (part of `busy`).
    pub irq: u64,
    /// Idle waiting for I/O (not part of `busy`).
    pub iowait: u64,
    /// Everything, idle included.
    pub total: u64,
}

/// Interrupts of one NVMe drive, summed over its queues, per CPU id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DriveIrqs {
    /// Interrupt vectors (queues) of the drive.
    pub queues: u64,
    /// Interrupts handled, cumulative, index = CPU id.
    pub per_cpu: Vec<u64>,
}

/// The daemon's own CPU use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DaemonTimes {
    /// CPU time of the scheduling loop's thread, ns (from schedstat).
    pub loop_cpu_ns: Option<u64>,
    /// CPU time of the whole process (all threads), ns.
    pub process_cpu_ns: u64,
    /// Major page faults of the process, cumulative.
    pub major_faults: u64,
}

/// One reading of /proc.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcSample {
    /// CLOCK_MONOTONIC, ns.
    pub taken_at_ns: u64,
    /// Index = CPU id; None for a CPU /proc/stat does not list (offline).
    pub cpus: Vec<Option<CpuTimes>>,
    /// Keyed by drive ("nvme0"); None if /proc/interrupts was unreadable.
    pub nvme: Option<BTreeMap<String, DriveIrqs>>,
    /// None if /proc/self was unreadable.
    pub daemon: Option<DaemonTimes>,
}

impl ProcSample {
    /// Read /proc now. `loop_tid` is the scheduling loop's thread id.
    pub fn read(loop_tid: Option<i32>) -> Self {
        Self {
            taken_at_ns: super::monotonic_ns(),
            cpus: std::fs::read_to_string("/proc/stat")
                .map(|s| parse_proc_stat(&s))
                .unwrap_or_default(),
            nvme: File::open("/proc/interrupts")
                .ok()
                .and_then(|f| parse_interrupts(BufReader::new(f)).ok()),
            daemon: read_daemon_times(loop_tid),
        }
    }
}

/// Per-CPU lines of /proc/stat ("cpuN user nice system idle iowait irq
/// softirq steal ...").
pub fn parse_proc_stat(text: &str) -> Vec<Option<CpuTimes>> {
    let mut cpus: Vec<Option<CpuTimes>> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let Some(id) = words
            .next()
            .and_then(|w| w.strip_prefix("cpu"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let v: Vec<u64> = words.map(|w| w.parse().unwrap_or(0)).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        // guest time is already included in user/nice.
        let (user, nice, system, idle, iowait, irq, softirq, steal) =
            (at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7));
        let busy = user + nice + system + irq + softirq + steal;
        if cpus.len() <= id {
            cpus.resize(id + 1, None);
        }
        cpus[id] = Some(CpuTimes {
            busy,
            irq: irq + softirq,
            iowait,
            total: busy + idle + iowait,
        });
    }
    cpus
}

/// The NVMe drive an interrupt action name belongs to: "nvme3q12" -> "nvme3"
/// (also "nvme3q0", the admin queue). Other devices give None.
pub fn nvme_drive_of(action: &str) -> Option<&str> {
    let rest = action.strip_prefix("nvme")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let tail = &rest[digits..];
    let q = tail.strip_prefix('q')?;
    if q.is_empty() || !q.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(&action[..4 + digits])
}

/// NVMe interrupt counts per drive and CPU from /proc/interrupts, read one
/// line at a time.
pub fn parse_interrupts(mut reader: impl BufRead) -> std::io::Result<BTreeMap<String, DriveIrqs>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(BTreeMap::new());
    }
    // Header: the CPU id of each column ("CPU0 CPU1 CPU3" if CPU2 is offline).
    let columns: Vec<usize> = line
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix("CPU").and_then(|n| n.parse().ok()))
        .collect();
    let nr_ids = columns.iter().max().map_or(0, |&m| m + 1);
    let mut drives: BTreeMap<String, DriveIrqs> = BTreeMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        // Only numbered IRQ lines name a device; the action is the last word.
        let mut words = line.split_ascii_whitespace();
        let Some(irq) = words.next() else { continue };
        if !irq
            .trim_end_matches(':')
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Some(drive) = line.split_ascii_whitespace().last().and_then(nvme_drive_of) else {
            continue;
        };
        let entry = drives
            .entry(drive.to_string())
            .or_insert_with(|| DriveIrqs {
                queues: 0,
                per_cpu: vec![0; nr_ids],
            });
        entry.queues += 1;
        for (col, word) in words.take(columns.len()).enumerate() {
            let Ok(n) = word.parse::<u64>() else { break };
            entry.per_cpu[columns[col]] += n;
        }
    }
    Ok(drives)
}

/// Ticks per second of /proc's time fields.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// utime + stime (ns) and majflt of a /proc/PID/stat line.
pub fn parse_pid_stat(text: &str, ticks_per_sec: u64) -> Option<(u64, u64)> {
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_ascii_whitespace().collect();
    // after ')' : state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
    // majflt(12) cmajflt utime(14) stime(15)
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    let ticks = num(14)? + num(15)?;
    Some((ticks * 1_000_000_000 / ticks_per_sec.max(1), num(12)?))
}

fn read_daemon_times(loop_tid: Option<i32>) -> Option<DaemonTimes> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (process_cpu_ns, major_faults) = parse_pid_stat(&stat, clock_ticks())?;
    let loop_cpu_ns = loop_tid.and_then(|tid| {
        let path = format!("/proc/self/task/{tid}/schedstat");
        read_first_u64(Path::new(&path))
    });
    Some(DaemonTimes {
        loop_cpu_ns,
        process_cpu_ns,
        major_faults,
    })
}

fn read_first_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 50 800 10 5 5 0 0 0
cpu0 40 0 20 400 5 2 3 0 0 0
cpu1 60 0 30 400 5 3 2 0 0 0
cpu3 1 0 0 9 0 0 0 0 0 0
intr 12345 0 0
ctxt 999
";

    #[test]
    fn proc_stat_gives_per_cpu_busy_and_total() {
        let cpus = parse_proc_stat(STAT);
        assert_eq!(cpus.len(), 4);
        let c0 = cpus[0].unwrap();
        assert_eq!(c0.busy, 40 + 20 + 2 + 3);
        assert_eq!(c0.irq, 5);
        assert_eq!(c0.iowait, 5);
        assert_eq!(c0.total, c0.busy + 400 + 5);
        assert_eq!(cpus[2], None, "offline CPU");
        assert_eq!(cpus[3].unwrap().total, 10);
    }

    const INTERRUPTS: &str = "           CPU0       CPU1       CPU3
  0:         36          0          0  IR-IO-APIC    2-edge      timer
 24:          0          0          7  PCI-MSIX-0000:00:04.0    0-edge      nvme0q0
 25:        100          0          0  PCI-MSIX-0000:00:04.0    1-edge      nvme0q1
 26:          0        200          0  PCI-MSIX-0000:00:04.0    2-edge      nvme0q2
 27:          5          0          0  PCI-MSIX-0000:00:05.0    0-edge      nvme12q0
 28:          0          0          0  PCI-MSIX-0000:00:06.0    0-edge      virtio0-config
NMI:          0          0          0   Non-maskable interrupts
LOC:       1000       1000       1000   Local timer interrupts
";

    #[test]
    fn interrupts_are_summed_per_drive_and_cpu() {
        let d = parse_interrupts(INTERRUPTS.as_bytes()).unwrap();
        assert_eq!(d.keys().collect::<Vec<_>>(), ["nvme0", "nvme12"]);
        let n0 = &d["nvme0"];
        assert_eq!(n0.queues, 3);
        assert_eq!(n0.per_cpu, vec![100, 200, 0, 7], "CPU3 is the 3rd column");
        assert_eq!(d["nvme12"].per_cpu, vec![5, 0, 0, 0]);
        assert!(parse_interrupts(&b""[..]).unwrap().is_empty());
    }

    #[test]
    fn only_nvme_queue_actions_name_a_drive() {
        assert_eq!(nvme_drive_of("nvme0q1"), Some("nvme0"));
        assert_eq!(nvme_drive_of("nvme23q191"), Some("nvme23"));
        for other in [
            "nvme", "nvmeq1", "nvme0", "nvme0n1", "nvme0q", "timer", "nvme0qx",
        ] {
            assert_eq!(nvme_drive_of(other), None, "{other}");
        }
    }

    #[test]
    fn pid_stat_survives_odd_command_names() {
        let line = "42 (scx (store) land) S 1 42 42 0 -1 4194560 500 0 3 0 250 50 0 0 20 0 5 0";
        assert_eq!(parse_pid_stat(line, 100), Some((3_000_000_000, 3)));
        assert_eq!(parse_pid_stat("garbage", 100), None);
    }

    #[test]
    fn reading_this_host_does_not_fail() {
        let s = ProcSample::read(Some(std::process::id() as i32));
        assert!(s.cpus.iter().any(Option::is_some));
        assert!(s.daemon.is_some());
    }
}
