//! The scheduling policy: what user space decides for every task BPF hands
//! it. Plain Rust with no kernel types, so it can be unit-tested, simulated
//! (`crate::sim`) and benchmarked on any host.
//!
//! Each task is put in one of three classes, recomputed every time BPF
//! hands it over:
//! - **latency-critical**: it last slept waiting for I/O, or an interrupt
//!   (an NVMe completion) woke it, and it runs briefly per wake-up. It gets
//!   the earliest deadline, a short slice, and it preempts batch work when
//!   its CCX has no idle CPU;
//! - **interactive**: it sleeps often and runs briefly, but not for I/O. It
//!   waits in deadline order ahead of batch work but preempts nothing:
//!   message-passing tasks (hackbench) that preempted the senders they
//!   raced with switched 40 times as often and ran 10 times slower;
//! - **batch**: it uses whole slices (compression, checksums, builds). It
//!   gets long slices and the latest deadlines, and it is what gets
//!   preempted.
//!
//! BPF caches each task's class, applies [`Policy::classify`]'s rule again as
//! a task wakes, and places the wake-ups of latency-critical and interactive
//! tasks (and of batch work woken from I/O) itself; user space reviews every
//! few of them without the task waiting for the answer
//! (`TaskObservation::placed`).
//!
//! The deadline is the task's weighted vtime (kept by BPF), plus a class
//! offset, plus its runtime since waking (capped) scaled by 100/weight. The
//! offsets and the cap are bounded, so no task can be passed over forever:
//! see `PolicyConfig::max_deadline_offset_ns`.
//!
//! Placement keeps locality first. A task waits in the CCX where it last
//! ran; a latency-critical task woken by an interrupt waits in the CCX that
//! took the interrupt, where its completions arrive. A batch task moves to
//! the least-loaded CCX only when its own CCX has `balance_hysteresis` more
//! waiting tasks than that one; to a CCX of another NUMA node (NPS2/NPS4)
//! only at twice that, since its memory stays behind.
//!
//! CPU hogs spread out as they run: one whose slice ends with nothing else
//! waiting for its CPU moves to a CCX with an idle CPU and
//! `balance_hysteresis` fewer hogs than its own (twice that in another
//! NUMA node), and with SMT, off a core that runs another hog to a whole
//! idle core ([`Policy::hog_spread_target`]).
//! Nothing waits in a queue in that case, so the queue-length balance above
//! never sees it: forked side by side, hogs stayed two to a core (and up to
//! a whole CCX) while other cores and CCXs idled.

use anyhow::{ensure, Result};

use crate::topology::CcxTopology;

/// One LLC as a CPU hog at the end of its slice sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LlcLoad {
    /// Its CPUs that run a CPU hog.
    pub hogs: u32,
    /// Whether one of its CPUs runs nothing.
    pub idle_cpu: bool,
    /// Whether one of its cores runs nothing on any of its hardware
    /// threads (SMT on only).
    pub idle_core: bool,
}

/// Weight of a nice-0 task (the kernel's sched_ext scale is 1..10000).
pub const NICE0_WEIGHT: u64 = 100;
const MAX_WEIGHT: u64 = 10_000;

/// What a task is, as far as scheduling goes. The values match
/// `enum storeland_class` in `src/bpf/intf.h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskClass {
    #[default]
    Interactive = 0,
    LatencyCritical = 1,
    Batch = 2,
}

impl TaskClass {
    pub const ALL: [TaskClass; 3] = [
        TaskClass::LatencyCritical,
        TaskClass::Interactive,
        TaskClass::Batch,
    ];

    pub fn from_raw(raw: u32) -> Self {
        match raw {
            1 => TaskClass::LatencyCritical,
            2 => TaskClass::Batch,
            _ => TaskClass::Interactive,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TaskClass::LatencyCritical => "latency_critical",
            TaskClass::Interactive => "interactive",
            TaskClass::Batch => "batch",
        }
    }
}

