//! Scheduler event counters: the BPF side's per-CPU slots summed into one
//! view. Every CPU writes only its own slot, so the hot path takes no lock
//! and shares no cache line; user space adds them up when asked.

use std::fmt;

use crate::intf::{cpu_counters, LAT_BUCKETS};
use crate::policy::TaskClass;

/// Wake-to-run waits per log2-of-microseconds bucket, for one class.
pub type LatencyHistogram = [u64; LAT_BUCKETS];

/// Totals over all CPUs since the scheduler attached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Tasks handed to the user-space policy.
    pub queued_to_user: u64,
    /// User-space decisions applied by BPF.
    pub user_dispatches: u64,
    /// Wake-ups sent straight to an idle CPU.
    pub fastpath_idle: u64,
    /// Per-CPU kthreads kept on their CPU.
    pub fastpath_kthread: u64,
    /// The scheduler's own threads.
    pub fastpath_self: u64,
    /// Ring full: BPF queued the task itself.
    pub congested_ring_full: u64,
    /// User space late: BPF queued the task itself.
    pub congested_late: u64,
    /// Decisions dropped because the task was re-enqueued or gone.
    pub stale_dropped: u64,
    /// Decisions whose CPU/LLC the task may not use, redirected.
    pub affinity_redirects: u64,
    /// Tasks a CPU pulled from another LLC's queues.
    pub llc_steals: u64,
    /// Times the policy loop was put on a CPU.
    pub usersched_runs: u64,
    /// Latency-critical wake-ups BPF placed itself (class cached from user space).
    pub fastpath_latcrit: u64,
    /// Interactive wake-ups BPF placed itself (class cached from user space).
    pub fastpath_interactive: u64,
    /// CPUs running batch work kicked for a latency-critical task.
    pub preemptions: u64,
    /// Tasks preempted mid-slice, requeued by BPF with their last decision.
    pub requeued: u64,
    /// Slice expiries BPF requeued itself from the cached class.
    pub fastpath_requeue: u64,
    /// Batch wake-ups from I/O BPF placed itself (class cached from user space).
    pub fastpath_io_batch: u64,
    /// Wake-ups from hard or soft IRQ context (NVMe completions).
    pub irq_wakeups: u64,
    /// CPU hogs that ended their turn early for other work: waiting in their CCX
    /// (at a tick) or woken on their CPU.
    pub hog_turns_cut: u64,
    /// Placements in a CCX that found a whole idle core (SMT on).
    pub idle_core_picks: u64,
    /// Synchronous wake-ups brought to the waker's CPU from another CCX.
    pub sync_wakeups_pulled: u64,
    /// Wake-ups from an interrupt brought to that CPU, whose CPU hog then
    /// gave its turn up to them without an IPI.
    pub irq_wakeups_pulled: u64,
    /// Wake-ups from an interrupt kept on their own CPU, which the interrupt
    /// took from its idle task, though that CPU's idle bit was already clear
    /// (not set again yet: no other wake-up had claimed it).
    pub irq_idle_kept: u64,
    /// CPU hogs whose slice ended with nothing else waiting for their CPU,
    /// moved to a CCX with fewer hogs or, off a core another hog shared, to
    /// a whole idle core.
    pub hog_spreads: u64,
    /// Wake-ups placed on an idle CPU of their own CCX whose core's other
    /// thread was busy, where the kernel's picker would take a whole idle
    /// core, of another CCX if need be (SMT on).
    pub half_core_wakeups: u64,
    /// Tasks BPF kept instead of asking user space because a higher class
    /// held their CPU, or an RT task waited for it (the kernel's ext
    /// deadline server must find them when it picks there).
    pub held_cpu_kept: u64,
    /// Tasks BPF ran first because they had waited too long (the
    /// starvation guard that keeps the kernel's watchdog from firing).
    pub starvation_rescues: u64,
    /// Wake-to-run waits, indexed by `TaskClass as usize`.
    pub wake_latency: [LatencyHistogram; 3],
}

