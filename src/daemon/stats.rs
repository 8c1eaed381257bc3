//! The scheduling loop's side of the stats: when a client asks (a channel
//! poll, no lock, no syscall), copy the counters into a [`SchedSample`] and
//! hand it to the server thread, which does all the arithmetic.
//!
//! New BPF sources (task classes, preemptions, histograms) go into the
//! sample here: fill the matching `Option` field of [`SchedSample`] and the
//! collector publishes it (see src/stats/sample.rs).

use storeland::stats::{monotonic_ns, SchedSample};

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
        SchedSample::new(
            monotonic_ns(),
            0, // the responder knows the attach time
            topo.clone(),
            self.bpf.counter_slots(topo.nr_cpu_ids()),
            self.rings.sample(),
        )
    }
}
