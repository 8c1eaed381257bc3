//! The scheduling loop's side of the stats: when a client asks (a channel
//! poll, no lock, no syscall), copy the counters into a [`SchedSample`] and
//! hand it to the server thread, which does all the arithmetic.
//!
//! New BPF counters in `cpu_counters` reach the server with the per-CPU
//! slots; other sources (per-LLC queue-wait histograms, cross-CCX
//! migrations, waker locality) go into the matching `Option` field of
//! [`SchedSample`] here, and the collector publishes them.

use storeland::policy::LoadView;
use storeland::stats::{monotonic_ns, Log2Histogram, SchedSample, WakeLocality};

use super::Daemon;

impl Daemon<'_> {
    /// Answer pending stats requests, if any. Never blocks.
    pub(super) fn answer_stats(&self) {
        if let Some(stats) = &self.stats {
            stats.answer(|| self.stats_sample());
        }
    }

    /// Everything the loop knows, raw and cumulative.
    fn stats_sample(&self) -> SchedSample {
        let topo = self.policy.topology();
        let mut sample = SchedSample::new(
            monotonic_ns(),
            0, // the responder knows the attach time
            topo.clone(),
            self.bpf.counter_slots(topo.nr_cpu_ids()),
            self.rings.sample(),
        );
        let mut queued = LoadView {
            llc_queued: Vec::with_capacity(topo.nr_llcs()),
        };
        self.bpf.read_llc_load(topo, &mut queued);
        sample.llc_runnable = Some(queued.llc_queued.iter().map(|&n| u64::from(n)).collect());
        fill_locality(&mut sample);
        sample
    }
}

/// Cross-CCX migrations, waker locality and per-CCX queue waits, from the
/// per-CPU slots (a CPU's waits count for the CCX it belongs to).
fn fill_locality(sample: &mut SchedSample) {
    let slots = &sample.per_cpu;
    sample.cross_llc_migrations = Some(slots.iter().map(|s| s.llc_migrations).sum());
    sample.wakeups_on_waker_llc = Some(WakeLocality {
        kept: slots.iter().map(|s| s.wake_on_waker_llc).sum(),
        total: slots.iter().map(|s| s.wakeups_seen).sum(),
    });
    let topo = &sample.topology;
    sample.llc_queue_wait = Some(
        (0..topo.nr_llcs())
            .map(|llc| {
                Log2Histogram::sum(
                    topo.llc_cpus(llc)
                        .iter()
                        .filter_map(|&cpu| slots.get(cpu as usize))
                        .map(|s| &s.queue_wait[..]),
                )
            })
            .collect(),
    );
}
