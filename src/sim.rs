//! A deterministic simulator of the whole scheduler, for tests and
//! benchmarks without a kernel.
//!
//! It runs the real [`Policy`] behind a Rust model of the BPF side's rules
//! (`src/bpf/`): the idle-CPU fast path at wake-up, the wake-up
//! fast path (in the class the policy's rule gives the task as it wakes),
//! a queue per CPU ordered by deadline (taken
//! from the CCX's other queues when their first task is due well before its
//! own, or its own is empty; other CCXs only when all of its own are empty),
//! preemption of batch work, the spreading of CPU hogs whose slice ends
//! with nothing else waiting for their CPU, vtime
//! accounting, and a fixed user-space round-trip delay for everything else.
//! Time advances in fixed steps; there is no randomness, so a scenario always
//! gives the same numbers.

use std::collections::BTreeMap;

use crate::policy::{LlcLoad, LoadView, Policy, TaskClass, TaskObservation};
use crate::topology::CcxTopology;

/// How a simulated task behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Always runnable (compression, checksums, builds).
    Hog,
    /// Runs `run_ns`, then sleeps `wait_ns` waiting for I/O; the completion
    /// interrupt arrives on `irq_cpu` (or on the CPU it ran on).
    Io {
        run_ns: u64,
        wait_ns: u64,
        irq_cpu: Option<u32>,
    },
    /// Runs `run_ns`, then sleeps `sleep_ns` (not for I/O).
    Sleeper { run_ns: u64, sleep_ns: u64 },
    /// As `Io`, but its CPU time per wake-up takes the values of `runs_ns`
    /// in turn: a thread whose work per wake-up varies (fio at queue depth
    /// 16 in the VM reaps more or fewer completions each time).
    IoVarying {
        runs_ns: Vec<u64>,
        wait_ns: u64,
        irq_cpu: Option<u32>,
    },
}

#[derive(Clone, Debug)]
pub struct TaskSpec {
    pub name: String,
    pub behavior: Behavior,
    /// 1..10000, 100 = nice 0.
    pub weight: u32,
    /// CPUs it may run on; None = all.
    pub allowed: Option<Vec<u32>>,
    /// CPU it starts on.
    pub start_cpu: u32,
}

impl TaskSpec {
    pub fn new(name: &str, behavior: Behavior, start_cpu: u32) -> Self {
        TaskSpec {
            name: name.into(),
            behavior,
            weight: 100,
            allowed: None,
            start_cpu,
        }
    }

    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    pub fn pinned(mut self, cpus: &[u32]) -> Self {
        self.allowed = Some(cpus.to_vec());
        self
    }
}

/// What happened to one task.
#[derive(Clone, Debug, Default)]
pub struct TaskReport {
    pub name: String,
    pub runtime_ns: u64,
    /// Every wait from runnable to running, ns.
    pub waits_ns: Vec<u64>,
    /// Times it started running.
    pub runs: u64,
    /// ... on the same CCX as its previous run.
    pub runs_on_same_ccx: u64,
    /// ... on the same CPU as its previous run.
    pub runs_on_same_cpu: u64,
    /// Times it ran on a CPU outside its allowed set (must stay 0).
    pub affinity_violations: u64,
    /// The class the policy gave it last.
    pub class: TaskClass,
    /// Times it waited for a user-space decision (after the warm-up).
    pub user_round_trips: u64,
    /// ... of them, as it woke up.
    pub wakeup_round_trips: u64,
    /// Wake-ups BPF placed itself (after the warm-up), by the class it
    /// gave them (indexed by `TaskClass as usize`).
    pub bpf_wakeups: [u64; 3],
    /// Wake-ups by the class it ran in, whichever path placed them (after
    /// the warm-up): what BPF's wake-to-run statistics count and what a
    /// latency-critical wake-up sees when it looks for batch work to preempt.
    pub wakeups_by_class: [u64; 3],
    /// Times it moved, as a CPU hog whose slice ended with nothing else
    /// waiting for its CPU, to spread out (`Policy::hog_spread_target`).
    pub spreads: u64,
    /// The CPU it last started on.
    pub last_cpu: Option<u32>,
}

