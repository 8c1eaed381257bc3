//! From raw readings to published stats: rates between two samples, per-LLC
//! sums, percentiles. Runs on a stats server thread (one collector per
//! client connection, so clients get rates over their own interval and do
//! not disturb each other), never on the scheduling thread.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::counters::Counters;
use crate::policy::TaskClass;
use crate::stats::metrics::{ClassStats, LlcStats, NvmeDriveStats, StorelandStats, SCHEDULER_NAME};
use crate::stats::procfs::{CpuTimes, ProcSample};
use crate::stats::sample::{Log2Histogram, SchedSample};

/// One reading of the scheduling loop and of /proc, where a stats window
/// ends. Clients share one behind an [`Arc`] (the per-CPU counters run to
/// 138 KB at 192 CPUs), so reusing it costs a reference count.
pub struct Reading {
    pub sched: SchedSample,
    pub proc: ProcSample,
}

/// Turns successive readings into stats.
pub struct Collector {
    version: String,
    /// /proc as it was when the stats server started (right after attach).
    proc_baseline: ProcSample,
    /// The last reading and the stats it gave.
    prev: Option<(Arc<Reading>, StorelandStats)>,
}

impl Collector {
    /// `proc_baseline`: /proc read when the scheduler attached; the first
    /// stats of a connection cover the time since then.
    pub fn new(version: impl Into<String>, proc_baseline: ProcSample) -> Self {
        Self {
            version: version.into(),
            proc_baseline,
            prev: None,
        }
    }

    /// Stats for the window since the previous reading (or since attach).
    /// The same reading again (clients share one for a while) gives the
    /// same stats: rates over no time would read zero.
    pub fn update(&mut self, now: Arc<Reading>) -> StorelandStats {
        let (sched, proc) = (&now.sched, &now.proc);
        let stats = match &self.prev {
            Some((then, stats)) if then.sched.taken_at_ns == sched.taken_at_ns => {
                return stats.clone()
            }
            // A restart reloads the BPF side: its counters start again at
            // zero, so the previous sample is no baseline for them.
            Some((then, _)) if then.sched.restarts == sched.restarts => {
                compute(&self.version, Some(&then.sched), &then.proc, sched, proc)
            }
            Some((then, _)) => compute(&self.version, None, &then.proc, sched, proc),
            None => compute(&self.version, None, &self.proc_baseline, sched, proc),
        };
        self.prev = Some((now, stats.clone()));
        stats
    }
}

/// Events per second, to 0.01/s (enough for any rate, and readable JSON).
fn per_sec(now: u64, then: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    (now.saturating_sub(then) as f64 / secs * 100.0).round() / 100.0
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (100.0 * part as f64 / whole as f64).min(100.0)
    }
}

/// Busy, irq, iowait and total ticks of `cpus` between two /proc/stat readings.
fn cpu_delta(now: &[Option<CpuTimes>], then: &[Option<CpuTimes>], cpu: usize) -> CpuTimes {
    let (Some(Some(a)), Some(Some(b))) = (now.get(cpu), then.get(cpu)) else {
        return CpuTimes::default();
    };
    CpuTimes {
        busy: a.busy.saturating_sub(b.busy),
        irq: a.irq.saturating_sub(b.irq),
        iowait: a.iowait.saturating_sub(b.iowait),
        total: a.total.saturating_sub(b.total),
    }
}

fn add(acc: &mut CpuTimes, d: CpuTimes) {
    acc.busy += d.busy;
    acc.irq += d.irq;
    acc.iowait += d.iowait;
    acc.total += d.total;
}

fn quantile_us(now: Option<&Log2Histogram>, then: Option<&Log2Histogram>, q: f64) -> Option<f64> {
    let now = now?;
    let window = match then {
        Some(t) => now.since(t),
        None => now.clone(),
    };
    window.quantile_us(q)
}

