//! What the scheduling loop hands the stats server: raw, cumulative numbers
//! taken in a few microseconds, with no arithmetic beyond copying. Rates,
//! percentiles and per-LLC sums are computed later, off the scheduling
//! thread, by [`crate::stats::Collector`].
//!
//! Fields that the current BPF side has no source for are `Option`s left at
//! `None`; the published stats then leave them out rather than show a zero.

use crate::counters::Counters;
use crate::intf::cpu_counters;
use crate::topology::CcxTopology;

/// One reading of the scheduler, taken on the scheduling thread.
///
/// Counters and histograms are cumulative since the current attach (the BPF
/// side is reloaded on a restart, which starts them from zero again).
#[derive(Clone, Debug)]
pub struct SchedSample {
    /// CLOCK_MONOTONIC, ns, when the sample was taken.
    pub taken_at_ns: u64,
    /// CLOCK_MONOTONIC, ns, when the current attach completed.
    pub attached_at_ns: u64,
    /// In-place restarts (CPU hotplug) since the process started.
    pub restarts: u64,
    /// The kernel's reason for the latest restart.
    pub last_restart_reason: Option<String>,
    /// The CPUs grouped by LLC that the scheduler was loaded with.
    pub topology: CcxTopology,
    /// The BPF side's counter slots, one per CPU id (as in the .bss).
    pub per_cpu: Vec<cpu_counters>,
    /// The two ring buffers and the loop draining them.
    pub ring: RingSample,

    // ---- sources the BPF side may not have (None: left out of the stats) ----
    // (Preemptions, requeues and per-class wake-to-run histograms come with
    // the per-CPU counters above.)
    /// Tasks that started on a CPU of another LLC than the one they last ran on, cumulative.
    pub cross_llc_migrations: Option<u64>,
    /// Wake-ups whose task ran on the waker's LLC, out of all wake-ups seen.
    pub wakeups_on_waker_llc: Option<WakeLocality>,
    /// Runnable tasks queued per LLC (index = LLC id), a gauge.
    pub llc_runnable: Option<Vec<u64>>,
    /// Time tasks waited in each LLC's queue (index = LLC id), cumulative.
    pub llc_queue_wait: Option<Vec<Log2Histogram>>,
}

impl SchedSample {
    /// A sample with only the parts every build has; the `Option`s are None.
    pub fn new(
        taken_at_ns: u64,
        attached_at_ns: u64,
        topology: CcxTopology,
        per_cpu: Vec<cpu_counters>,
        ring: RingSample,
    ) -> Self {
        Self {
            taken_at_ns,
            attached_at_ns,
            restarts: 0,
            last_restart_reason: None,
            topology,
            per_cpu,
            ring,
            cross_llc_migrations: None,
            wakeups_on_waker_llc: None,
            llc_runnable: None,
            llc_queue_wait: None,
        }
    }

    /// Sum of the per-CPU counters.
    pub fn totals(&self) -> Counters {
        Counters::sum(&self.per_cpu)
    }
}

/// The ring buffers and the policy loop's draining of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingSample {
    /// Queued-task records waiting in the kernel -> user ring right now.
    pub queued_tasks: u64,
    /// Records the kernel -> user ring can hold.
    pub capacity_tasks: u64,
    /// Tasks drained from the ring, cumulative.
    pub tasks_drained: u64,
    /// Loop iterations that drained at least one task, cumulative.
    pub drains_nonempty: u64,
    /// Largest number of tasks drained in one iteration since attach.
    pub drain_batch_max: u64,
    /// Decisions made but not yet accepted by the full user -> kernel ring.
    pub decisions_pending: u64,
    /// Times a decision had to wait because that ring was full, cumulative.
    pub decisions_deferred: u64,
}

/// Wake-ups that stayed on the waker's LLC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeLocality {
    pub kept: u64,
    pub total: u64,
}

/// A latency histogram in the BPF side's layout (`cpu_counters.wake_lat`):
/// bucket `b` counts waits in `[2^b - 1, 2^(b+1) - 1)` microseconds, i.e.
/// `b = floor(log2(us + 1))`, the last bucket taking everything longer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log2Histogram {
    pub buckets: Vec<u64>,
}

impl Log2Histogram {
    pub fn from_buckets(buckets: &[u64]) -> Self {
        Self {
            buckets: buckets.to_vec(),
        }
    }

    /// The bucket a wait of `us` microseconds falls into.
    pub fn bucket_of(us: u64) -> usize {
        (63 - us.saturating_add(1).leading_zeros()) as usize
    }

    /// Record one wait (for tests and user-space measurements).
    pub fn record(&mut self, us: u64) {
        let b = Self::bucket_of(us);
        if self.buckets.len() <= b {
            self.buckets.resize(b + 1, 0);
        }
        self.buckets[b] += 1;
    }

    /// Bucket-wise sum, e.g. of per-CPU histograms.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a [u64]>) -> Self {
        let mut h = Self::default();
        for p in parts {
            if h.buckets.len() < p.len() {
                h.buckets.resize(p.len(), 0);
            }
            for (acc, v) in h.buckets.iter_mut().zip(p) {
                *acc += v;
            }
        }
        h
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was recorded after `earlier` (same histogram, read earlier).
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// The `q`-quantile (0..=1) in microseconds, as the upper end of its
    /// bucket (what `counters::percentile_us` and the log lines report);
    /// None when the histogram is empty.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(2f64.powi(b as i32 + 1) - 1.0);
            }
        }
        Some(2f64.powi(self.buckets.len() as i32) - 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_bpf_layout() {
        assert_eq!(Log2Histogram::bucket_of(0), 0);
        assert_eq!(Log2Histogram::bucket_of(1), 1);
        assert_eq!(Log2Histogram::bucket_of(2), 1);
        assert_eq!(Log2Histogram::bucket_of(3), 2);
        assert_eq!(Log2Histogram::bucket_of(1023), 10);
        assert_eq!(Log2Histogram::bucket_of(u64::MAX), 63);
    }

    #[test]
    fn quantiles_are_the_upper_end_of_their_bucket() {
        let mut h = Log2Histogram::default();
        for _ in 0..98 {
            h.record(0); // < 1 us
        }
        h.record(1500); // bucket 10: [1023, 2047) us
        h.record(1500);
        assert_eq!(h.quantile_us(0.5), Some(1.0));
        assert_eq!(h.quantile_us(0.98), Some(1.0));
        assert_eq!(h.quantile_us(0.99), Some(2047.0));
        assert_eq!(Log2Histogram::default().quantile_us(0.5), None);
        // The same answers as the log lines' percentile_us.
        let mut arr = [0u64; crate::intf::LAT_BUCKETS];
        arr[..h.buckets.len()].copy_from_slice(&h.buckets);
        assert_eq!(crate::counters::percentile_us(&arr, 99.0), Some(2047));
    }

    #[test]
    fn since_and_sum_are_bucket_wise() {
        let a = Log2Histogram::sum([&[1u64, 2][..], &[0, 1, 5]]);
        assert_eq!(a.buckets, vec![1, 3, 5]);
        let earlier = Log2Histogram {
            buckets: vec![1, 1],
        };
        assert_eq!(a.since(&earlier).buckets, vec![0, 2, 5]);
        assert_eq!(a.count(), 9);
    }
}