impl TaskReport {
    pub fn max_wait_ns(&self) -> u64 {
        self.waits_ns.iter().copied().max().unwrap_or(0)
    }

    /// The `pct` percentile of its waits (nearest rank).
    pub fn wait_percentile_ns(&self, pct: f64) -> u64 {
        if self.waits_ns.is_empty() {
            return 0;
        }
        let mut w = self.waits_ns.clone();
        w.sort_unstable();
        let rank = ((pct / 100.0) * w.len() as f64).ceil() as usize;
        w[rank.clamp(1, w.len()) - 1]
    }

    pub fn same_ccx_share(&self) -> f64 {
        if self.runs <= 1 {
            return 1.0;
        }
        self.runs_on_same_ccx as f64 / (self.runs - 1) as f64
    }

    pub fn same_cpu_share(&self) -> f64 {
        if self.runs <= 1 {
            return 1.0;
        }
        self.runs_on_same_cpu as f64 / (self.runs - 1) as f64
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub duration_ns: u64,
    /// Time step.
    pub step_ns: u64,
    /// Time from a task entering the ring to its decision being applied.
    pub user_delay_ns: u64,
    /// Placements BPF makes from a cached class before user space reviews.
    pub review_every: u32,
    /// Waits before this time are not reported (tasks start unclassified).
    pub warmup_ns: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            duration_ns: 2_000_000_000,
            step_ns: 10_000,
            user_delay_ns: 50_000,
            review_every: 8,
            warmup_ns: 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Running(usize),
    /// In a CPU's queue.
    Queued,
    /// Waiting for user space's decision until the given time.
    InUserSpace(u64),
    /// Asleep until the given time.
    Sleeping(u64),
}

struct Task {
    spec: TaskSpec,
    state: State,
    prev_cpu: u32,
    prev_llc: Option<usize>,
    vtime: u64,
    exec_runtime: u64,
    avg_runtime: u64,
    activation_runtime: u64,
    /// Wake-ups so far, which pick an `IoVarying` task's next run length.
    activations: usize,
    slice_left: u64,
    runnable_since: u64,
    woke_up: bool,
    irq_wake: bool,
    waker_cpu: i32,
    slept_in_iowait: bool,
    class: TaskClass,
    fast_placements: u32,
    enq_seq: u64,
    /// Deadline of its last placement, kept for a preempted requeue.
    deadline: u64,
    report: TaskReport,
}

struct Cpu {
    llc: usize,
    current: Option<usize>,
    /// A task put on this CPU's local queue (runs next).
    local: Option<(usize, u64)>,
    running_since: u64,
    preempt: bool,
}

/// One queued entry, ordered by deadline then arrival.
type QueueKey = (u64, u64);

pub struct Simulator {
    cfg: SimConfig,
    policy: Policy,
    topo: CcxTopology,
    tasks: Vec<Task>,
    cpus: Vec<Cpu>,
    /// One per CPU.
    queues: Vec<BTreeMap<QueueKey, usize>>,
    queued_slice: Vec<u64>,
    /// Per LLC, the CPU with the shortest queue when one of its CPUs last
    /// dispatched from it: placing reads this hint, as BPF's queue_cpu() does.
    shortest_hint: Vec<Option<usize>>,
    /// Per LLC, the LLCs an idle CPU there takes from: its own, then the
    /// steal order (computed once, as the loader does for BPF).
    dispatch_order: Vec<Vec<usize>>,
    /// Reviews of BPF-placed wake-ups in the ring: (answer due, record).
    reviews: Vec<(u64, TaskObservation)>,
    now: u64,
    vtime_now: u64,
    arrivals: u64,
}

impl Simulator {
    pub fn new(cfg: SimConfig, policy: Policy, specs: Vec<TaskSpec>) -> Self {
        let topo = policy.topology().clone();
        let cpus = (0..topo.nr_cpu_ids())
            .map(|cpu| Cpu {
                llc: topo.llc_of(cpu as i32).unwrap_or(0),
                current: None,
                local: None,
                running_since: 0,
                preempt: false,
            })
            .collect();
        let tasks: Vec<Task> = specs
            .into_iter()
            .map(|spec| Task {
                prev_cpu: spec.start_cpu,
                prev_llc: None,
                state: State::Sleeping(0),
                vtime: 0,
                exec_runtime: 0,
                avg_runtime: 0,
                activation_runtime: 0,
                activations: 0,
                slice_left: 0,
                runnable_since: 0,
                woke_up: false,
                irq_wake: false,
                waker_cpu: -1,
                slept_in_iowait: false,
                class: TaskClass::Interactive,
                fast_placements: 0,
                enq_seq: 0,
                deadline: 0,
                report: TaskReport {
                    name: spec.name.clone(),
                    ..Default::default()
                },
                spec,
            })
            .collect();
        let nr_llcs = topo.nr_llcs();
        let nr_cpu_ids = topo.nr_cpu_ids();
        let dispatch_order = (0..nr_llcs)
            .map(|llc| std::iter::once(llc).chain(topo.steal_order(llc)).collect())
            .collect();
        Simulator {
            dispatch_order,
            queued_slice: vec![0; tasks.len()],
            shortest_hint: vec![None; nr_llcs],
            reviews: Vec::new(),
            cfg,
            policy,
            topo,
            tasks,
            cpus,
            queues: vec![BTreeMap::new(); nr_cpu_ids],
            now: 0,
            vtime_now: 0,
            arrivals: 0,
        }
    }

