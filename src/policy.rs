//! The scheduling policy: what user space decides for every task BPF hands
//! it. Plain Rust with no kernel types, so it can be unit-tested, simulated
//! and benchmarked on any host.
//!
//! This first policy is weighted virtual-time deadlines with a bounded slice:
//! - BPF keeps each task's `vtime` (runtime scaled by 100/weight) and the
//!   runtime since it last woke up;
//! - deadline = vtime + (runtime since wake-up, capped) scaled by 100/weight,
//!   so a task that sleeps often (an NVMe submitter, a database thread) gets
//!   an earlier deadline than a CPU hog with the same vtime;
//! - the slice grows with the weight and stays within [slice_min, slice_max];
//! - the task waits in the queue of the CCX it last ran on, so it keeps its
//!   L3; BPF starts it on an idle CPU of that CCX if there is one.

use anyhow::{ensure, Result};

use crate::topology::CcxTopology;

/// Weight of a nice-0 task (the kernel's sched_ext scale is 1..10000).
pub const NICE0_WEIGHT: u64 = 100;
const MAX_WEIGHT: u64 = 10_000;

/// What BPF observed about a task that needs a CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskObservation {
    pub pid: i32,
    /// Identifies this enqueue; the decision must echo it.
    pub enq_seq: u64,
    /// CPU the task last ran on.
    pub prev_cpu: i32,
    pub nr_cpus_allowed: u32,
    /// This enqueue is a wake-up, not a preemption or slice expiry.
    pub woke_up: bool,
    /// The task's last sleep was an I/O wait.
    pub slept_in_iowait: bool,
    pub kthread: bool,
    /// Weighted virtual runtime (ns scaled by 100/weight).
    pub vtime: u64,
    /// Runtime since the task last woke up, ns.
    pub exec_runtime: u64,
    /// 1..10000, 100 = nice 0.
    pub weight: u32,
}

/// Where and how a task runs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub pid: i32,
    pub enq_seq: u64,
    /// A specific CPU, used only if it is idle when BPF applies the decision.
    pub cpu: Option<u32>,
    /// The LLC (CCX) queue to wait in; None lets BPF use the task's current one.
    pub llc: Option<usize>,
    pub slice_ns: u64,
    /// Position in the LLC queue (earliest first), on the vtime clock.
    pub deadline: u64,
}

/// Tunables of the policy, in nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Slice of a nice-0 task.
    pub slice_ns: u64,
    pub slice_min_ns: u64,
    pub slice_max_ns: u64,
    /// Largest runtime-since-wake-up that still pushes a deadline back.
    pub max_lag_ns: u64,
}