/// What BPF observed about a task that needs a CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskObservation {
    pub pid: i32,
    /// Identifies this enqueue; the decision must echo it.
    pub enq_seq: u64,
    /// CPU the task last ran on.
    pub prev_cpu: i32,
    /// CPU that woke it, or -1.
    pub waker_cpu: i32,
    pub nr_cpus_allowed: u32,
    /// This enqueue is a wake-up, not a preemption or slice expiry.
    pub woke_up: bool,
    /// The wake-up came from IRQ context (e.g. an NVMe completion).
    pub irq_wake: bool,
    /// The task's last sleep was an I/O wait.
    pub slept_in_iowait: bool,
    pub kthread: bool,
    /// BPF placed the task itself; only its class is to be reviewed.
    pub placed: bool,
    /// Weighted virtual runtime (ns scaled by 100/weight).
    pub vtime: u64,
    /// Runtime since the task last woke up, ns.
    pub exec_runtime: u64,
    /// Moving average of the runtime per wake-up, ns.
    pub avg_runtime: u64,
    /// 1..10000, 100 = nice 0.
    pub weight: u32,
    /// The class BPF currently holds for the task.
    pub cached_class: TaskClass,
}

impl TaskObservation {
    /// Its last sleep was an I/O wait, or an interrupt woke it: what makes
    /// a short task latency-critical, and batch work I/O batch work.
    pub fn woken_from_io(&self) -> bool {
        self.slept_in_iowait || self.irq_wake
    }
}

/// Where and how a task runs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub pid: i32,
    pub enq_seq: u64,
    /// A specific CPU, used only if it is idle when BPF applies the decision.
    pub cpu: Option<u32>,
    /// The LLC (CCX) to wait in; None lets BPF use the task's current one.
    pub llc: Option<usize>,
    pub slice_ns: u64,
    /// Position in its CPU queue (earliest first), on the vtime clock.
    pub deadline: u64,
    pub class: TaskClass,
    /// Preempt batch work if no CPU of the target CCX is idle.
    pub preempt: bool,
    /// Only the class counts: BPF placed the task already (a review).
    pub class_only: bool,
}

/// How many tasks wait in each LLC's queues (BPF's latest view).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadView {
    pub llc_queued: Vec<u32>,
}

impl LoadView {
    /// Refill from the CPUs' queue lengths: an LLC waits what its CPUs'
    /// queues hold together. The loader reads them from BPF, the simulator
    /// from its own queues.
    pub fn fill_from_cpu_queues(&mut self, topo: &CcxTopology, queued: impl Fn(u32) -> u32) {
        self.llc_queued.clear();
        self.llc_queued.extend((0..topo.nr_llcs()).map(|llc| {
            topo.llc_cpus(llc)
                .iter()
                .map(|&cpu| queued(cpu))
                .sum::<u32>()
        }));
    }

    fn queued(&self, llc: usize) -> u32 {
        self.llc_queued.get(llc).copied().unwrap_or(0)
    }
}

/// Tunables of the policy, in nanoseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Slice of a nice-0 interactive task.
    pub slice_ns: u64,
    pub slice_min_ns: u64,
    pub slice_max_ns: u64,
    /// Slice of a latency-critical task.
    pub latcrit_slice_ns: u64,
    /// Largest runtime per wake-up of a latency-critical task.
    pub latcrit_max_runtime_ns: u64,
    /// Largest runtime per wake-up of an interactive task.
    pub interactive_max_runtime_ns: u64,
    /// Largest runtime per wake-up of batch work woken from I/O that BPF
    /// still places itself on a wake-up, as it does interactive work.
    pub io_batch_max_runtime_ns: u64,
    /// Largest runtime-since-wake-up that still pushes a deadline back.
    pub max_lag_ns: u64,
    /// Credit a waking task keeps against the fairness clock.
    pub sleep_credit_ns: u64,
    /// The most a waking task's credit grows to stay level with the task
    /// running where it queues (see `Policy::wake_vtime_floor`).
    pub max_wake_credit_ns: u64,
    /// Extra waiting tasks a CCX must have before a batch task leaves it.
    pub balance_hysteresis: u32,
}

