/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: what every part of the BPF side shares. The loader's knobs
 * and the machine's topology (read-only once loaded), the state user space
 * reads, each task's context, and the small helpers about CPUs, LLCs and
 * affinity that placement builds on.
 */
#ifndef __STORELAND_COMMON_BPF_H
#define __STORELAND_COMMON_BPF_H

/* DSQ ids: one queue for the policy loop, one per CPU. */
#define USERSCHED_DSQ	0x10000ULL
#define CPU_DSQ_BASE	0x20000ULL
#define CPU_DSQ(cpu)	(CPU_DSQ_BASE + (cpu))

/*
 * Knobs and topology, set by the loader before the program is loaded.
 */
const volatile u32 usersched_tgid;		/* our process: its threads never queue to user space */
const volatile u64 slice_ns = 5000000ULL;	/* default slice */
const volatile u64 slice_min_ns = 250000ULL;	/* bounds for user-space slices */
const volatile u64 slice_max_ns = 20000000ULL;
const volatile u64 sleep_credit_ns = 5000000ULL;	/* max vtime credit a sleeper keeps */
const volatile u64 max_wake_credit_ns = 1000000000ULL;	/* ... to stay level with where it queues */
const volatile u64 usersched_late_ns = 50000000ULL;	/* after this, BPF stops waiting for user space */
const volatile u64 latcrit_max_runtime_ns = 1000000ULL;	/* ran longer per wake-up: not latency-critical */
const volatile u64 interactive_max_runtime_ns = 2500000ULL;	/* ran longer per wake-up: batch */
const volatile u64 io_batch_max_runtime_ns = 20000000ULL;	/* batch woken from I/O placed by BPF up to this */
const volatile u32 review_every = 8;		/* BPF placements of a cached class before user space reviews */
/* The policy's parameters per class, so BPF places cached classes as user space would. */
const volatile u64 class_offset_ns[STORELAND_NR_CLASSES];
const volatile u64 class_slice_ns[STORELAND_NR_CLASSES];
const volatile u64 max_lag_ns = 100000000ULL;
/* Starvation guard: a task queued longer than this runs first (well under the watchdog). */
const volatile u64 starve_ns = 1000000000ULL;
const volatile u64 starve_scan_ns = 20000000ULL;	/* how often each LLC's queues are checked */
const volatile u32 nr_cpus = 1;			/* possible CPU ids */
const volatile u32 nr_llcs = 1;
const volatile bool smt_enabled;		/* some core runs more than one CPU */
const volatile u32 cpu_llc[STORELAND_MAX_CPUS];
const volatile u32 llc_nr_cpus[STORELAND_MAX_LLCS];
const volatile u32 llc_cpus[STORELAND_MAX_LLCS][STORELAND_MAX_LLC_CPUS];
/* The other LLCs in the order an LLC steals from them: own NUMA node first. */
const volatile u32 llc_steal_order[STORELAND_MAX_LLCS][STORELAND_MAX_LLCS];
const volatile u32 llc_node[STORELAND_MAX_LLCS];	/* NUMA node of each LLC */
const volatile u32 cpu_core[STORELAND_MAX_CPUS];	/* core of each CPU, shared by SMT siblings */
/* CPU hogs a CCX must have fewer than a hog's own for it to move there (x2 off its node). */
const volatile u32 balance_hysteresis = 2;

/*
 * State shared with user space (mmap'ed .bss).
 */
struct cpu_counters counters[STORELAND_MAX_CPUS];

/* What each CPU runs, for picking a preemption victim (written by that CPU). */
struct cpu_state {
	u32 running_class;	/* STORELAND_CLASS_* of the current task, or _NONE */
	u32 preempt_pending;	/* its current task is being preempted by us */
	u32 running_hog;	/* its current task is a CPU hog (is_cpu_hog()) */
	u32 pad;
	u64 running_since;
	u32 released;		/* a higher class (RT, deadline) holds it */
	u32 contested;		/* taken by a higher class since it last had none queued */
	u64 running_vtime;	/* vtime of its current task, as of its last accounting */
} cpu_state[STORELAND_MAX_CPUS];

