//! The policy loop: drain queued tasks, decide, submit, repeat. Runs on the
//! main thread (BPF recognises it by pid and never queues it behind the
//! tasks it schedules) and never blocks while tasks wait on it: it sleeps in
//! epoll only when the ring is empty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use log::info;

use storeland::intf::RING_ENTRIES;
use storeland::policy::{LoadView, Policy, TaskObservation};
use storeland::stats::StatsResponder;

use crate::loader::{Attached, Stopped};
use crate::rings::Rings;

mod stats; // the loop's side of the stats: the sample it hands the server

/// Longest sleep between checks for a signal or a kernel exit.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Why the loop ended.
pub enum Outcome {
    /// An operator's signal: detached cleanly.
    Detached,
    /// The kernel asked for a restart (CPU hotplug).
    Restart(String),
    /// The kernel unloaded the scheduler without being asked to.
    Ejected(String),
    /// The operator disabled sched_ext with sysrq-S.
    SysRq(String),
}

pub struct Daemon<'obj> {
    bpf: Attached<'obj>,
    rings: Rings,
    policy: Policy,
    shutdown: Arc<AtomicBool>,
    stats_every: Option<Duration>,
    batch: Vec<TaskObservation>,
    load: LoadView,
    stats: Option<StatsResponder>,
    /// Fault injection: panic once this many decisions were made.
    panic_after: Option<u64>,
    decisions: u64,
}

impl<'obj> Daemon<'obj> {
    pub fn new(
        bpf: Attached<'obj>,
        rings: Rings,
        policy: Policy,
        shutdown: Arc<AtomicBool>,
        stats_every: Option<Duration>,
    ) -> Self {
        Self {
            bpf,
            rings,
            policy,
            shutdown,
            stats_every,
            batch: Vec::with_capacity(RING_ENTRIES),
            load: LoadView {
                llc_queued: Vec::with_capacity(storeland::intf::MAX_LLCS),
            },
            stats: None,
            panic_after: None,
            decisions: 0,
        }
    }

    /// Fault injection for the fault tests: panic in the loop after
    /// `decisions` decisions (hidden option `--fault-panic-after`).
    pub fn with_panic_after(mut self, decisions: Option<u64>) -> Self {
        self.panic_after = decisions;
        self
    }

    /// Answer stats requests from the loop (see daemon/stats.rs).
    pub fn with_stats(mut self, stats: Option<StatsResponder>) -> Self {
        self.stats = stats;
        self
    }

    pub fn run(mut self) -> Result<Outcome> {
        let mut next_stats = self.stats_every.map(|every| Instant::now() + every);

        while !self.shutdown.load(Ordering::Relaxed) && !self.bpf.exited() {
            self.batch.clear();
            let drained = self.rings.drain(&mut self.batch)?;
            self.bpf.note_drained();
            if !self.batch.is_empty() {
                self.bpf
                    .read_llc_load(self.policy.topology(), &mut self.load);
            }
            for task in &self.batch {
                let decision = self.policy.decide(task, &self.load);
                self.rings.push(&decision);
            }
            self.decisions += self.batch.len() as u64;
            if let Some(n) = self.panic_after {
                if self.decisions >= n {
                    panic!("fault injection: --fault-panic-after {n} reached");
                }
            }
            if self.rings.flush()? > 0 {
                self.bpf.note_submitted();
                self.bpf.kick_idle_cpu()?;
            }

            if self.rings.pending_decisions() > 0 {
                // The decision ring is full: let BPF drain it.
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            } else if drained == 0 {
                self.rings.wait(IDLE_WAIT);
            }

            self.answer_stats(); // non-blocking; copies counters only when asked

            if let (Some(due), Some(every)) = (next_stats, self.stats_every) {
                if Instant::now() >= due {
                    let counters = self.bpf.counters();
                    info!("counters: {counters}");
                    info!("wake-to-run: {}", counters.latency_line());
                    next_stats = Some(due + every);
                }
            }
        }

        let counters = self.bpf.counters();
        let deferred = self.rings.decisions_deferred;
        let requested = self.shutdown.load(Ordering::Relaxed);
        let report = self.bpf.detach_and_report();
        info!("final counters: {counters} decisions_deferred={deferred}");
        info!("final wake-to-run: {}", counters.latency_line());
        let uei = match report? {
            Stopped::SysRq(why) => return Ok(Outcome::SysRq(why)),
            Stopped::Exit(uei) => uei,
        };
        if uei.should_restart() {
            return Ok(Outcome::Restart(format!("{uei:?}")));
        }
        if requested {
            Ok(Outcome::Detached)
        } else {
            Ok(Outcome::Ejected(
                "the kernel unregistered the scheduler".into(),
            ))
        }
    }
}