impl PolicyConfig {
    /// Derive everything from the nice-0 slice.
    pub fn from_slice(slice_ns: u64) -> Result<Self> {
        let cfg = Self {
            slice_ns,
            slice_min_ns: (slice_ns / 8).max(50_000),
            slice_max_ns: slice_ns.saturating_mul(4),
            latcrit_slice_ns: (slice_ns / 5).max(50_000),
            latcrit_max_runtime_ns: (slice_ns / 5).max(50_000),
            interactive_max_runtime_ns: slice_ns / 2,
            io_batch_max_runtime_ns: slice_ns.saturating_mul(4),
            max_lag_ns: slice_ns.saturating_mul(20),
            sleep_credit_ns: slice_ns,
            max_wake_credit_ns: slice_ns.saturating_mul(200),
            balance_hysteresis: 2,
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
        ensure!(
            (self.slice_min_ns..=self.slice_max_ns).contains(&self.latcrit_slice_ns),
            "the latency-critical slice must be within the slice bounds"
        );
        Ok(())
    }

    /// Deadline offset of a class: how far behind its vtime it queues.
    pub fn class_offset_ns(&self, class: TaskClass) -> u64 {
        match class {
            TaskClass::LatencyCritical => 0,
            TaskClass::Interactive => self.slice_ns / 2,
            TaskClass::Batch => self.slice_ns.saturating_mul(2),
        }
    }

    /// The most any deadline can sit past its task's vtime, whatever the
    /// task's class and weight. A queued task with vtime v is passed over
    /// only by tasks whose deadline is earlier, so by tasks whose vtime is
    /// below v + this bound: that is what keeps every wait finite.
    pub fn max_deadline_offset_ns(&self) -> u64 {
        self.class_offset_ns(TaskClass::Batch) + self.max_lag_ns
    }
}

/// The policy: a pure function of its config, the topology, the load and
/// one task.
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

    /// Which class the task is in now.
    pub fn classify(&self, t: &TaskObservation) -> TaskClass {
        // The current activation counts as soon as it runs long.
        let runtime = t.avg_runtime.max(t.exec_runtime);
        if t.woken_from_io() && runtime <= self.cfg.latcrit_max_runtime_ns {
            TaskClass::LatencyCritical
        } else if runtime <= self.cfg.interactive_max_runtime_ns {
            TaskClass::Interactive
        } else {
            TaskClass::Batch
        }
    }

    /// The least vtime a task keeps as it wakes (BPF's wake_vtime_floor()):
    /// `sleep_credit` behind the fairness clock `vtime_now` (the largest
    /// vtime of the tasks taken from the queues), or behind `running`, the
    /// vtime of the task running where it will queue, when that one is
    /// further behind (by at most `max_wake_credit`). The clock follows
    /// the whole machine (low-weight tasks in another CCX move it fast): a
    /// sleeper lifted to it could queue behind the hogs of its own CCX.
    pub fn wake_vtime_floor(&self, vtime_now: u64, running: Option<u64>) -> u64 {
        let reference = match running {
            Some(v) if v < vtime_now => {
                v.max(vtime_now.saturating_sub(self.cfg.max_wake_credit_ns))
            }
            _ => vtime_now,
        };
        reference.saturating_sub(self.cfg.sleep_credit_ns)
    }

    /// Position in a CPU queue: vtime, plus the class offset, plus the
    /// runtime since waking scaled by 100/weight, capped. BPF computes the
    /// same (`task_deadline()` in classify.bpf.h) when it places a task whose
    /// class it caches.
    pub fn deadline(&self, class: TaskClass, vtime: u64, exec_runtime: u64, weight: u32) -> u64 {
        let weight = u64::from(weight).clamp(1, MAX_WEIGHT);
        let lag = (exec_runtime.min(self.cfg.max_lag_ns) * NICE0_WEIGHT / weight)
            .min(self.cfg.max_lag_ns);
        vtime
            .saturating_add(self.cfg.class_offset_ns(class))
            .saturating_add(lag)
    }

    /// Nice-0 slice of a class, before weight scaling.
    pub fn class_slice_ns(&self, class: TaskClass) -> u64 {
        match class {
            TaskClass::LatencyCritical => self.cfg.latcrit_slice_ns,
            TaskClass::Interactive => self.cfg.slice_ns,
            TaskClass::Batch => self.cfg.slice_ns.saturating_mul(2),
        }
    }

    /// Slice of a task: its class's, scaled by weight, within the bounds.
    /// BPF computes the same (`task_slice()` in classify.bpf.h).
    pub fn slice(&self, class: TaskClass, weight: u32) -> u64 {
        let weight = u64::from(weight).clamp(1, MAX_WEIGHT);
        (self.class_slice_ns(class).saturating_mul(weight) / NICE0_WEIGHT)
            .clamp(self.cfg.slice_min_ns, self.cfg.slice_max_ns)
    }