/* Tasks waiting in each CPU's queue, refreshed as CPUs queue and dispatch. */
u32 cpu_nr_queued[STORELAND_MAX_CPUS];
/* The CPU of each LLC with the fewest tasks queued when one last dispatched. */
s32 llc_shortest_cpu[STORELAND_MAX_LLCS];
/*
 * Tasks placed in each CPU's queue (cpu_pending) and so in each LLC's
 * queues (llc_pending) that have not started running since. Never
 * below what the queue holds: a task is counted before it is inserted, and
 * uncounted only where it is in no queue and its runqueue is locked
 * (ops.enqueue, ops.running, ops.disable), so a stale
 * user-space decision racing with a new enqueue can leave a count too high
 * (that LLC is then always looked at), never too low. A CPU with nothing to
 * do skips the queues that are empty without touching them: in the VM, the
 * first DSQ lookup of a dispatch cost 7 us of the 17 us an idle-going
 * ops.dispatch took per fio I/O.
 */
u64 llc_pending[STORELAND_MAX_LLCS];
u64 cpu_pending[STORELAND_MAX_CPUS];
u64 vtime_now;				/* largest vtime of any task that started running */

/* What we track per task. */
struct task_ctx {
	u64 enq_seq;		/* bumped on every ops.enqueue() */
	u64 user_seq;		/* enq_seq of the record user space holds, 0 if none */
	u64 vtime;		/* weighted runtime, the fairness clock */
	u64 exec_runtime;	/* runtime since the task last woke up */
	u64 stint_runtime;	/* runtime since it last got a CPU */
	u64 solo_runtime;	/* runtime since it last slept or woke another task */
	u64 last_runtime;	/* runtime of the previous stint */
	u64 charged_at;		/* last time runtime was accounted */
	u64 avg_runtime;	/* EWMA of runtime per wake-up */
	u64 avg_wake_gap;	/* EWMA of time between wake-ups */
	u64 woke_at;
	u64 runnable_at;	/* start of its current wait for a CPU */
	s32 waker_cpu;
	u32 nr_wakeups;
	u32 class;		/* set by user space's last decision */
	u64 deadline;		/* of its last placement in a CPU queue */
	bool preempted;		/* kicked off its CPU for a latency-critical task */
	bool in_llc_queue;	/* placed in a CPU queue (deadline order), not run since */
	u32 queued_cpu;		/* ... that CPU's queue, counted in cpu_pending and llc_pending */
	bool has_run;		/* last_cpu is valid */
	s32 last_cpu;
	u32 fast_placements;	/* placed by BPF from the cached class since the last decision */
	bool woke_up;		/* the next enqueue is a wake-up */
	bool irq_wake;		/* ... and it came from IRQ context */
	bool waker_noted;	/* ops.select_cpu set irq_wake and waker_cpu */
	bool slept_in_iowait;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctx_stor SEC(".maps");

/* The CPUs of each LLC as a cpumask, built by ops.init. */
struct llc_cpumask {
	struct bpf_cpumask __kptr *cpus;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STORELAND_MAX_LLCS);
	__type(key, u32);
	__type(value, struct llc_cpumask);
} llc_cpumasks SEC(".maps");

static struct task_ctx *lookup_task_ctx(const struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx_stor, (struct task_struct *)p, 0, 0);
}

/* The CPUs of @llc as ops.init built them, or NULL. */
static __always_inline const struct cpumask *llc_mask(u32 llc)
{
	u32 key = llc;	/* a copy: the stack slot would lose llc's bound */
	struct llc_cpumask *m = bpf_map_lookup_elem(&llc_cpumasks, &key);

	/* Read once: each read of the kptr may be NULL to the verifier. */
	return m ? cast_mask(m->cpus) : NULL;
}

/* The calling CPU's own counter slot. */
static struct cpu_counters *my_counters(void)
{
	u32 cpu = bpf_get_smp_processor_id();

	if (cpu >= STORELAND_MAX_CPUS)
		return NULL;
	return &counters[cpu & (STORELAND_MAX_CPUS - 1)];
}

#define COUNT(field)						\
	do {							\
		struct cpu_counters *__c = my_counters();	\
		if (__c)					\
			__c->field++;				\
	} while (0)

