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

    // ---- sources the policy work adds (None until the BPF side has them) ----
    /// Preemptions decided by the scheduler, cumulative.
    pub preemptions: Option<u64>,
    /// Tasks that started on a CPU of another LLC than the one they last ran on, cumulative.
    pub cross_llc_migrations: Option<u64>,
    /// Wake-ups whose task ran on the waker's LLC, out of all wake-ups seen.
    pub wakeups_on_waker_llc: Option<WakeLocality>,
    /// Runnable tasks queued per LLC (index = LLC id), a gauge.
    pub llc_runnable: Option<Vec<u64>>,
    /// Time tasks waited in each LLC's queue (index = LLC id), cumulative.
    pub llc_queue_wait: Option<Vec<Log2Histogram>>,
    /// Per task class: decisions and wake-to-run latency.
    pub classes: Option<Vec<ClassSample>>,
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
            preemptions: None,
            cross_llc_migrations: None,
            wakeups_on_waker_llc: None,
            llc_runnable: None,
            llc_queue_wait: None,
            classes: None,
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

/// One task class's numbers (class names: "latency_critical", "interactive", "batch").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassSample {
    pub name: String,
    /// Decisions made for tasks of this class, cumulative.
    pub decisions: u64,
    /// Wake-up to running latency, cumulative.
    pub wake_to_run: Option<Log2Histogram>,
}

/// A latency histogram in power-of-two nanosecond buckets: bucket `i` counts
/// values `v` with `floor(log2(max(v, 1))) == i`, i.e. in `[2^i, 2^(i+1))`
/// (bucket 0 also holds 0). The BPF side can fill one per CPU with
/// `hist[min(63 - clz(ns | 1), N - 1)]++`; [`Log2Histogram::sum`] adds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log2Histogram {
    pub buckets: Vec<u64>,
}

impl Log2Histogram {
    /// The bucket a value of `ns` falls into.
    pub fn bucket_of(ns: u64) -> usize {
        (63 - (ns | 1).leading_zeros()) as usize
    }

    /// Record one value (for tests and user-space measurements).
    pub fn record(&mut self, ns: u64) {
        let b = Self::bucket_of(ns);
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

    /// The `q`-quantile (0..=1) in ns, interpolated linearly inside its
    /// bucket; None when the histogram is empty.
    pub fn quantile_ns(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lo = if i == 0 { 0.0 } else { (1u64 << i) as f64 };
                let hi = 2f64.powi(i as i32 + 1);
                let frac = (rank - seen as f64) / n as f64;
                return Some(lo + (hi - lo) * frac);
            }
            seen += n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(Log2Histogram::bucket_of(0), 0);
        assert_eq!(Log2Histogram::bucket_of(1), 0);
        assert_eq!(Log2Histogram::bucket_of(2), 1);
        assert_eq!(Log2Histogram::bucket_of(3), 1);
        assert_eq!(Log2Histogram::bucket_of(1024), 10);
        assert_eq!(Log2Histogram::bucket_of(u64::MAX), 63);
    }

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let mut h = Log2Histogram::default();
        for _ in 0..98 {
            h.record(1_500); // bucket 10: [1024, 2048)
        }
        h.record(100_000); // bucket 16: [65536, 131072)
        h.record(100_000);
        let p50 = h.quantile_ns(0.5).unwrap();
        assert!((1024.0..2048.0).contains(&p50), "{p50}");
        let p99 = h.quantile_ns(0.99).unwrap();
        assert!((65536.0..=131072.0).contains(&p99), "{p99}");
        assert_eq!(Log2Histogram::default().quantile_ns(0.5), None);
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