    /// Whether a running CPU hog (it ran `max_lag` without sleeping or
    /// waking another task) ends its turn now. It queues as late as lag
    /// goes, so its slice decides only how long the tasks behind it wait:
    /// once it has run `slice_min` in this turn and the first task waiting
    /// in one of its CCX's queues (`first_waiter_is_hog`: None when nothing waits or
    /// the first waiter may not run on its CPU) is not a hog, it gives the
    /// CPU up; its share, set by vtime, does not change. While only hogs
    /// wait, hogs take turns a whole batch slice at a time: a `slice_min`
    /// slice for every hog turn cost the hogs 7-12% of their throughput in
    /// the VM. BPF checks this at each tick
    /// (`hog_turn_over()` in hogs.bpf.h). A producer that wakes its
    /// consumers is no hog: shorter turns for it cut their batches
    /// (hackbench 1.18x EEVDF).
    pub fn hog_turn_over(
        &self,
        cpu_hog: bool,
        turn_ns: u64,
        first_waiter_is_hog: Option<bool>,
    ) -> bool {
        cpu_hog && turn_ns >= self.cfg.slice_min_ns && first_waiter_is_hog == Some(false)
    }

    /// Where a CPU hog whose slice ran out, with nothing else waiting for
    /// its CPU, should move to, if anywhere. Load is counted in CPU hogs:
    /// the tasks that come and go (I/O threads, the shell) would make hogs
    /// move at their every run. The LLC with the fewest hogs, if that is at
    /// least `balance_hysteresis` fewer than in `llc` (twice that in another
    /// NUMA node; the first of the steal order among equals) and one of its
    /// CPUs is idle: the move cannot be undone by the same rule. Else, for a
    /// hog whose core runs another hog (`core_shared`), the LLC of a whole
    /// idle core: its own, or one with fewer hogs. The caller picks the CPU
    /// there, a whole idle core first. `load` is indexed by LLC; the hog
    /// itself counts in `load[llc]`.
    pub fn hog_spread_target(
        &self,
        llc: usize,
        core_shared: bool,
        load: &[LlcLoad],
    ) -> Option<usize> {
        let mine = *load.get(llc)?;
        let order = self.topo.steal_order(llc);
        // min_by_key keeps the first of equals: the steal order decides.
        let fewest = order
            .iter()
            .filter_map(|&other| load.get(other).map(|l| (other, l)))
            .filter(|(other, l)| {
                l.idle_cpu && l.hogs + self.balance_margin(llc, *other) <= mine.hogs
            })
            .min_by_key(|(_, l)| l.hogs);
        if let Some((other, _)) = fewest {
            return Some(other);
        }
        if !core_shared {
            return None;
        }
        if mine.idle_core {
            return Some(llc);
        }
        order.into_iter().find(|&other| {
            load.get(other)
                .is_some_and(|l| l.idle_core && l.hogs < mine.hogs)
        })
    }

    /// Decide class, deadline, slice and CCX for one queued task.
    pub fn decide(&self, task: &TaskObservation, load: &LoadView) -> Decision {
        let class = self.classify(task);
        let deadline = self.deadline(class, task.vtime, task.exec_runtime, task.weight);
        let slice = self.slice(class, task.weight);

        Decision {
            pid: task.pid,
            enq_seq: task.enq_seq,
            cpu: None,
            llc: self.place(task, class, load),
            slice_ns: slice,
            deadline,
            class,
            // An I/O task that woke should not wait for batch work's long
            // slice to run out. Only I/O: see the module comment.
            preempt: class == TaskClass::LatencyCritical && task.woke_up,
            class_only: task.placed,
        }
    }

