//! /proc/stat: how busy the CPUs were over a run, for the CPU time each I/O
//! costs. Next to CPU hogs the machine is saturated whatever the scheduler,
//! so this only says something about runs without them.

/// The machine-wide "cpu" line of /proc/stat, in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// user, nice, system, irq, softirq and steal: time not idle.
    pub busy: u64,
    /// busy plus idle and iowait (guest time is already in user).
    pub total: u64,
    /// How many "cpuN" lines follow: the CPUs online.
    pub cpus: u32,
}

/// Parse /proc/stat's aggregate line and count the per-CPU lines.
pub fn parse(text: &str) -> Result<CpuTimes, String> {
    let mut lines = text.lines();
    let first = lines.next().ok_or("/proc/stat is empty")?;
    let mut words = first.split_whitespace();
    if words.next() != Some("cpu") {
        return Err(format!(
            "/proc/stat does not start with the cpu line: {first:?}"
        ));
    }
    let f: Vec<u64> = words
        .take(8)
        .map(|w| {
            w.parse()
                .map_err(|_| format!("unexpected /proc/stat cpu field {w:?}"))
        })
        .collect::<Result<_, _>>()?;
    if f.len() < 8 {
        return Err(format!(
            "/proc/stat cpu line has {} fields, want 8",
            f.len()
        ));
    }
    let (idle, iowait) = (f[3], f[4]);
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    let cpus = lines
        .take_while(|l| l.starts_with("cpu"))
        .filter(|l| l[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count() as u32;
    if cpus == 0 {
        return Err("/proc/stat lists no CPU".into());
    }
    Ok(CpuTimes {
        busy,
        total: busy + idle + iowait,
        cpus,
    })
}

/// How many CPUs were busy on average between two readings, or None when no
/// time passed or the CPUs changed (hotplug) in between.
pub fn busy_cpus(before: &CpuTimes, after: &CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let busy = after.busy.checked_sub(before.busy)?;
    if total == 0 || before.cpus != after.cpus {
        return None;
    }
    Some(busy as f64 / total as f64 * f64::from(after.cpus))
}

/// Busy CPUs below which the machine counts as quiet before a run. What the
/// run before left behind counts towards this run's CPU time otherwise: the
/// kworker that tears down fio's io_uring rings after fio exits used up to
/// 2 s of CPU during the next 7 s run in the VM.
pub const QUIET_BUSY_CPUS: f64 = 0.5;
/// Each look at how busy the CPUs are spans this window ...
pub const SETTLE_WINDOW_MS: u64 = 250;
/// ... and a run waits for quiet at most this long, then starts anyway.
pub const SETTLE_MAX_S: u64 = 10;

/// Whether CPUs this busy (busy_cpus()) count as quiet.
pub fn is_quiet(busy_cpus: f64) -> bool {
    busy_cpus < QUIET_BUSY_CPUS
}

/// CPU microseconds the machine spent per I/O at `iops` with `busy_cpus` busy.
pub fn cpu_us_per_io(busy_cpus: f64, iops: f64) -> Option<f64> {
    (iops > 0.0).then(|| busy_cpus * 1e6 / iops)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "cpu  100 5 50 800 20 3 2 0 0 0\n\
                          cpu0 50 2 25 400 10 2 1 0 0 0\n\
                          cpu1 50 3 25 400 10 1 1 0 0 0\n\
                          intr 12345 0 0\nctxt 999\n";
    const AFTER: &str = "cpu  200 5 90 1000 40 3 2 0 0 0\n\
                         cpu0 100 2 45 500 20 2 1 0 0 0\n\
                         cpu1 100 3 45 500 20 1 1 0 0 0\n\
                         intr 12345 0 0\n";

    #[test]
    fn parses_the_aggregate_line_and_counts_cpus() {
        let t = parse(BEFORE).unwrap();
        assert_eq!(t.busy, 100 + 5 + 50 + 3 + 2);
        assert_eq!(t.total, t.busy + 800 + 20);
        assert_eq!(t.cpus, 2);
    }

    #[test]
    fn busy_cpus_is_the_busy_share_times_the_cpus() {
        let (a, b) = (parse(BEFORE).unwrap(), parse(AFTER).unwrap());
        // 140 busy ticks of 360: 0.389 of 2 CPUs.
        let busy = busy_cpus(&a, &b).unwrap();
        assert!((busy - 140.0 / 360.0 * 2.0).abs() < 1e-9, "{busy}");
        assert_eq!(busy_cpus(&a, &a), None, "no time passed");
        assert_eq!(busy_cpus(&b, &a), None, "counters went back");
    }

    #[test]
    fn a_cpu_going_offline_voids_the_reading() {
        let a = parse(BEFORE).unwrap();
        let b = CpuTimes {
            cpus: 1,
            ..parse(AFTER).unwrap()
        };
        assert_eq!(busy_cpus(&a, &b), None);
    }

    #[test]
    fn quiet_means_under_half_a_cpu_busy() {
        let at = |busy, idle| CpuTimes {
            busy,
            total: busy + idle,
            cpus: 4,
        };
        // 100 ticks on 4 CPUs: 10 busy is 0.4 CPUs, 15 is 0.6.
        let quiet = |b, i| busy_cpus(&at(0, 0), &at(b, i)).map(is_quiet);
        assert_eq!(quiet(10, 90), Some(true));
        assert_eq!(quiet(15, 85), Some(false));
        assert_eq!(quiet(0, 0), None, "no time passed");
    }

    #[test]
    fn cpu_per_io() {
        assert_eq!(cpu_us_per_io(1.0, 5000.0), Some(200.0));
        assert_eq!(cpu_us_per_io(1.0, 0.0), None);
    }

    #[test]
    fn bad_input_is_an_error() {
        let bad = [
            "",
            "intr 1 2\n",
            "cpu 1 2 3\ncpu0 1 2 3\n",
            "cpu 1 2 x 4 5 6 7 8\n",
            "cpu 1 2 3 4 5 6 7 8\nintr 1\n", // no per-CPU line
        ];
        for text in bad {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