static struct cpu_state *cpu_state_of(s32 cpu)
{
	if (cpu < 0 || cpu >= STORELAND_MAX_CPUS)
		return NULL;
	/*
	 * Else clang drops the mask as redundant, and may index with a copy
	 * of @cpu that the verifier never saw checked.
	 */
	barrier_var(cpu);
	return &cpu_state[(u32)cpu & (STORELAND_MAX_CPUS - 1)];
}

/* Exponentially weighted moving average, 1/4 weight to the new sample. */
static u64 ewma(u64 avg, u64 sample)
{
	return avg - (avg >> 2) + (sample >> 2);
}

static bool is_usersched_task(const struct task_struct *p)
{
	return p->tgid == usersched_tgid;
}

/* The policy loop runs on the main thread of our process. */
static bool is_usersched_loop(const struct task_struct *p)
{
	return p->pid == usersched_tgid;
}

/*
 * Set @p's class. The scheduler's own threads keep the one they start in,
 * interactive, whatever they run: everything else waits on the policy loop,
 * so it must never look like batch work that a waking task may preempt.
 */
static void set_class(const struct task_struct *p, struct task_ctx *tctx, u32 class)
{
	if (!is_usersched_task(p))
		tctx->class = class < STORELAND_NR_CLASSES ? class : STORELAND_CLASS_INTERACTIVE;
}

static bool is_pcpu_kthread(const struct task_struct *p)
{
	return (p->flags & PF_KTHREAD) && p->nr_cpus_allowed == 1;
}

static u32 llc_of(s32 cpu)
{
	if (cpu < 0 || cpu >= STORELAND_MAX_CPUS)
		return 0;
	return cpu_llc[(u32)cpu & (STORELAND_MAX_CPUS - 1)];
}

/* Can @p be put on @cpu's local DSQ without the kernel rejecting it? */
static bool can_run_on(const struct task_struct *p, s32 cpu)
{
	if (cpu < 0 || cpu >= nr_cpus)
		return false;
	if (!bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
		return false;
	return !is_migration_disabled(p) || cpu == scx_bpf_task_cpu(p);
}

/* The @idx-th CPU of @llc; the masks keep the verifier's bounds obvious. */
static s32 llc_cpu(u32 llc, u32 idx)
{
	return llc_cpus[llc & (STORELAND_MAX_LLCS - 1)][idx & (STORELAND_MAX_LLC_CPUS - 1)];
}

/*
 * Walk @cpu over the CPUs of @llc, @i counting them: a constant bound for
 * the verifier, a break at the LLC's size.
 */
#define for_each_llc_cpu(i, cpu, llc)						\
	bpf_for(i, 0, STORELAND_MAX_LLC_CPUS)					\
		if ((i) >= llc_nr_cpus[(llc) & (STORELAND_MAX_LLCS - 1)])	\
			break;							\
		else if (((cpu) = llc_cpu((llc), (i))), true)

/* May @p run on every CPU, so that any CPU of any LLC will do? */
static bool runs_anywhere(const struct task_struct *p)
{
	return p->nr_cpus_allowed >= nr_cpus && !is_migration_disabled(p);
}

static bool llc_allows(const struct task_struct *p, u32 llc)
{
	s32 cpu;
	u32 i;

	if (llc >= STORELAND_MAX_LLCS)
		return false;
	for_each_llc_cpu(i, cpu, llc) {
		if (can_run_on(p, cpu))
			return true;
	}
	return false;
}

/*
 * The LLC whose queue @p should wait in: @want if some CPU there may run @p,
 * else the LLC of a CPU it may use. A queue no allowed CPU reads would strand
 * the task until the watchdog fires.
 */
static u32 usable_llc(const struct task_struct *p, s32 want)
{
	s32 cpu = scx_bpf_task_cpu(p);
	u32 llc;

	if (want >= 0 && want < nr_llcs && runs_anywhere(p))
		return want;
	if (want >= 0 && want < nr_llcs && llc_allows(p, want))
		return want;

	COUNT(affinity_redirects);
	if (!can_run_on(p, cpu))
		cpu = bpf_cpumask_any_distribute(p->cpus_ptr);
	llc = llc_of(cpu);
	return llc < nr_llcs ? llc : 0;
}

#endif /* __STORELAND_COMMON_BPF_H */