impl PolicyConfig {
    /// Derive the bounds from the nice-0 slice.
    pub fn from_slice(slice_ns: u64) -> Result<Self> {
        let cfg = Self {
            slice_ns,
            slice_min_ns: (slice_ns / 8).max(50_000),
            slice_max_ns: slice_ns.saturating_mul(4),
            max_lag_ns: slice_ns.saturating_mul(20),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(self.slice_ns > 0, "the slice must be positive");
        ensure!(
            self.slice_min_ns <= self.slice_ns && self.slice_ns <= self.slice_max_ns,
            "slice bounds must satisfy min <= slice <= max"
        );
        Ok(())
    }
}

/// The policy: pure function of its config, the topology and one task.
pub struct Policy {
    cfg: PolicyConfig,
    topo: CcxTopology,
}

impl Policy {
    pub fn new(cfg: PolicyConfig, topo: CcxTopology) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg, topo })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    pub fn topology(&self) -> &CcxTopology {
        &self.topo
    }

    /// Decide deadline, slice and CCX for one queued task.
    pub fn decide(&self, task: &TaskObservation) -> Decision {
        let weight = u64::from(task.weight).clamp(1, MAX_WEIGHT);
        let lag = task.exec_runtime.min(self.cfg.max_lag_ns) * NICE0_WEIGHT / weight;
        let slice = (self.cfg.slice_ns.saturating_mul(weight) / NICE0_WEIGHT)
            .clamp(self.cfg.slice_min_ns, self.cfg.slice_max_ns);

        Decision {
            pid: task.pid,
            enq_seq: task.enq_seq,
            cpu: None,
            llc: self.topo.llc_of(task.prev_cpu),
            slice_ns: slice,
            deadline: task.vtime.saturating_add(lag),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn policy() -> Policy {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
        Policy::new(PolicyConfig::from_slice(5 * MS).unwrap(), topo).unwrap()
    }

    fn task(pid: i32, vtime: u64, exec_runtime: u64, weight: u32) -> TaskObservation {
        TaskObservation {
            pid,
            enq_seq: 7,
            prev_cpu: 2,
            nr_cpus_allowed: 4,
            vtime,
            exec_runtime,
            weight,
            ..Default::default()
        }
    }

    #[test]
    fn a_frequent_sleeper_goes_before_a_hog_with_the_same_vtime() {
        let p = policy();
        let sleeper = p.decide(&task(1, 100 * MS, 50_000, 100));
        let hog = p.decide(&task(2, 100 * MS, 40 * MS, 100));
        assert!(sleeper.deadline < hog.deadline);
    }

    #[test]
    fn heavier_tasks_get_earlier_deadlines_and_longer_slices() {
        let p = policy();
        let light = p.decide(&task(1, 0, 10 * MS, 50));
        let normal = p.decide(&task(2, 0, 10 * MS, 100));
        let heavy = p.decide(&task(3, 0, 10 * MS, 400));
        assert!(heavy.deadline < normal.deadline && normal.deadline < light.deadline);
        assert!(heavy.slice_ns > normal.slice_ns && normal.slice_ns > light.slice_ns);
        assert_eq!(normal.slice_ns, 5 * MS);
    }

    #[test]
    fn slices_stay_within_bounds_for_every_weight() {
        let p = policy();
        let cfg = p.config().clone();
        for weight in [0, 1, 2, 15, 100, 1024, 8876, 10_000, u32::MAX] {
            let d = p.decide(&task(1, 0, 0, weight));
            assert!(
                (cfg.slice_min_ns..=cfg.slice_max_ns).contains(&d.slice_ns),
                "weight {weight}: slice {}",
                d.slice_ns
            );
        }
    }

    #[test]
    fn the_lag_a_hog_accumulates_is_bounded() {
        let p = policy();
        let max_lag = p.config().max_lag_ns;
        let d = p.decide(&task(1, 1000 * MS, u64::MAX / 2, 100));
        assert_eq!(d.deadline, 1000 * MS + max_lag);
        let saturated = p.decide(&task(1, u64::MAX - 1, u64::MAX, 1));
        assert_eq!(
            saturated.deadline,
            u64::MAX,
            "no overflow at the end of the clock"
        );
    }

    #[test]
    fn tasks_wait_on_the_ccx_they_last_ran_on() {
        let p = policy();
        let mut t = task(9, 0, 0, 100);
        for (cpu, llc) in [
            (0, Some(0)),
            (1, Some(0)),
            (2, Some(1)),
            (3, Some(1)),
            (4, None),
            (-1, None),
        ] {
            t.prev_cpu = cpu;
            assert_eq!(p.decide(&t).llc, llc, "prev_cpu {cpu}");
        }
    }

    #[test]
    fn decisions_echo_the_task_identity() {
        let d = policy().decide(&task(4242, 0, 0, 100));
        assert_eq!((d.pid, d.enq_seq, d.cpu), (4242, 7, None));
    }

    #[test]
    fn config_rejects_a_zero_slice() {
        assert!(PolicyConfig::from_slice(0).is_err());
        let mut cfg = PolicyConfig::from_slice(MS).unwrap();
        cfg.slice_min_ns = 2 * MS;
        assert!(cfg.validate().is_err());
    }
}