    /// The CCX a task should wait in.
    fn place(&self, t: &TaskObservation, class: TaskClass, load: &LoadView) -> Option<usize> {
        let home = if class == TaskClass::LatencyCritical && t.irq_wake {
            self.topo
                .llc_of(t.waker_cpu)
                .or(self.topo.llc_of(t.prev_cpu))
        } else {
            self.topo.llc_of(t.prev_cpu)
        };
        let home = home?;
        if class != TaskClass::Batch || self.topo.nr_llcs() < 2 {
            return Some(home);
        }
        // Batch work leaves its CCX only for a clearly emptier one, and its
        // NUMA node only for a CCX emptier by twice as much.
        let queued = load.queued(home);
        let emptiest = |same_node: bool| {
            (0..self.topo.nr_llcs())
                .filter(|&llc| self.topo.same_node(home, llc) == same_node)
                .map(|llc| (llc, load.queued(llc)))
                .min_by_key(|&(llc, queued)| (queued, llc != home))
        };
        if let Some((llc, least)) = emptiest(true) {
            if queued > least + self.balance_margin(home, llc) {
                return Some(llc);
            }
        }
        match emptiest(false) {
            Some((llc, least)) if queued > least + self.balance_margin(home, llc) => Some(llc),
            _ => Some(home),
        }
    }