    /// Run the scenario to its end and report per task.
    pub fn run(mut self) -> Vec<TaskReport> {
        while self.now < self.cfg.duration_ns {
            self.wake_sleepers();
            self.apply_user_decisions();
            self.advance_running();
            self.dispatch_idle_cpus();
            self.now += self.cfg.step_ns;
        }
        self.tasks
            .into_iter()
            .map(|t| TaskReport {
                class: t.class,
                ..t.report
            })
            .collect()
    }

    fn allowed(&self, t: usize, cpu: usize) -> bool {
        self.tasks[t]
            .spec
            .allowed
            .as_ref()
            .is_none_or(|cpus| cpus.contains(&(cpu as u32)))
    }

    /// The idle CPU a waking task `t` goes to: `prev` if idle, else one of
    /// `prefer_llc` (its CCX), else any. With SMT, a whole idle core before
    /// a lone idle thread in the CCX, then in the others (BPF's
    /// `claim_idle_in_own_llc()`, then the kernel's picker).
    fn idle_cpu_for(&self, t: usize, prefer_llc: Option<usize>, prev: u32) -> Option<usize> {
        let free = |cpu: usize| self.cpus[cpu].current.is_none();
        let idle = |cpu: usize| free(cpu) && self.allowed(t, cpu);
        let whole_core = |cpu: usize| idle(cpu) && self.core_cpus_of(cpu).all(free);
        if (prev as usize) < self.cpus.len() && idle(prev as usize) {
            return Some(prev as usize);
        }
        let picks: &[&dyn Fn(usize) -> bool] = if self.topo.smt() {
            &[&whole_core, &idle]
        } else {
            &[&idle]
        };
        let llc = || {
            prefer_llc
                .into_iter()
                .flat_map(|l| self.topo.llc_cpus(l).iter().map(|&c| c as usize))
        };
        let in_llc = picks.iter().find_map(|pick| llc().find(|&c| pick(c)));
        in_llc.or_else(|| {
            picks
                .iter()
                .find_map(|pick| (0..self.cpus.len()).find(|&c| pick(c)))
        })
    }