fn compute(
    version: &str,
    prev: Option<&SchedSample>,
    prev_proc: &ProcSample,
    s: &SchedSample,
    p: &ProcSample,
) -> StorelandStats {
    let since_ns = prev.map_or(s.attached_at_ns, |ps| ps.taken_at_ns);
    let secs = s.taken_at_ns.saturating_sub(since_ns) as f64 / 1e9;
    let zero = Counters::default();
    let now = s.totals();
    let then = prev.map_or(zero, SchedSample::totals);
    let rate = |n: u64, t: u64| per_sec(n, t, secs);

    let placements =
        |c: &Counters| c.user_dispatches + c.fastpath_dispatches() + c.congestion_fallbacks();
    let placed = placements(&now).saturating_sub(placements(&then));
    let user = now.user_dispatches.saturating_sub(then.user_dispatches);

    let ring = s.ring;
    let pring = prev.map(|ps| ps.ring).unwrap_or_default();
    let drains = ring.drains_nonempty.saturating_sub(pring.drains_nonempty);
    let drained = ring.tasks_drained.saturating_sub(pring.tasks_drained);

    // Optional sources, cumulative: a rate over the window when present.
    let opt_rate = |n: Option<u64>, t: Option<u64>| n.map(|n| rate(n, t.unwrap_or(0)));
    let locality = s.wakeups_on_waker_llc.and_then(|w| {
        let pw = prev
            .and_then(|ps| ps.wakeups_on_waker_llc)
            .unwrap_or_default();
        let total = w.total.saturating_sub(pw.total);
        (total > 0).then(|| pct(w.kept.saturating_sub(pw.kept), total))
    });

    // /proc: utilisation per CPU and LLC; the window is the /proc one.
    let proc_secs = p.taken_at_ns.saturating_sub(prev_proc.taken_at_ns) as f64 / 1e9;
    let topo = &s.topology;
    let mut all = CpuTimes::default();
    let mut llcs = BTreeMap::new();
    for llc in 0..topo.nr_llcs() {
        let cpus = topo.llc_cpus(llc).to_vec();
        let mut sum = CpuTimes::default();
        let mut cpu_util = Vec::with_capacity(cpus.len());
        for &cpu in &cpus {
            let d = cpu_delta(&p.cpus, &prev_proc.cpus, cpu as usize);
            cpu_util.push(round1(pct(d.busy, d.total)));
            add(&mut sum, d);
        }
        add(&mut all, sum);
        let counters_of = |sample: Option<&SchedSample>| {
            sample.map_or(zero, |ss| {
                Counters::sum(cpus.iter().filter_map(|&c| ss.per_cpu.get(c as usize)))
            })
        };
        let (cn, ct) = (counters_of(Some(s)), counters_of(prev));
        let irqs_at = |sample: &ProcSample| -> u64 {
            let Some(ds) = &sample.nvme else { return 0 };
            ds.values()
                .map(|d| {
                    cpus.iter()
                        .filter_map(|&c| d.per_cpu.get(c as usize))
                        .sum::<u64>()
                })
                .sum()
        };
        let nvme_irqs = p
            .nvme
            .as_ref()
            .map(|_| per_sec(irqs_at(p), irqs_at(prev_proc), proc_secs));
        let wait = s.llc_queue_wait.as_ref().and_then(|h| h.get(llc));
        let pwait = prev
            .and_then(|ps| ps.llc_queue_wait.as_ref())
            .and_then(|h| h.get(llc));
        llcs.insert(
            llc as u32,
            LlcStats {
                cpus,
                cpu_util_pct: cpu_util,
                util_pct: round1(pct(sum.busy, sum.total)),
                irq_pct: round1(pct(sum.irq, sum.total)),
                steals_per_sec: rate(cn.llc_steals, ct.llc_steals),
                nvme_irqs_per_sec: nvme_irqs,
                runnable: s.llc_runnable.as_ref().and_then(|r| r.get(llc).copied()),
                queue_wait_p50_us: quantile_us(wait, pwait, 0.50),
                queue_wait_p99_us: quantile_us(wait, pwait, 0.99),
            },
        );
    }

    let classes = TaskClass::ALL
        .iter()
        .map(|&class| {
            let hist = |c: &Counters| Log2Histogram::from_buckets(&c.wake_latency[class as usize]);
            let (h, ph) = (hist(&now), hist(&then));
            let window = h.since(&ph);
            (
                class.name().to_string(),
                ClassStats {
                    wakeups_per_sec: rate(h.count(), ph.count()),
                    wake_to_run_p50_us: window.quantile_us(0.50),
                    wake_to_run_p99_us: window.quantile_us(0.99),
                },
            )
        })
        .collect();

    let mut nvme = BTreeMap::new();
    let mut nvme_total = None;
    if let Some(drives) = &p.nvme {
        let mut total = 0.0;
        for (name, d) in drives {
            let before = prev_proc.nvme.as_ref().and_then(|ds| ds.get(name));
            let delta = |cpu: usize| {
                let n = d.per_cpu.get(cpu).copied().unwrap_or(0);
                let t = before
                    .and_then(|b| b.per_cpu.get(cpu))
                    .copied()
                    .unwrap_or(0);
                n.saturating_sub(t)
            };
            let per_cpu: Vec<u64> = (0..d.per_cpu.len()).map(delta).collect();
            let sum: u64 = per_cpu.iter().sum();
            let llc_irqs = (0..topo.nr_llcs())
                .map(|llc| {
                    let n: u64 = topo
                        .llc_cpus(llc)
                        .iter()
                        .filter_map(|&c| per_cpu.get(c as usize))
                        .sum();
                    per_sec(n, 0, proc_secs)
                })
                .collect();
            let irqs_per_sec = per_sec(sum, 0, proc_secs);
            total += irqs_per_sec;
            nvme.insert(
                name.clone(),
                NvmeDriveStats {
                    queues: d.queues,
                    irqs_per_sec,
                    cpus_serving: per_cpu.iter().filter(|&&n| n > 0).count() as u64,
                    llc_irqs_per_sec: llc_irqs,
                },
            );
        }
        nvme_total = Some(total);
    }

    let daemon_pct = |now: Option<u64>, then: Option<u64>| {
        let (n, t) = (now?, then?);
        (proc_secs > 0.0).then(|| round1(n.saturating_sub(t) as f64 / 1e9 / proc_secs * 100.0))
    };
    let (d, pd) = (p.daemon, prev_proc.daemon);

    StorelandStats {
        scheduler: SCHEDULER_NAME.to_string(),
        version: version.to_string(),
        interval_s: round3(secs),
        uptime_s: round3(s.taken_at_ns.saturating_sub(s.attached_at_ns) as f64 / 1e9),
        restarts: s.restarts,
        last_restart_reason: s.last_restart_reason.clone(),
        nr_cpus: topo.nr_cpus() as u64,
        nr_llcs: topo.nr_llcs() as u64,
        nr_numa_nodes: topo.nr_nodes() as u64,
        smt_threads_per_core: u64::from(topo.threads_per_core()),
        user_dispatches_per_sec: rate(now.user_dispatches, then.user_dispatches),
        fastpath_dispatches_per_sec: rate(now.fastpath_dispatches(), then.fastpath_dispatches()),
        fastpath_idle_per_sec: rate(now.fastpath_idle, then.fastpath_idle),
        fastpath_kthread_per_sec: rate(now.fastpath_kthread, then.fastpath_kthread),
        fastpath_self_per_sec: rate(now.fastpath_self, then.fastpath_self),
        fastpath_latcrit_per_sec: rate(now.fastpath_latcrit, then.fastpath_latcrit),
        fastpath_interactive_per_sec: rate(now.fastpath_interactive, then.fastpath_interactive),
        fastpath_requeue_per_sec: rate(now.fastpath_requeue, then.fastpath_requeue),
        fastpath_io_batch_per_sec: rate(now.fastpath_io_batch, then.fastpath_io_batch),
        requeued_per_sec: rate(now.requeued, then.requeued),
        queued_to_user_per_sec: rate(now.queued_to_user, then.queued_to_user),
        congestion_fallbacks_per_sec: rate(now.congestion_fallbacks(), then.congestion_fallbacks()),
        congested_ring_full_per_sec: rate(now.congested_ring_full, then.congested_ring_full),
        congested_late_per_sec: rate(now.congested_late, then.congested_late),
        stale_dropped_per_sec: rate(now.stale_dropped, then.stale_dropped),
        affinity_redirects_per_sec: rate(now.affinity_redirects, then.affinity_redirects),
        llc_steals_per_sec: rate(now.llc_steals, then.llc_steals),
        usersched_runs_per_sec: rate(now.usersched_runs, then.usersched_runs),
        user_dispatch_share_pct: (placed > 0).then(|| round1(pct(user, placed))),
        ring_queued_tasks: ring.queued_tasks,
        ring_fill_pct: round1(pct(ring.queued_tasks, ring.capacity_tasks)),
        ring_drain_batch_avg: (drains > 0).then(|| round1(drained as f64 / drains as f64)),
        ring_drain_batch_max: ring.drain_batch_max,
        decisions_pending: ring.decisions_pending,
        decisions_deferred_per_sec: rate(ring.decisions_deferred, pring.decisions_deferred),
        cross_llc_migrations_per_sec: opt_rate(
            s.cross_llc_migrations,
            prev.and_then(|ps| ps.cross_llc_migrations),
        ),
        wakeups_on_waker_llc_pct: locality.map(round1),
        preemptions_per_sec: rate(now.preemptions, then.preemptions),
        irq_wakeups_per_sec: rate(now.irq_wakeups, then.irq_wakeups),
        hog_turns_cut_per_sec: rate(now.hog_turns_cut, then.hog_turns_cut),
        idle_core_picks_per_sec: rate(now.idle_core_picks, then.idle_core_picks),
        sync_wakeups_pulled_per_sec: rate(now.sync_wakeups_pulled, then.sync_wakeups_pulled),
        irq_wakeups_pulled_per_sec: rate(now.irq_wakeups_pulled, then.irq_wakeups_pulled),
        irq_idle_kept_per_sec: rate(now.irq_idle_kept, then.irq_idle_kept),
        hog_spreads_per_sec: rate(now.hog_spreads, then.hog_spreads),
        half_core_wakeups_per_sec: rate(now.half_core_wakeups, then.half_core_wakeups),
        held_cpu_kept_per_sec: rate(now.held_cpu_kept, then.held_cpu_kept),
        starvation_rescues_per_sec: rate(now.starvation_rescues, then.starvation_rescues),
        daemon_loop_cpu_pct: daemon_pct(
            d.and_then(|d| d.loop_cpu_ns),
            pd.and_then(|d| d.loop_cpu_ns),
        ),
        daemon_cpu_pct: daemon_pct(d.map(|d| d.process_cpu_ns), pd.map(|d| d.process_cpu_ns)),
        daemon_major_faults: d.map(|d| d.major_faults),
        cpu_util_pct: round1(pct(all.busy, all.total)),
        irq_pct: round1(pct(all.irq, all.total)),
        iowait_pct: round1(pct(all.iowait, all.total)),
        nvme_irqs_per_sec: nvme_total,
        llcs,
        classes,
        nvme,
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intf::cpu_counters;
    use crate::stats::procfs::DriveIrqs;
    use crate::stats::sample::{RingSample, WakeLocality};
    use crate::topology::CcxTopology;

    const SEC: u64 = 1_000_000_000;

    fn slot(user: u64, idle: u64, steals: u64) -> cpu_counters {
        // SAFETY: plain integers; all-zero is valid.
        let mut c: cpu_counters = unsafe { std::mem::zeroed() };
        c.user_dispatches = user;
        c.fastpath_idle = idle;
        c.llc_steals = steals;
        c
    }

    fn topo() -> CcxTopology {
        CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap()
    }

    fn sched(at: u64, user: u64) -> SchedSample {
        let per_cpu = vec![
            slot(user, 10, 0),
            slot(0, 0, 0),
            slot(0, 0, 4),
            slot(0, 0, 0),
        ];
        let ring = RingSample {
            queued_tasks: 2048,
            capacity_tasks: 8192,
            tasks_drained: user,
            drains_nonempty: user / 4,
            drain_batch_max: 9,
            ..Default::default()
        };
        SchedSample::new(at, SEC, topo(), per_cpu, ring)
    }

    fn cpu(busy: u64, total: u64) -> Option<CpuTimes> {
        Some(CpuTimes {
            busy,
            irq: busy / 10,
            iowait: 0,
            total,
        })
    }

    fn proc(at: u64, busy: u64, irqs: u64) -> ProcSample {
        let total = if at == SEC { 0 } else { 1000 };
        let drive = DriveIrqs {
            queues: 3,
            per_cpu: vec![irqs, 0, irqs * 3, 0],
        };
        ProcSample {
            taken_at_ns: at,
            cpus: vec![
                cpu(busy, total),
                cpu(0, total),
                cpu(busy, total),
                cpu(busy, total),
            ],
            nvme: Some([("nvme0".to_string(), drive)].into()),
            daemon: None,
        }
    }

    fn reading(sched: SchedSample, proc: ProcSample) -> Arc<Reading> {
        Arc::new(Reading { sched, proc })
    }

    #[test]
    fn first_stats_cover_the_time_since_attach_then_each_window() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        let s = c.update(reading(sched(3 * SEC, 400), proc(3 * SEC, 500, 100)));
        assert_eq!(s.scheduler, SCHEDULER_NAME);
        assert_eq!(s.interval_s, 2.0);
        assert_eq!(s.uptime_s, 2.0);
        assert_eq!(s.user_dispatches_per_sec, 200.0);
        assert_eq!(s.fastpath_dispatches_per_sec, 5.0);
        // 400 user out of 410 placements.
        assert_eq!(s.user_dispatch_share_pct, Some(97.6));
        assert_eq!(s.ring_fill_pct, 25.0);
        assert_eq!(s.ring_drain_batch_avg, Some(4.0));

        let s = c.update(reading(sched(4 * SEC, 1400), proc(4 * SEC, 500, 100)));
        assert_eq!(s.interval_s, 1.0);
        assert_eq!(s.user_dispatches_per_sec, 1000.0);
        assert_eq!(s.fastpath_dispatches_per_sec, 0.0);
        assert_eq!(s.llcs[&0].util_pct, 0.0, "no /proc/stat progress");
    }

    #[test]
    fn per_llc_numbers_follow_the_topology() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        let s = c.update(reading(sched(2 * SEC, 10), proc(2 * SEC, 500, 100)));
        assert_eq!(s.nr_llcs, 2);
        assert_eq!((s.nr_numa_nodes, s.smt_threads_per_core), (1, 1));
        assert_eq!(s.llcs.len(), 2);
        let (l0, l1) = (&s.llcs[&0], &s.llcs[&1]);
        assert_eq!(l0.cpus, vec![0, 1]);
        assert_eq!(l1.cpus, vec![2, 3]);
        assert_eq!(l0.cpu_util_pct, vec![50.0, 0.0]);
        assert_eq!(l0.util_pct, 25.0);
        assert_eq!(l1.util_pct, 50.0);
        assert_eq!(l1.irq_pct, 5.0);
        assert_eq!(l0.steals_per_sec, 0.0);
        assert_eq!(l1.steals_per_sec, 4.0);
        assert_eq!(l0.nvme_irqs_per_sec, Some(100.0));
        assert_eq!(l1.nvme_irqs_per_sec, Some(300.0));
        assert_eq!(s.cpu_util_pct, 37.5);
        let d = &s.nvme["nvme0"];
        assert_eq!((d.queues, d.irqs_per_sec, d.cpus_serving), (3, 400.0, 2));
        assert_eq!(d.llc_irqs_per_sec, vec![100.0, 300.0]);
        assert_eq!(s.nvme_irqs_per_sec, Some(400.0));
    }

    #[test]
    fn what_has_no_source_stays_absent() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        let mut p = proc(2 * SEC, 10, 10);
        p.nvme = None;
        let s = c.update(reading(sched(2 * SEC, 10), p));
        assert_eq!(s.cross_llc_migrations_per_sec, None);
        assert_eq!(s.wakeups_on_waker_llc_pct, None);
        for c in s.classes.values() {
            assert_eq!(c.wake_to_run_p50_us, None, "no wake-ups, no latency");
        }
        assert_eq!(s.nvme_irqs_per_sec, None);
        assert!(s.nvme.is_empty());
        assert_eq!(s.daemon_cpu_pct, None);
        for l in s.llcs.values() {
            assert_eq!(l.runnable, None);
            assert_eq!(l.queue_wait_p99_us, None);
            assert_eq!(l.nvme_irqs_per_sec, None);
        }
    }

    #[test]
    fn policy_sources_become_rates_and_percentiles() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        let with = |at: u64, n: u64| {
            let mut s = sched(at, 0);
            s.per_cpu[1].preemptions = n;
            s.per_cpu[1].requeued = n / 4;
            s.per_cpu[2].fastpath_latcrit = n;
            s.per_cpu[3].fastpath_interactive = n / 2;
            s.per_cpu[0].irq_wakeups = n * 2;
            s.per_cpu[2].hog_turns_cut = n / 10;
            s.per_cpu[3].idle_core_picks = n / 20;
            s.per_cpu[0].held_cpu_kept = n / 40;
            s.per_cpu[1].starvation_rescues = n / 100;
            s.per_cpu[2].fastpath_io_batch = n / 4;
            s.per_cpu[3].sync_wakeups_pulled = n / 5;
            s.per_cpu[2].irq_wakeups_pulled = n / 4;
            s.per_cpu[1].irq_idle_kept = n / 10;
            s.per_cpu[2].hog_spreads = n / 50;
            s.per_cpu[3].half_core_wakeups = n / 25;
            // Latency-critical wake-ups: all in [3, 7) us on CPU 1, none for batch.
            s.per_cpu[1].wake_lat[TaskClass::LatencyCritical as usize][2] = n;
            s.cross_llc_migrations = Some(n / 2);
            s.wakeups_on_waker_llc = Some(WakeLocality {
                kept: n * 3 / 4,
                total: n,
            });
            s.llc_runnable = Some(vec![3, 1]);
            let mut h = Log2Histogram::default();
            for _ in 0..n {
                h.record(3000);
            }
            s.llc_queue_wait = Some(vec![h, Log2Histogram::default()]);
            s
        };
        c.update(reading(with(2 * SEC, 100), proc(2 * SEC, 0, 0)));
        let s = c.update(reading(with(3 * SEC, 300), proc(3 * SEC, 0, 0)));
        assert_eq!(s.preemptions_per_sec, 200.0);
        assert_eq!(s.requeued_per_sec, 50.0);
        assert_eq!(s.fastpath_latcrit_per_sec, 200.0);
        assert_eq!(s.fastpath_interactive_per_sec, 100.0);
        assert_eq!(s.irq_wakeups_per_sec, 400.0);
        assert_eq!(s.hog_turns_cut_per_sec, 20.0);
        assert_eq!(s.idle_core_picks_per_sec, 10.0);
        assert_eq!(s.held_cpu_kept_per_sec, 5.0);
        assert_eq!(s.starvation_rescues_per_sec, 2.0);
        assert_eq!(s.fastpath_io_batch_per_sec, 50.0);
        assert_eq!(s.sync_wakeups_pulled_per_sec, 40.0);
        assert_eq!(s.irq_wakeups_pulled_per_sec, 50.0);
        assert_eq!(s.irq_idle_kept_per_sec, 20.0);
        assert_eq!(s.hog_spreads_per_sec, 4.0);
        assert_eq!(s.half_core_wakeups_per_sec, 8.0);
        assert_eq!(s.cross_llc_migrations_per_sec, Some(100.0));
        assert_eq!(s.wakeups_on_waker_llc_pct, Some(75.0));
        assert_eq!(s.llcs[&0].runnable, Some(3));
        assert_eq!(
            s.llcs[&0].queue_wait_p50_us,
            Some(4095.0),
            "[2047, 4095) us"
        );
        assert_eq!(s.llcs[&1].queue_wait_p50_us, None, "no waits in the window");
        assert_eq!(
            s.classes.keys().collect::<Vec<_>>(),
            ["batch", "interactive", "latency_critical"]
        );
        let lc = &s.classes["latency_critical"];
        assert_eq!(lc.wakeups_per_sec, 200.0);
        assert_eq!(lc.wake_to_run_p50_us, Some(7.0));
        assert_eq!(lc.wake_to_run_p99_us, Some(7.0));
        assert_eq!(s.classes["batch"].wake_to_run_p99_us, None);
    }

    #[test]
    fn a_restart_starts_the_counters_again() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        c.update(reading(sched(10 * SEC, 5000), proc(10 * SEC, 0, 0)));
        let mut after = sched(12 * SEC, 100);
        after.restarts = 1;
        after.attached_at_ns = 11 * SEC;
        after.last_restart_reason = Some("hotplug".into());
        let s = c.update(reading(after, proc(12 * SEC, 0, 0)));
        assert_eq!(s.restarts, 1);
        assert_eq!(s.interval_s, 1.0, "since the re-attach");
        assert_eq!(
            s.user_dispatches_per_sec, 100.0,
            "not 0 from a negative delta"
        );
        assert_eq!(s.last_restart_reason.as_deref(), Some("hotplug"));
    }

    #[test]
    fn the_same_reading_again_gives_the_same_stats() {
        let mut c = Collector::new("v", proc(SEC, 0, 0));
        let first = reading(sched(3 * SEC, 400), proc(3 * SEC, 500, 100));
        let s = c.update(first.clone());
        assert_eq!(s.user_dispatches_per_sec, 200.0);
        assert_eq!(c.update(first), s, "not rates over no time");
        // A newer reading is a window since the last one.
        let s = c.update(reading(sched(4 * SEC, 1400), proc(4 * SEC, 500, 100)));
        assert_eq!(s.user_dispatches_per_sec, 1000.0);
    }
}