    /// How much more loaded `from` must be than `to` for work to move
    /// there: `balance_hysteresis`, twice that into another NUMA node,
    /// whose memory is farther from what the task left behind.
    fn balance_margin(&self, from: usize, to: usize) -> u32 {
        if self.topo.same_node(from, to) {
            self.cfg.balance_hysteresis
        } else {
            2 * self.cfg.balance_hysteresis
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;

    fn policy() -> Policy {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
        Policy::new(PolicyConfig::from_slice(5 * MS).unwrap(), topo).unwrap()
    }

    fn idle() -> LoadView {
        LoadView {
            llc_queued: vec![0, 0],
        }
    }

    #[test]
    fn an_llc_waits_what_its_cpus_queues_hold_together() {
        // CPUs numbered out of LLC order, as on a machine with SMT siblings.
        let topo = CcxTopology::new(vec![vec![0, 4, 1], vec![2, 3]]).unwrap();
        let mut load = LoadView {
            llc_queued: vec![9, 9, 9],
        };
        load.fill_from_cpu_queues(&topo, |cpu| [1, 2, 30, 40, 500][cpu as usize]);
        assert_eq!(load.llc_queued, vec![1 + 500 + 2, 30 + 40]);
        assert_eq!(
            (load.queued(0), load.queued(1), load.queued(2)),
            (503, 70, 0)
        );
    }

    fn task(pid: i32, vtime: u64, exec_runtime: u64, weight: u32) -> TaskObservation {
        TaskObservation {
            pid,
            enq_seq: 7,
            prev_cpu: 2,
            waker_cpu: -1,
            nr_cpus_allowed: 4,
            vtime,
            exec_runtime,
            avg_runtime: exec_runtime,
            weight,
            ..Default::default()
        }
    }

    fn io_task(pid: i32, vtime: u64) -> TaskObservation {
        TaskObservation {
            woke_up: true,
            slept_in_iowait: true,
            ..task(pid, vtime, 30 * US, 100)
        }
    }

    #[test]
    fn a_task_bpf_placed_itself_gets_a_class_only_review() {
        let p = policy();
        let placed = TaskObservation {
            placed: true,
            ..io_task(1, 0)
        };
        let review = p.decide(&placed, &idle());
        assert!(review.class_only);
        assert_eq!(review.class, TaskClass::LatencyCritical);
        let demoted = p.decide(
            &TaskObservation {
                placed: true,
                ..task(2, 0, 50 * MS, 100)
            },
            &idle(),
        );
        assert!(demoted.class_only && demoted.class == TaskClass::Batch);
        assert!(!p.decide(&io_task(3, 0), &idle()).class_only);
    }

    #[test]
    fn classes_follow_what_bpf_observed() {
        let p = policy();
        assert_eq!(p.classify(&io_task(1, 0)), TaskClass::LatencyCritical);
        let irq_woken = TaskObservation {
            irq_wake: true,
            ..task(2, 0, 50 * US, 100)
        };
        assert_eq!(p.classify(&irq_woken), TaskClass::LatencyCritical);
        assert_eq!(
            p.classify(&task(3, 0, 500 * US, 100)),
            TaskClass::Interactive
        );
        assert_eq!(p.classify(&task(4, 0, 12 * MS, 100)), TaskClass::Batch);
        // An I/O waiter that computes for long per wake-up is not latency-critical.
        let heavy_io = TaskObservation {
            slept_in_iowait: true,
            ..task(5, 0, 4 * MS, 100)
        };
        assert_eq!(p.classify(&heavy_io), TaskClass::Batch);
        // The current activation counts even if the average is short.
        let turned_hog = TaskObservation {
            avg_runtime: 10 * US,
            ..io_task(6, 0)
        };
        let turned_hog = TaskObservation {
            exec_runtime: 8 * MS,
            ..turned_hog
        };
        assert_eq!(p.classify(&turned_hog), TaskClass::Batch);
    }

    #[test]
    fn latency_critical_goes_first_with_a_short_slice_and_preempts() {
        let p = policy();
        let io = p.decide(&io_task(1, 100 * MS), &idle());
        let inter = p.decide(&task(2, 100 * MS, 500 * US, 100), &idle());
        let hog = p.decide(&task(3, 100 * MS, 40 * MS, 100), &idle());
        assert!(io.deadline < inter.deadline && inter.deadline < hog.deadline);
        assert!(io.slice_ns < inter.slice_ns && inter.slice_ns < hog.slice_ns);
        assert_eq!((io.class, io.preempt), (TaskClass::LatencyCritical, true));
        assert!(!hog.preempt, "batch work never preempts");
        assert!(!inter.preempt, "a slice expiry is not a wake-up");
        let woken = TaskObservation {
            woke_up: true,
            ..task(2, 100 * MS, 500 * US, 100)
        };
        let woken = p.decide(&woken, &idle());
        assert_eq!(woken.class, TaskClass::Interactive);
        assert!(!woken.preempt, "interactive wake-ups preempt nothing");
        assert_eq!(hog.class, TaskClass::Batch);
    }

    #[test]
    fn heavier_tasks_get_earlier_deadlines_and_longer_slices() {
        let p = policy();
        let light = p.decide(&task(1, 0, 10 * MS, 50), &idle());
        let normal = p.decide(&task(2, 0, 10 * MS, 100), &idle());
        let heavy = p.decide(&task(3, 0, 10 * MS, 400), &idle());
        assert!(heavy.deadline < normal.deadline && normal.deadline < light.deadline);
        assert!(heavy.slice_ns > normal.slice_ns && normal.slice_ns > light.slice_ns);
        assert_eq!(normal.slice_ns, 10 * MS, "batch: twice the nice-0 slice");
    }

    #[test]
    fn cpu_hogs_give_way_to_other_work_but_not_to_each_other() {
        let p = policy();
        let min = p.config().slice_min_ns;
        // Something other than a hog waits: the hog's turn ends after slice_min.
        assert!(p.hog_turn_over(true, min, Some(false)));
        assert!(!p.hog_turn_over(true, min - 1, Some(false)));
        // Only hogs wait, nothing waits that may run here, or it is no hog:
        // the turn runs to the end of its slice.
        assert!(!p.hog_turn_over(true, 100 * min, Some(true)));
        assert!(!p.hog_turn_over(true, 100 * min, None));
        assert!(!p.hog_turn_over(false, 100 * min, Some(false)));
        // A hog's slice is its class's: a lone hog is not switched needlessly.
        let hog = p.decide(&task(1, 0, 500 * MS, 100), &idle());
        assert_eq!((hog.class, hog.slice_ns), (TaskClass::Batch, 10 * MS));
    }

    #[test]
    fn slices_stay_within_bounds_for_every_weight_and_class() {
        let p = policy();
        let cfg = p.config().clone();
        for weight in [0, 1, 2, 15, 100, 1024, 8876, 10_000, u32::MAX] {
            for t in [
                task(1, 0, 0, weight),
                task(1, 0, 50 * MS, weight),
                task(1, 0, 500 * MS, weight),
                io_task(1, 0),
            ] {
                let t = TaskObservation { weight, ..t };
                let d = p.decide(&t, &idle());
                assert!(
                    (cfg.slice_min_ns..=cfg.slice_max_ns).contains(&d.slice_ns),
                    "weight {weight} {:?}: slice {}",
                    d.class,
                    d.slice_ns
                );
            }
        }
    }

    #[test]
    fn deadlines_are_bounded_past_vtime() {
        let p = policy();
        for t in [
            task(1, 1000 * MS, u64::MAX / 2, 100),
            task(1, 1000 * MS, u64::MAX / 2, 1),
            io_task(2, 1000 * MS),
            task(3, 1000 * MS, 0, 1),
        ] {
            let d = p.decide(&t, &idle());
            let bound = p.config().max_deadline_offset_ns();
            assert!(d.deadline - 1000 * MS <= bound, "{d:?} bound {bound}");
        }
        assert_eq!(
            p.decide(&task(1, 0, u64::MAX / 2, 100), &idle()).deadline,
            p.config().max_deadline_offset_ns(),
            "a hog reaches the bound exactly"
        );
        let saturated = p.decide(&task(1, u64::MAX - 1, u64::MAX, 1), &idle());
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
            assert_eq!(p.decide(&t, &idle()).llc, llc, "prev_cpu {cpu}");
        }
    }

    #[test]
    fn irq_woken_io_tasks_follow_their_completions() {
        let p = policy();
        let t = TaskObservation {
            irq_wake: true,
            waker_cpu: 1,
            prev_cpu: 3,
            ..io_task(1, 0)
        };
        assert_eq!(p.decide(&t, &idle()).llc, Some(0));
        // Not woken by an interrupt: stays where it ran.
        let t = TaskObservation {
            irq_wake: false,
            ..t
        };
        assert_eq!(p.decide(&t, &idle()).llc, Some(1));
    }

    #[test]
    fn batch_moves_ccx_only_beyond_the_hysteresis() {
        let p = policy();
        let hog = task(1, 0, 40 * MS, 100); // prev_cpu 2: CCX 1
        let load = |a, b| LoadView {
            llc_queued: vec![a, b],
        };
        assert_eq!(
            p.decide(&hog, &load(0, 2)).llc,
            Some(1),
            "within hysteresis"
        );
        assert_eq!(p.decide(&hog, &load(0, 3)).llc, Some(0), "clearly emptier");
        assert_eq!(p.decide(&hog, &load(5, 3)).llc, Some(1), "own is emptier");
        // Latency-sensitive work never leaves for balance.
        let io = io_task(2, 0);
        assert_eq!(p.decide(&io, &load(0, 9)).llc, Some(1));
    }

    #[test]
    fn batch_leaves_its_numa_node_only_at_twice_the_hysteresis() {
        // Nodes 0 = CCX 0-1 and 1 = CCX 2-3; the hog last ran in CCX 0.
        let topo = CcxTopology::new(vec![vec![0], vec![1], vec![2], vec![3]])
            .unwrap()
            .with_numa(vec![0, 0, 1, 1], vec![vec![10, 12], vec![12, 10]])
            .unwrap();
        let p = Policy::new(PolicyConfig::from_slice(5 * MS).unwrap(), topo).unwrap();
        let hog = TaskObservation {
            prev_cpu: 0,
            ..task(1, 0, 40 * MS, 100)
        };
        // (queued per CCX, where the hog goes, why)
        let cases = [
            ([3, 9, 0, 0], 0, "another node needs 3 > 0 + 4"),
            ([4, 1, 0, 0], 1, "its own node first: 4 > 1 + 2"),
            ([4, 3, 0, 0], 0, "4 <= 0 + 4"),
            ([5, 3, 0, 1], 2, "5 > 0 + 4"),
            ([2, 9, 0, 0], 0, "within hysteresis"),
        ];
        for (queued, want, why) in cases {
            let load = LoadView {
                llc_queued: queued.to_vec(),
            };
            assert_eq!(p.decide(&hog, &load).llc, Some(want), "{why}");
        }
    }

    #[test]
    fn decisions_echo_the_task_identity() {
        let d = policy().decide(&task(4242, 0, 0, 100), &idle());
        assert_eq!((d.pid, d.enq_seq, d.cpu), (4242, 7, None));
    }

    #[test]
    fn a_sleeper_keeps_its_credit_against_the_task_where_it_queues() {
        let p = policy();
        let cfg = p.config().clone();
        let now = 10 * cfg.max_wake_credit_ns;
        let credit = cfg.sleep_credit_ns;
        // An idle CPU, or a task there at or ahead of the clock: the clock.
        assert_eq!(p.wake_vtime_floor(now, None), now - credit);
        assert_eq!(p.wake_vtime_floor(now, Some(now + MS)), now - credit);
        // A task there behind the clock: level with it.
        assert_eq!(
            p.wake_vtime_floor(now, Some(now - 300 * MS)),
            now - 300 * MS - credit
        );
        // ... but never more than max_wake_credit behind the clock.
        assert_eq!(
            p.wake_vtime_floor(now, Some(0)),
            now - cfg.max_wake_credit_ns - credit
        );
        // Near the start of time nothing underflows.
        assert_eq!(p.wake_vtime_floor(credit / 2, Some(0)), 0);
    }

    /// Four CCXs of two cores of two threads, two per NUMA node.
    fn smt_policy() -> Policy {
        let llcs: Vec<Vec<u32>> = (0..4).map(|l| (l * 4..l * 4 + 4).collect()).collect();
        let cores: Vec<Vec<u32>> = (0..8).map(|c| vec![2 * c, 2 * c + 1]).collect();
        let distance = vec![vec![10, 32], vec![32, 10]];
        let topo = CcxTopology::new(llcs)
            .unwrap()
            .with_cores(&cores)
            .unwrap()
            .with_numa(vec![0, 0, 1, 1], distance)
            .unwrap();
        Policy::new(PolicyConfig::from_slice(5 * MS).unwrap(), topo).unwrap()
    }

    /// Hogs, idle CPU and idle core of each LLC.
    fn loads(hogs_idle_cpu_idle_core: &[(u32, bool, bool)]) -> Vec<LlcLoad> {
        hogs_idle_cpu_idle_core
            .iter()
            .map(|&(hogs, idle_cpu, idle_core)| LlcLoad {
                hogs,
                idle_cpu,
                idle_core,
            })
            .collect()
    }

    #[test]
    fn a_hog_moves_to_a_ccx_with_clearly_fewer_hogs_its_own_node_first() {
        let p = smt_policy();
        let (full, idle) = ((4, false, false), (0, true, true));
        // Its CCX full of hogs, its node's other CCX idle: there.
        let l = loads(&[full, idle, idle, idle]);
        assert_eq!(p.hog_spread_target(0, false, &l), Some(1));
        // One hog fewer is no reason: the move would only swap the two.
        let l = loads(&[(2, true, false), (1, true, false), full, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), None);
        // Fewer hogs but no idle CPU (other work runs there): stays.
        let l = loads(&[full, (1, false, false), full, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), None);
        // Another node's CCX needs twice the gap, as for queued batch work.
        let l = loads(&[(3, true, false), full, idle, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), None);
        let l = loads(&[full, full, idle, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), Some(2));
        // The fewest hogs win; the node's own CCX among equals.
        let l = loads(&[full, (2, true, false), idle, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), Some(2));
        let l = loads(&[full, idle, idle, full]);
        assert_eq!(p.hog_spread_target(0, false, &l), Some(1));
    }

    #[test]
    fn a_hog_sharing_its_core_takes_a_whole_idle_core() {
        let p = smt_policy();
        let half = (2, true, true);
        // Its own CCX has one: it stays in its CCX, on that core.
        let l = loads(&[half, half, half, half]);
        assert_eq!(p.hog_spread_target(0, true, &l), Some(0));
        // ... and on a core of its own it has no reason to move at all.
        assert_eq!(p.hog_spread_target(0, false, &l), None);
        // None in its CCX: a CCX with an idle core and fewer hogs.
        let l = loads(&[
            (3, true, false),
            (3, true, false),
            (2, true, true),
            (4, false, false),
        ]);
        assert_eq!(p.hog_spread_target(0, true, &l), Some(2));
        // An idle core in a CCX with as many hogs: stays.
        let l = loads(&[
            (2, true, false),
            (2, true, true),
            (4, false, false),
            (4, false, false),
        ]);
        assert_eq!(p.hog_spread_target(0, true, &l), None);
        // An unknown LLC: nothing to decide.
        assert_eq!(p.hog_spread_target(9, true, &l), None);
    }

    #[test]
    fn config_rejects_a_zero_slice() {
        assert!(PolicyConfig::from_slice(0).is_err());
        let mut cfg = PolicyConfig::from_slice(MS).unwrap();
        cfg.slice_min_ns = 2 * MS;
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn class_values_match_the_bpf_side() {
        for class in TaskClass::ALL {
            assert_eq!(TaskClass::from_raw(class as u32), class);
        }
        assert_eq!(TaskClass::from_raw(0xff), TaskClass::Interactive);
    }
}