    /// The kernel's idle picker, then BPF's enqueue.
    fn wake_sleepers(&mut self) {
        for t in 0..self.tasks.len() {
            let State::Sleeping(until) = self.tasks[t].state else {
                continue;
            };
            if until > self.now {
                continue;
            }
            let task = &mut self.tasks[t];
            task.woke_up = true;
            task.exec_runtime = 0;
            task.activation_runtime = 0;
            task.activations += 1;
            (task.irq_wake, task.waker_cpu) = match task.spec.behavior {
                Behavior::Io { irq_cpu, .. } | Behavior::IoVarying { irq_cpu, .. } => {
                    (true, irq_cpu.unwrap_or(task.prev_cpu) as i32)
                }
                _ => (false, task.prev_cpu as i32),
            };
            let home = self.wake_home(t);
            let running = self
                .cpus
                .get(home as usize)
                .and_then(|c| c.current)
                .map(|r| self.tasks[r].vtime);
            let floor = self.policy.wake_vtime_floor(self.vtime_now, running);
            let task = &mut self.tasks[t];
            task.vtime = task.vtime.max(floor);
            task.runnable_since = self.now;
            // ops.runnable: its class for this activation, whichever path
            // places it (an idle CPU's wake-up never passes ops.enqueue).
            self.tasks[t].class = self.policy.classify(&self.observe(t));

            let prev_cpu = self.tasks[t].prev_cpu;
            let prev_llc = self.topo.llc_of(prev_cpu as i32);
            if let Some(cpu) = self.idle_cpu_for(t, prev_llc, prev_cpu) {
                let slice = self.policy.config().slice_ns;
                self.start(t, cpu, slice);
                continue;
            }
            self.enqueue(t);
        }
    }

    /// The CPU whose queue waking task `t` joins: the interrupt's CPU for a
    /// wake-up from an interrupt (where its completions arrive), else its own.
    fn wake_home(&self, t: usize) -> i32 {
        let task = &self.tasks[t];
        if task.irq_wake {
            task.waker_cpu
        } else {
            task.prev_cpu as i32
        }
    }

    /// ops.enqueue: the wake-up fast path, the slice-expiry requeue, or user space.
    fn enqueue(&mut self, t: usize) {
        let fast_class = self.wakeup_fast_class(t);
        let task = &mut self.tasks[t];
        task.enq_seq += 1;
        if let Some(wake_class) = fast_class {
            task.class = wake_class;
            if self.now >= self.cfg.warmup_ns {
                task.report.bpf_wakeups[wake_class as usize] += 1;
            }
            let preempt = task.class == TaskClass::LatencyCritical;
            let home = self.wake_home(t);
            self.place_in_bpf(t, home, preempt);
            return;
        }
        // Slice expiry: BPF requeues it from the cached class.
        if !task.woke_up && task.report.runs > 0 && task.fast_placements < self.cfg.review_every {
            task.fast_placements += 1;
            let llc = self.topo.llc_of(task.prev_cpu as i32);
            let (deadline, slice) = self.cached_class_placement(t);
            self.queue(t, llc, slice, deadline, false);
            return;
        }
        // One allowed CPU: no placement to choose, and none to wait for.
        if task.spec.allowed.as_ref().is_some_and(|a| a.len() == 1) {
            let home = task.prev_cpu as i32;
            self.place_in_bpf(t, home, false);
            return;
        }
        if self.now >= self.cfg.warmup_ns {
            task.report.user_round_trips += 1;
            task.report.wakeup_round_trips += u64::from(task.woke_up);
        }
        task.state = State::InUserSpace(self.now + self.cfg.user_delay_ns);
    }

    /// The class BPF places a waking task `t` in without user space
    /// (`wakeup_fast_path()`): the policy's own rule at the wake-up, except
    /// for plain batch work (not woken from I/O, or too long per wake-up),
    /// which waits for user space. None for a task that did not wake up.
    fn wakeup_fast_class(&self, t: usize) -> Option<TaskClass> {
        if !self.tasks[t].woke_up {
            return None;
        }
        let obs = self.observe(t);
        let class = self.tasks[t].class; // set as it woke (wake_sleepers)
        let io_batch =
            obs.woken_from_io() && obs.avg_runtime <= self.policy.config().io_batch_max_runtime_ns;
        (class != TaskClass::Batch || io_batch).then_some(class)
    }

    /// BPF queues task `t` from its cached class in the LLC of `home`;
    /// user space gets a copy to review every `review_every` placements,
    /// and the task does not wait for the answer.
    fn place_in_bpf(&mut self, t: usize, home: i32, preempt: bool) {
        if self.tasks[t].fast_placements >= self.cfg.review_every {
            self.tasks[t].fast_placements = 0;
            let record = TaskObservation {
                placed: true,
                ..self.observe(t)
            };
            self.reviews
                .push((self.now + self.cfg.user_delay_ns, record));
        }
        self.tasks[t].fast_placements += 1;
        let llc = self.topo.llc_of(home);
        let (deadline, slice) = self.cached_class_placement(t);
        self.queue(t, llc, slice, deadline, preempt);
    }