impl Counters {
    /// Sum per-CPU slots.
    pub fn sum<'a>(slots: impl IntoIterator<Item = &'a cpu_counters>) -> Self {
        let mut total = Self::default();
        for s in slots {
            total.queued_to_user += s.queued_to_user;
            total.user_dispatches += s.user_dispatches;
            total.fastpath_idle += s.fastpath_idle;
            total.fastpath_kthread += s.fastpath_kthread;
            total.fastpath_self += s.fastpath_self;
            total.congested_ring_full += s.congested_ring_full;
            total.congested_late += s.congested_late;
            total.stale_dropped += s.stale_dropped;
            total.affinity_redirects += s.affinity_redirects;
            total.llc_steals += s.llc_steals;
            total.usersched_runs += s.usersched_runs;
            total.fastpath_latcrit += s.fastpath_latcrit;
            total.fastpath_interactive += s.fastpath_interactive;
            total.preemptions += s.preemptions;
            total.requeued += s.requeued;
            total.fastpath_requeue += s.fastpath_requeue;
            total.fastpath_io_batch += s.fastpath_io_batch;
            total.irq_wakeups += s.irq_wakeups;
            total.hog_turns_cut += s.hog_turns_cut;
            total.idle_core_picks += s.idle_core_picks;
            total.sync_wakeups_pulled += s.sync_wakeups_pulled;
            total.irq_wakeups_pulled += s.irq_wakeups_pulled;
            total.irq_idle_kept += s.irq_idle_kept;
            total.hog_spreads += s.hog_spreads;
            total.half_core_wakeups += s.half_core_wakeups;
            total.held_cpu_kept += s.held_cpu_kept;
            total.starvation_rescues += s.starvation_rescues;
            for (class, hist) in total.wake_latency.iter_mut().enumerate() {
                for (bucket, n) in hist.iter_mut().enumerate() {
                    *n += s.wake_lat[class][bucket];
                }
            }
        }
        total
    }

    /// Tasks placed by BPF without asking user space.
    pub fn fastpath_dispatches(&self) -> u64 {
        self.fastpath_idle
            + self.fastpath_kthread
            + self.fastpath_self
            + self.fastpath_latcrit
            + self.fastpath_interactive
            + self.fastpath_requeue
            + self.fastpath_io_batch
            + self.held_cpu_kept
            + self.requeued
    }

    /// Wake-ups of `class` measured.
    pub fn wakeups(&self, class: TaskClass) -> u64 {
        self.wake_latency[class as usize].iter().sum()
    }

    /// Upper bound, in microseconds, of the `pct` percentile of `class`'s
    /// wake-to-run waits (the top of the histogram bucket it falls in), or
    /// None without samples.
    pub fn wake_latency_us(&self, class: TaskClass, pct: f64) -> Option<u64> {
        percentile_us(&self.wake_latency[class as usize], pct)
    }

    /// One line per class: "latency_critical n=.. p50<=..us p99<=..us ...".
    pub fn latency_line(&self) -> String {
        TaskClass::ALL
            .iter()
            .map(|&class| {
                match (
                    self.wake_latency_us(class, 50.0),
                    self.wake_latency_us(class, 99.0),
                ) {
                    (Some(p50), Some(p99)) => format!(
                        "{} n={} p50<={p50}us p99<={p99}us",
                        class.name(),
                        self.wakeups(class)
                    ),
                    _ => format!("{} n=0", class.name()),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Tasks BPF queued itself because user space could not take them.
    pub fn congestion_fallbacks(&self) -> u64 {
        self.congested_ring_full + self.congested_late
    }
}

/// Percentile of a log2 histogram: bucket b holds waits in
/// [2^b - 1, 2^(b+1) - 1) us; returns the bucket's upper end.
pub fn percentile_us(hist: &LatencyHistogram, pct: f64) -> Option<u64> {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((pct / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, &n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some((2u64 << bucket) - 1);
        }
    }
    Some((2u64 << (LAT_BUCKETS - 1)) - 1)
}

/// One `key=value` line, the format the logs and the VM test read.
impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user_dispatches={} fastpath_dispatches={} queued_to_user={} \
             fastpath_idle={} fastpath_kthread={} fastpath_self={} fastpath_latcrit={} \
             fastpath_interactive={} fastpath_requeue={} fastpath_io_batch={} \
             congestion_fallbacks={} congested_ring_full={} congested_late={} \
             stale_dropped={} affinity_redirects={} llc_steals={} usersched_runs={} \
             preemptions={} requeued={} irq_wakeups={} hog_turns_cut={} idle_core_picks={} \
             sync_wakeups_pulled={} irq_wakeups_pulled={} irq_idle_kept={} hog_spreads={} \
             half_core_wakeups={} held_cpu_kept={} starvation_rescues={}",
            self.user_dispatches,
            self.fastpath_dispatches(),
            self.queued_to_user,
            self.fastpath_idle,
            self.fastpath_kthread,
            self.fastpath_self,
            self.fastpath_latcrit,
            self.fastpath_interactive,
            self.fastpath_requeue,
            self.fastpath_io_batch,
            self.congestion_fallbacks(),
            self.congested_ring_full,
            self.congested_late,
            self.stale_dropped,
            self.affinity_redirects,
            self.llc_steals,
            self.usersched_runs,
            self.preemptions,
            self.requeued,
            self.irq_wakeups,
            self.hog_turns_cut,
            self.idle_core_picks,
            self.sync_wakeups_pulled,
            self.irq_wakeups_pulled,
            self.irq_idle_kept,
            self.hog_spreads,
            self.half_core_wakeups,
            self.held_cpu_kept,
            self.starvation_rescues,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(user: u64, idle: u64, kthread: u64, full: u64, late: u64) -> cpu_counters {
        // SAFETY: cpu_counters is plain integers; all-zero is a valid value.
        let mut s: cpu_counters = unsafe { std::mem::zeroed() };
        s.user_dispatches = user;
        s.fastpath_idle = idle;
        s.fastpath_kthread = kthread;
        s.congested_ring_full = full;
        s.congested_late = late;
        s
    }

    #[test]
    fn sums_every_cpu_slot() {
        let slots = [slot(3, 1, 0, 0, 2), slot(4, 0, 5, 1, 0)];
        let c = Counters::sum(&slots);
        assert_eq!(c.user_dispatches, 7);
        assert_eq!(c.fastpath_dispatches(), 6);
        assert_eq!(c.congestion_fallbacks(), 3);
    }

    #[test]
    fn sums_latency_histograms_and_reads_percentiles() {
        let mut a = slot(0, 0, 0, 0, 0);
        let mut b = slot(0, 0, 0, 0, 0);
        a.wake_lat[TaskClass::LatencyCritical as usize][0] = 90; // < 1 us
        b.wake_lat[TaskClass::LatencyCritical as usize][0] = 8;
        b.wake_lat[TaskClass::LatencyCritical as usize][10] = 2; // 1023..2047 us
        let c = Counters::sum(&[a, b]);
        assert_eq!(c.wakeups(TaskClass::LatencyCritical), 100);
        assert_eq!(c.wake_latency_us(TaskClass::LatencyCritical, 50.0), Some(1));
        assert_eq!(c.wake_latency_us(TaskClass::LatencyCritical, 98.0), Some(1));
        assert_eq!(
            c.wake_latency_us(TaskClass::LatencyCritical, 99.0),
            Some(2047)
        );
        assert_eq!(c.wake_latency_us(TaskClass::Batch, 50.0), None);
        let line = c.latency_line();
        assert!(
            line.starts_with("latency_critical n=100 p50<=1us p99<=2047us, interactive n=0"),
            "{line}"
        );
    }

    #[test]
    fn log_line_names_each_counter() {
        let c = Counters::sum(&[slot(10, 2, 3, 0, 0)]);
        let line = c.to_string();
        assert!(
            line.starts_with("user_dispatches=10 fastpath_dispatches=5 "),
            "{line}"
        );
        assert!(line.contains(" congestion_fallbacks=0 "), "{line}");
        assert!(
            line.ends_with(
                " preemptions=0 requeued=0 irq_wakeups=0 hog_turns_cut=0 idle_core_picks=0 \
                 sync_wakeups_pulled=0 irq_wakeups_pulled=0 irq_idle_kept=0 hog_spreads=0 \
                 half_core_wakeups=0 held_cpu_kept=0 starvation_rescues=0"
            ),
            "{line}"
        );
    }
}
