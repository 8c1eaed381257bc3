//! How fast the user-space policy decides: decisions per second and cost per
//! decision, for a Genoa-sized topology, with and without the conversion to
//! the ring-buffer record. Run: `cargo bench --bench policy`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use storeland::intf::dispatch_decision;
use storeland::policy::{LoadView, Policy, PolicyConfig, TaskObservation};
use storeland::topology::CcxTopology;

/// 12 CCXs of 8 cores with SMT: one EPYC 9654.
fn genoa() -> CcxTopology {
    let llcs = (0..12u32)
        .map(|c| (c * 8..c * 8 + 8).chain(c * 8 + 96..c * 8 + 104).collect())
        .collect();
    CcxTopology::new(llcs).unwrap()
}

/// A batch as the ring would deliver it: a mix of I/O waiters, interactive
/// tasks and hogs spread over all CPUs.
fn batch(n: usize) -> Vec<TaskObservation> {
    (0..n)
        .map(|i| {
            let kind = i % 3;
            TaskObservation {
                pid: 1000 + i as i32,
                enq_seq: i as u64 + 1,
                prev_cpu: (i * 7 % 192) as i32,
                waker_cpu: (i * 11 % 192) as i32,
                nr_cpus_allowed: 192,
                woke_up: kind != 2,
                irq_wake: kind == 0,
                slept_in_iowait: kind == 0,
                kthread: false,
                vtime: 1_000_000_000 + (i as u64) * 1_000,
                exec_runtime: [20_000, 400_000, 9_000_000][kind],
                avg_runtime: [20_000, 400_000, 9_000_000][kind],
                weight: [100, 100, 50][kind],
                ..Default::default()
            }
        })
        .collect()
}

fn measure(name: &str, decisions_per_round: usize, mut round: impl FnMut()) {
    // Warm up, then run rounds for about a second.
    for _ in 0..10 {
        round();
    }
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        round();
        rounds += 1;
    }
    let elapsed = start.elapsed();
    let decisions = rounds * decisions_per_round as u64;
    let ns_each = elapsed.as_nanos() as f64 / decisions as f64;
    println!(
        "{name:<40} {:>12.0} decisions/s {:>8.1} ns/decision ({decisions} decisions)",
        decisions as f64 / elapsed.as_secs_f64(),
        ns_each
    );
}

fn main() {
    let policy = Policy::new(PolicyConfig::from_slice(5_000_000).unwrap(), genoa()).unwrap();
    let load = LoadView {
        llc_queued: (0..12).map(|i| i % 4).collect(),
    };
    for n in [1, 64, 4096] {
        let tasks = batch(n);
        measure(&format!("decide, batches of {n}"), n, || {
            for t in &tasks {
                black_box(policy.decide(black_box(t), &load));
            }
        });
    }
    let tasks = batch(4096);
    let mut out: Vec<dispatch_decision> = Vec::with_capacity(4096);
    measure("decide + ring record, batches of 4096", 4096, || {
        out.clear();
        out.extend(
            tasks
                .iter()
                .map(|t| dispatch_decision::from(&policy.decide(t, &load))),
        );
        black_box(&out);
    });
}