    /// Deadline and slice of task `t` from its cached class, as BPF's
    /// task_deadline() and task_slice() compute them.
    fn cached_class_placement(&self, t: usize) -> (u64, u64) {
        let task = &self.tasks[t];
        let deadline =
            self.policy
                .deadline(task.class, task.vtime, task.exec_runtime, task.spec.weight);
        let slice = self.policy.slice(task.class, task.spec.weight);
        (deadline, slice)
    }

    /// No simulated task wakes another while it runs, so a CPU hog is one
    /// that ran `max_lag` since it last slept.
    fn is_cpu_hog(&self, t: usize) -> bool {
        self.tasks[t].exec_runtime >= self.policy.config().max_lag_ns
    }

    /// The CPUs of `cpu`'s LLC.
    fn llc_cpus_of(&self, cpu: usize) -> impl Iterator<Item = usize> + '_ {
        let llc = self.cpus[cpu].llc;
        self.topo.llc_cpus(llc).iter().map(|&c| c as usize)
    }

    /// The CPUs of `cpu`'s core, `cpu` included (SMT siblings).
    fn core_cpus_of(&self, cpu: usize) -> impl Iterator<Item = usize> + '_ {
        let core = self.topo.core_of(cpu as u32);
        self.llc_cpus_of(cpu)
            .filter(move |&c| self.topo.core_of(c as u32) == core)
    }

    /// BPF's check at each tick (here at each step): a running hog gives
    /// way once something other than a hog that may run on its CPU waits
    /// first in one of its CCX's queues.
    fn hog_turn_over(&self, t: usize, cpu: usize) -> bool {
        let mut heads = self
            .llc_cpus_of(cpu)
            .filter_map(|c| self.queues[c].values().next().copied())
            .peekable();
        let first_waiter_is_hog = if heads.peek().is_none() {
            None
        } else if heads.any(|o| self.allowed(o, cpu) && !self.is_cpu_hog(o)) {
            Some(false)
        } else {
            Some(true)
        };
        let turn = self.now - self.cpus[cpu].running_since;
        self.policy
            .hog_turn_over(self.is_cpu_hog(t), turn, first_waiter_is_hog)
    }

    /// Where BPF moves a CPU hog on `cpu` whose slice ended with nothing
    /// else waiting for `cpu`: the policy's rule on what the CPUs run, then
    /// a whole idle core of that LLC, or (in another LLC) any idle CPU
    /// there. Tasks with an affinity stay.
    fn hog_spread_cpu(&self, t: usize, cpu: usize) -> Option<usize> {
        if !self.is_cpu_hog(t) || self.tasks[t].spec.allowed.is_some() {
            return None;
        }
        let smt = self.topo.smt();
        let idle = |c: usize| self.cpus[c].current.is_none() && self.cpus[c].local.is_none();
        // A hog already sent to a CPU's local queue counts there, as BPF
        // marks that CPU when it claims it.
        let runs_hog = |c: usize| {
            let cpu = &self.cpus[c];
            cpu.current
                .or(cpu.local.map(|(o, _)| o))
                .is_some_and(|o| self.is_cpu_hog(o))
        };
        let whole_idle_core = |c: usize| smt && self.core_cpus_of(c).all(idle);
        let loads: Vec<LlcLoad> = (0..self.topo.nr_llcs())
            .map(|llc| {
                let cpus = || self.topo.llc_cpus(llc).iter().map(|&c| c as usize);
                LlcLoad {
                    hogs: cpus().filter(|&c| runs_hog(c)).count() as u32,
                    idle_cpu: cpus().any(idle),
                    idle_core: cpus().any(whole_idle_core),
                }
            })
            .collect();
        let shared = smt && self.core_cpus_of(cpu).any(|c| c != cpu && runs_hog(c));
        let own = self.cpus[cpu].llc;
        let llc = self.policy.hog_spread_target(own, shared, &loads)?;
        let mut cpus = self.topo.llc_cpus(llc).iter().map(|&c| c as usize);
        let core_pick = cpus.clone().find(|&c| whole_idle_core(c));
        if llc == own {
            return core_pick;
        }
        core_pick.or_else(|| cpus.find(|&c| idle(c)))
    }

    fn apply_user_decisions(&mut self) {
        let mut load = LoadView::default();
        load.fill_from_cpu_queues(&self.topo, |cpu| self.queues[cpu as usize].len() as u32);
        let now = self.now;
        for (_, record) in self.reviews.iter().filter(|(ready, _)| *ready <= now) {
            let review = self.policy.decide(record, &load);
            self.tasks[record.pid as usize].class = review.class;
        }
        self.reviews.retain(|(ready, _)| *ready > now);
        for t in 0..self.tasks.len() {
            let State::InUserSpace(ready) = self.tasks[t].state else {
                continue;
            };
            if ready > self.now {
                continue;
            }
            let d = self.policy.decide(&self.observe(t), &load);
            let task = &mut self.tasks[t];
            task.class = d.class;
            task.fast_placements = 0;
            self.queue(t, d.llc, d.slice_ns, d.deadline, d.preempt);
        }
    }

    /// The record BPF would hand user space for task `t` now.
    fn observe(&self, t: usize) -> TaskObservation {
        let task = &self.tasks[t];
        TaskObservation {
            pid: t as i32,
            enq_seq: task.enq_seq,
            prev_cpu: task.prev_cpu as i32,
            waker_cpu: task.waker_cpu,
            nr_cpus_allowed: task.spec.allowed.as_ref().map_or(self.cpus.len(), Vec::len) as u32,
            woke_up: task.woke_up,
            irq_wake: task.irq_wake && task.woke_up,
            slept_in_iowait: task.slept_in_iowait,
            kthread: false,
            placed: false,
            vtime: task.vtime,
            exec_runtime: task.exec_runtime,
            avg_runtime: task.avg_runtime,
            weight: task.spec.weight,
            cached_class: task.class,
        }
    }

    /// BPF's queue_in_llc(): a usable LLC, the queue, an idle CPU or a
    /// preemption.
    fn queue(&mut self, t: usize, want: Option<usize>, slice: u64, deadline: u64, preempt: bool) {
        let llc = match want {
            Some(llc)
                if self
                    .topo
                    .llc_cpus(llc)
                    .iter()
                    .any(|&c| self.allowed(t, c as usize)) =>
            {
                llc
            }
            _ => {
                let cpu = (0..self.cpus.len())
                    .find(|&c| self.allowed(t, c))
                    .expect("a task with no allowed CPU");
                self.cpus[cpu].llc
            }
        };
        self.tasks[t].deadline = deadline;
        self.tasks[t].state = State::Queued;
        let free = |s: &Self, c: usize| {
            s.cpus[c].current.is_none() && s.cpus[c].local.is_none() && s.allowed(t, c)
        };
        let idle = self
            .topo
            .llc_cpus(llc)
            .iter()
            .map(|&c| c as usize)
            .find(|&c| free(self, c));
        if preempt {
            // Straight to an idle CPU, else to a batch CPU's local queue.
            let target = idle.or_else(|| {
                self.topo
                    .llc_cpus(llc)
                    .iter()
                    .map(|&c| c as usize)
                    .filter(|&c| self.allowed(t, c) && self.cpus[c].local.is_none())
                    .filter(|&c| {
                        self.cpus[c]
                            .current
                            .is_some_and(|cur| self.tasks[cur].class == TaskClass::Batch)
                    })
                    .min_by_key(|&c| self.cpus[c].running_since)
            });
            if let Some(cpu) = target {
                self.cpus[cpu].local = Some((t, slice));
                self.cpus[cpu].preempt = self.cpus[cpu].current.is_some();
                return;
            }
        }
        let target = idle.unwrap_or_else(|| self.queue_cpu(t, llc));
        self.arrivals += 1;
        self.queues[target].insert((deadline, self.arrivals), t);
        self.queued_slice[t] = slice;
    }

    /// BPF's queue_cpu(): the CPU task `t` is on if it is in `llc` and its
    /// queue is no longer than the hinted shortest one (if `t` may use it) by
    /// more than a quarter and one, else that shortest one, else the first
    /// CPU of `llc` that `t` may use.
    fn queue_cpu(&self, t: usize, llc: usize) -> usize {
        let own = self.tasks[t].prev_cpu as usize;
        let shortest = self.shortest_hint[llc].filter(|&c| self.allowed(t, c));
        let own_ok = self.cpus[own].llc == llc && self.allowed(t, own);
        match shortest {
            Some(c) if own_ok => {
                let fewest = self.queues[c].len();
                if self.queues[own].len() <= fewest + 1 + fewest / 4 {
                    own
                } else {
                    c
                }
            }
            _ if own_ok => own,
            Some(c) => c,
            None => self
                .topo
                .llc_cpus(llc)
                .iter()
                .map(|&c| c as usize)
                .find(|&c| self.allowed(t, c))
                .expect("queue() picked an LLC with an allowed CPU"),
        }
    }

    /// The hint queue_cpu() reads, refreshed as `cpu` dispatches while its
    /// LLC has tasks queued (ties go to `cpu`, then to CPU order).
    fn note_shortest(&mut self, cpu: usize) {
        let llc = self.cpus[cpu].llc;
        let (mut shortest, mut any_queued) = (cpu, false);
        for c in self.llc_cpus_of(cpu) {
            any_queued |= !self.queues[c].is_empty();
            if self.queues[c].len() < self.queues[shortest].len() {
                shortest = c;
            }
        }
        if any_queued {
            self.shortest_hint[llc] = Some(shortest);
        }
    }

    fn start(&mut self, t: usize, cpu: usize, slice: u64) {
        let llc = self.cpus[cpu].llc;
        let allowed = self.allowed(t, cpu);
        let task = &mut self.tasks[t];
        if self.now >= self.cfg.warmup_ns {
            task.report.waits_ns.push(self.now - task.runnable_since);
            if task.woke_up {
                task.report.wakeups_by_class[task.class as usize] += 1;
            }
        }
        task.report.runs += 1;
        if task.prev_llc == Some(llc) {
            task.report.runs_on_same_ccx += 1;
            if task.prev_cpu as usize == cpu {
                task.report.runs_on_same_cpu += 1;
            }
        }
        if !allowed {
            task.report.affinity_violations += 1;
        }
        task.prev_llc = Some(llc);
        task.prev_cpu = cpu as u32;
        task.report.last_cpu = Some(cpu as u32);
        task.slice_left = slice;
        task.state = State::Running(cpu);
        self.cpus[cpu].current = Some(t);
        self.cpus[cpu].running_since = self.now;
        self.cpus[cpu].preempt = false;
    }

    /// Runtime accounting, sleeps, slice expiry and preemption.
    fn advance_running(&mut self) {
        let dt = self.cfg.step_ns;
        let cfg = self.policy.config().clone();
        for cpu in 0..self.cpus.len() {
            let Some(t) = self.cpus[cpu].current else {
                continue;
            };
            let task = &mut self.tasks[t];
            task.report.runtime_ns += dt;
            task.exec_runtime += dt;
            task.activation_runtime += dt;
            task.vtime += dt * 100 / u64::from(task.spec.weight.max(1));
            task.slice_left = task.slice_left.saturating_sub(dt);
            // BPF's demotions at tick.
            if task.class == TaskClass::LatencyCritical
                && task.exec_runtime > cfg.latcrit_max_runtime_ns
            {
                task.class = TaskClass::Interactive;
            }
            if task.class != TaskClass::Batch && task.exec_runtime > cfg.interactive_max_runtime_ns
            {
                task.class = TaskClass::Batch;
            }

            let sleep = match &task.spec.behavior {
                Behavior::Hog => None,
                &Behavior::Io {
                    run_ns, wait_ns, ..
                } => (task.activation_runtime >= run_ns).then_some((wait_ns, true)),
                Behavior::IoVarying {
                    runs_ns, wait_ns, ..
                } => {
                    let turn = task.activations % runs_ns.len().max(1);
                    let run_ns = runs_ns.get(turn).copied().unwrap_or(0);
                    (task.activation_runtime >= run_ns).then_some((*wait_ns, true))
                }
                &Behavior::Sleeper { run_ns, sleep_ns } => {
                    (task.activation_runtime >= run_ns).then_some((sleep_ns, false))
                }
            };
            if let Some((duration, iowait)) = sleep {
                task.slept_in_iowait = iowait;
                task.avg_runtime =
                    task.avg_runtime - (task.avg_runtime >> 2) + (task.exec_runtime >> 2);
                task.state = State::Sleeping(self.now + dt + duration);
                self.cpus[cpu].current = None;
                continue;
            }

            let llc = self.cpus[cpu].llc;
            if self.hog_turn_over(t, cpu) {
                self.tasks[t].slice_left = 0;
            }
            let task = &self.tasks[t];
            let expired = task.slice_left == 0;
            let preempted = self.cpus[cpu].preempt;
            if !expired && !preempted {
                continue;
            }
            // Nothing else wants this CPU: the kernel keeps it running.
            let others_wait = self.cpus[cpu].local.is_some()
                || self
                    .llc_cpus_of(cpu)
                    .any(|c| self.queues[c].values().any(|&o| self.allowed(o, cpu)));
            if expired && !preempted && !others_wait {
                if let Some(to) = self.hog_spread_cpu(t, cpu) {
                    // BPF's SCX_ENQ_LAST enqueue: to that CPU's local queue.
                    self.cpus[cpu].current = None;
                    self.cpus[to].local = Some((t, cfg.slice_ns));
                    let task = &mut self.tasks[t];
                    task.runnable_since = self.now;
                    task.report.spreads += 1;
                    continue;
                }
                self.tasks[t].slice_left = cfg.slice_ns;
                continue;
            }
            self.cpus[cpu].current = None;
            self.cpus[cpu].preempt = false;
            let task = &mut self.tasks[t];
            task.woke_up = false;
            task.runnable_since = self.now;
            if !expired {
                // Preempted mid-slice: BPF requeues it with its decision.
                let (slice, deadline) = (task.slice_left, task.deadline);
                self.queue(t, Some(llc), slice, deadline, false);
                continue;
            }
            self.enqueue(t);
        }
    }

    /// ops.dispatch on every idle CPU: its local queue; its own queue,
    /// unless the first task of another queue of its LLC is due more than
    /// slice_max earlier; any queue of its LLC; then the other LLCs in the
    /// topology's steal order (own NUMA node first).
    fn dispatch_idle_cpus(&mut self) {
        let margin = self.policy.config().slice_max_ns;
        for cpu in 0..self.cpus.len() {
            if self.cpus[cpu].current.is_some() || self.topo.llc_of(cpu as i32).is_none() {
                continue;
            }
            if let Some((t, slice)) = self.cpus[cpu].local.take() {
                self.start(t, cpu, slice);
                continue;
            }
            self.note_shortest(cpu);
            let head = |s: &Self, c: usize| s.queues[c].keys().next().map(|&(dl, _)| dl);
            let own = head(self, cpu);
            let mut order = Vec::new();
            let earlier = self
                .llc_cpus_of(cpu)
                .filter(|&c| c != cpu)
                .filter_map(|c| head(self, c).map(|dl| (dl, c)))
                .filter(|&(dl, _)| own.is_none_or(|own| dl + margin < own))
                .min();
            order.extend(earlier.map(|(_, c)| c));
            order.push(cpu);
            for &llc in &self.dispatch_order[self.cpus[cpu].llc] {
                let cpus = self.topo.llc_cpus(llc);
                let n = cpus.len();
                order.extend((0..n).map(|i| cpus[(cpu + i) % n] as usize));
            }
            let pick = order.into_iter().find_map(|q| {
                self.queues[q]
                    .iter()
                    .find(|&(_, &t)| self.allowed(t, cpu))
                    .map(|(&key, &t)| (q, key, t))
            });
            if let Some((q, key, t)) = pick {
                self.queues[q].remove(&key);
                // The fairness clock follows tasks taken in deadline order.
                self.vtime_now = self.vtime_now.max(self.tasks[t].vtime);
                let slice = self.queued_slice[t];
                self.start(t, cpu, slice);
            }
        }
    }
}
