/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: the kernel side of a sched_ext scheduler whose policy lives
 * in user space.
 *
 * What the kernel sees:
 *
 *   wake-up ─► select_cpu ──(idle CPU)──────────────────────► local DSQ   (fast path)
 *                 │
 *                 └► enqueue ─► ring "queued" ─► Rust policy ─► user ring "decisions"
 *                      │                                              │
 *                      │ per-CPU kthreads, our own threads,            ▼ ops.dispatch
 *                      │ ring full / user space late                  per-LLC DSQ (by deadline)
 *                      └──────────────► per-LLC DSQ (BPF deadline) ◄──┘ or an idle CPU
 *
 * Each CPU pulls from its own LLC (CCX) queue first and steals from the other
 * LLCs only when its own is empty, so tasks stay on their L3 unless a CPU
 * would otherwise idle. The runtime accounting that the kernel's
 * update_curr() does for CFS happens here in running/tick/stopping and feeds
 * both the user-space policy (through the queued records) and the fallback.
 *
 * Nothing on a task's path ever waits for user space: if the ring is full or
 * the policy loop has not drained it for usersched_late_ns, BPF queues the
 * task itself.
 */
#include <scx/common.bpf.h>
#include <bpf_experimental.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

UEI_DEFINE(uei);

/* DSQ ids: one queue for the policy loop, one per CPU. */
#define USERSCHED_DSQ	0x10000ULL
#define CPU_DSQ_BASE	0x20000ULL
#define CPU_DSQ(cpu)	(CPU_DSQ_BASE + (cpu))

/* Unread reviews that wake the policy loop: a quarter of the ring. */
#define REVIEW_WAKEUP_BYTES	(sizeof(struct queued_task) * STORELAND_RING_ENTRIES / 4)

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
/* The policy loop was put in USERSCHED_DSQ and has not run since. */
volatile bool usersched_queued;
volatile u64 usersched_last_drain_ns;	/* written by the policy loop (CLOCK_MONOTONIC) */
volatile u64 decisions_submitted;	/* bumped by the policy loop after it submits decisions */
u64 decisions_seen;			/* decisions_submitted at the last full drain */
u32 drain_first_count;			/* always 0; see apply_decisions() */
u64 loop_woken_at_ns;			/* first wake-up of the policy loop since its last drain */
u64 vtime_now;				/* largest vtime of any task that started running */
u32 hardirq_bits;			/* preempt_count bits of hard IRQ context, learned */
u64 llc_last_scan_ns[STORELAND_MAX_LLCS];	/* last starvation check of each LLC's queues */

/* Tasks waiting for a decision, kernel -> user. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, STORELAND_RING_ENTRIES * sizeof(struct queued_task));
} queued SEC(".maps");

/* Decisions, user -> kernel. */
struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, STORELAND_RING_ENTRIES * sizeof(struct dispatch_decision));
} decisions SEC(".maps");

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

/*
 * Claim an idle CPU of @llc that may run @p, or -1. A task that may run
 * anywhere asks the kernel's idle mask for one, which takes an atomic only on
 * a CPU it found idle; testing and clearing each CPU in turn would write the
 * shared idle mask once per CPU of the CCX (16 on Genoa) at every wake-up
 * that finds none. With SMT, a CPU of a whole idle core comes first: an idle
 * CPU whose sibling runs a CPU hog shares that core's execution units.
 */
static s32 claim_idle_in_llc(const struct task_struct *p, u32 llc)
{
	u32 i, n, start;

	if (llc >= STORELAND_MAX_LLCS)
		return -1;
	if (runs_anywhere(p)) {
		const struct cpumask *cpus = llc_mask(llc);
		s32 cpu;

		if (cpus) {
			if (smt_enabled) {
				cpu = scx_bpf_pick_idle_cpu(cpus, SCX_PICK_IDLE_CORE);
				if (cpu >= 0) {
					COUNT(idle_core_picks);
					return cpu;
				}
			}
			return scx_bpf_pick_idle_cpu(cpus, 0);
		}
	}
	n = llc_nr_cpus[llc];
	if (!n || n > STORELAND_MAX_LLC_CPUS)
		return -1;
	start = bpf_get_prandom_u32() % n;
	bpf_for(i, 0, STORELAND_MAX_LLC_CPUS) {
		s32 cpu;

		if (i >= n)
			break;
		cpu = llc_cpu(llc, (start + i) % n);
		if (can_run_on(p, cpu) && scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -1;
}

/*
 * scx_bpf_locked_rq() came in 6.18, before the ext deadline server (the
 * only reason to ask), so an older kernel has no need of the answer.
 */
struct rq *scx_bpf_locked_rq___storeland(void) __ksym __weak;

/* An RT task waits on or runs on the runqueue this callback holds. */
static bool rt_queued_on_locked_rq(void)
{
	struct rq *rq;

	if (!bpf_ksym_exists(scx_bpf_locked_rq___storeland))
		return false;
	rq = scx_bpf_locked_rq___storeland();
	return rq && rq->rt.rt_nr_running;
}

/*
 * A higher class holds @cpu, or an RT task waits there for the end of an
 * ext server window (which cleared the released flag). The kfunc is asked
 * only on a CPU taken since it last had no RT task queued, so a machine
 * without RT work pays a load for it. Call with @cpu's runqueue locked
 * (ops.enqueue of a task on @cpu).
 */
static bool cpu_held_by_higher_class(s32 cpu)
{
	struct cpu_state *cs = cpu_state_of(cpu);

	if (!cs || !cs->contested)
		return false;
	if (cs->released || rt_queued_on_locked_rq())
		return true;
	cs->contested = 0;
	return false;
}

/*
 * @cs's current task is being preempted for a task of @class: mark it so at
 * once, so that concurrent wake-ups pick another victim, and so that
 * ops.stopping requeues the preempted task with its decision.
 */
static void mark_preempted(struct cpu_state *cs, u32 class)
{
	cs->running_class = class;
	cs->running_hog = 0;
	cs->preempt_pending = 1;
}

/*
 * Every CPU of @llc that may run @p is busy: pick the one that has run
 * @victim_class work (only CPU hogs with @hogs_only) the longest, or -1.
 * Latency-critical work is never a victim. The victim is marked at once so
 * that concurrent wake-ups pick another one.
 */
static s32 claim_victim(const struct task_struct *p, u32 llc, u32 victim_class,
			bool hogs_only)
{
	u64 oldest = (u64)-1;
	struct cpu_state *vs;
	s32 victim = -1;
	u32 i, n;

	if (llc >= STORELAND_MAX_LLCS)
		return -1;
	n = llc_nr_cpus[llc];
	bpf_for(i, 0, STORELAND_MAX_LLC_CPUS) {
		struct cpu_state *cs;
		s32 cpu;

		if (i >= n)
			break;
		cpu = llc_cpu(llc, i);
		cs = cpu_state_of(cpu);
		if (!cs || cs->running_class != victim_class || !can_run_on(p, cpu) ||
		    (hogs_only && !cs->running_hog))
			continue;
		if (cs->running_since < oldest) {
			oldest = cs->running_since;
			victim = cpu;
		}
	}
	vs = cpu_state_of(victim);
	if (!vs)
		return -1;
	mark_preempted(vs, STORELAND_CLASS_LATCRIT);
	return victim;
}

static s32 claim_batch_victim(const struct task_struct *p, u32 llc)
{
	return claim_victim(p, llc, STORELAND_CLASS_BATCH, false);
}

/*
 * A CPU for the policy loop, which everything else waits on: a CPU hog
 * first, then any batch work, then interactive work, in its own LLC first.
 * Hogs first: batch work also counts tasks that sleep on I/O but compute
 * for long per wake-up (fio at queue depth 16 in the VM), whose I/Os wait
 * while they are off the CPU; taking the CPU from a hog instead cut fio's
 * p99 next to hogs by about 10% there. Interactive work too: with few CPUs
 * all running message-passing tasks (hackbench on 2 vCPUs), waiting for one
 * of their slices to end made every batch of decisions late and hackbench
 * 8 times slower than under EEVDF.
 */
static s32 claim_loop_victim(const struct task_struct *p)
{
	u32 home = llc_of(scx_bpf_task_cpu(p)), i;
	s32 cpu;

	bpf_for(i, 0, STORELAND_MAX_LLCS) {
		if (i >= nr_llcs)
			break;
		cpu = claim_victim(p, (home + i) % nr_llcs, STORELAND_CLASS_BATCH, true);
		if (cpu >= 0)
			return cpu;
	}
	bpf_for(i, 0, 2 * STORELAND_MAX_LLCS) {
		u32 n = i / 2, llc, class;

		if (n >= nr_llcs)
			break;
		llc = (home + n) % nr_llcs;
		class = i % 2 ? STORELAND_CLASS_INTERACTIVE : STORELAND_CLASS_BATCH;
		cpu = claim_victim(p, llc, class, false);
		if (cpu >= 0)
			return cpu;
	}
	return -1;
}

static void count_queued(struct task_ctx *tctx, s32 cpu)
{
	u32 c = (u32)cpu & (STORELAND_MAX_CPUS - 1);

	/* The atomics order the stores: a task flagged names its CPU. */
	tctx->queued_cpu = c;
	__sync_fetch_and_add(&cpu_pending[c], 1);
	__sync_fetch_and_add(&llc_pending[llc_of(c) & (STORELAND_MAX_LLCS - 1)], 1);
	tctx->in_llc_queue = true;
}

static void uncount_queued(struct task_ctx *tctx)
{
	u32 c = tctx->queued_cpu & (STORELAND_MAX_CPUS - 1);

	if (!tctx->in_llc_queue)
		return;
	tctx->in_llc_queue = false;
	__sync_fetch_and_sub(&cpu_pending[c], 1);
	__sync_fetch_and_sub(&llc_pending[llc_of(c) & (STORELAND_MAX_LLCS - 1)], 1);
}

/* Whether some queue of @llc may hold a task (see llc_pending). */
static bool llc_may_have_work(u32 llc)
{
	return llc_pending[llc & (STORELAND_MAX_LLCS - 1)] != 0;
}

static bool cpu_may_have_work(s32 cpu)
{
	return cpu_pending[(u32)cpu & (STORELAND_MAX_CPUS - 1)] != 0;
}

/* Refresh what user space sees waiting in @cpu's queue (it sums them per LLC). */
static void note_queue(s32 cpu)
{
	if (cpu < 0 || cpu >= STORELAND_MAX_CPUS)
		return;
	cpu_nr_queued[(u32)cpu & (STORELAND_MAX_CPUS - 1)] = scx_bpf_dsq_nr_queued(CPU_DSQ(cpu));
}

/* How long @cpu's queue looks to placement: a CPU a higher class holds, last. */
static u64 queue_len(s32 cpu)
{
	struct cpu_state *cs = cpu_state_of(cpu);
	u64 len = cpu_pending[(u32)cpu & (STORELAND_MAX_CPUS - 1)];

	return cs && cs->released ? len + STORELAND_MAX_CPUS : len;
}

/*
 * The CPU of @llc whose queue @p waits in: the one it is on, where taking it
 * moves it between no run queues, unless a higher class holds that CPU or
 * its queue is longer than the LLC's shortest by more than a quarter and one:
 * then that shortest one. Without the balance, three hogs queued on one CPU
 * would share it while a fourth had the CPU next to it alone; with a
 * tolerance, a CPU's own tasks mostly stay. The shortest queue is a hint that
 * ops.dispatch() refreshes (take_from_llc()), so that placing loops over no
 * CPUs. Global, so the verifier checks it once: inlined at every placement,
 * one inside the ring buffer's drain callback (walked like a loop), it made
 * the program take 3-4x as long to attach (40-80 s against 13-18 s next to
 * stress-ng in the VM).
 */
__noinline s32 queue_cpu(struct task_struct *p __arg_trusted, u32 llc)
{
	s32 cpu = scx_bpf_task_cpu(p), shortest;
	const struct cpumask *cpus;

	if (llc >= STORELAND_MAX_LLCS)
		return cpu;
	shortest = llc_shortest_cpu[llc];
	if (llc_of(shortest) != llc || !can_run_on(p, shortest))
		shortest = -1;
	if (llc_of(cpu) == llc && can_run_on(p, cpu)) {
		u64 own = queue_len(cpu), fewest;

		if (shortest < 0)
			return cpu;
		fewest = queue_len(shortest);
		return own <= fewest + 1 + fewest / 4 ? cpu : shortest;
	}
	if (shortest >= 0)
		return shortest;
	/* Not on this LLC: any CPU of it that @p may use (usable_llc() found one). */
	cpus = llc_mask(llc);
	if (cpus) {
		s32 c = bpf_cpumask_any_and_distribute(cpus, p->cpus_ptr);

		if (can_run_on(p, c))
			return c;
	}
	return cpu;
}

/*
 * Queue @p in a queue of @llc ordered by @deadline: an idle CPU's, which is
 * woken, or else the one queue_cpu() picks. With @preempt (a
 * latency-critical task), @p goes straight to an idle CPU of the LLC, or
 * else to the local queue of a CPU running batch work, which is preempted:
 * it runs next there, whatever that CPU's queue holds.
 */
static void queue_in_llc(struct task_struct *p, s32 want_llc, u64 slice, u64 deadline,
			 bool preempt)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	u32 llc = usable_llc(p, want_llc);
	s32 cpu, target;

	if (tctx)
		tctx->deadline = deadline;

	cpu = claim_idle_in_llc(p, llc);
	if (preempt) {
		if (cpu >= 0) {
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, 0);
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
			return;
		}
		cpu = claim_batch_victim(p, llc);
		if (cpu >= 0) {
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, 0);
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
			COUNT(preemptions);
			return;
		}
	}

	target = cpu >= 0 ? cpu : queue_cpu(p, llc);
	if (tctx)
		count_queued(tctx, target);
	scx_bpf_dsq_insert_vtime(p, CPU_DSQ(target), slice, deadline, 0);
	note_queue(target);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

static u64 clamp_slice(u64 slice)
{
	if (slice < slice_min_ns)
		return slice_min_ns;
	if (slice > slice_max_ns)
		return slice_max_ns;
	return slice;
}

/*
 * Account the runtime since the last accounting point: this is sched_ext's
 * update_curr(). vtime advances inversely to the task's weight.
 */
static void charge_runtime(struct task_struct *p, struct task_ctx *tctx, u64 now)
{
	u64 delta = now > tctx->charged_at ? now - tctx->charged_at : 0;
	u32 weight = p->scx.weight ? p->scx.weight : 100;

	tctx->charged_at = now;
	tctx->exec_runtime += delta;
	tctx->stint_runtime += delta;
	tctx->solo_runtime += delta;
	tctx->vtime += delta * 100 / weight;
}

/*
 * Deadline and slice of @p in its cached class: the same formulas as the
 * policy's Policy::deadline() and Policy::slice(), with its parameters.
 */
static u64 task_deadline(const struct task_struct *p, const struct task_ctx *tctx)
{
	u32 weight = p->scx.weight ? p->scx.weight : 100;
	u64 lag = tctx->exec_runtime < max_lag_ns ? tctx->exec_runtime : max_lag_ns;

	lag = lag * 100 / weight;
	if (lag > max_lag_ns)
		lag = max_lag_ns;
	return tctx->vtime + class_offset_ns[tctx->class % STORELAND_NR_CLASSES] + lag;
}

/*
 * Pure computation: it ran max_lag_ns without sleeping, and nothing waited
 * on it meanwhile (it woke no task). A producer that never sleeps but keeps
 * waking consumers (a hackbench sender) is not one: cutting its turns short
 * cuts the batches its consumers get.
 */
static bool is_cpu_hog(const struct task_ctx *tctx)
{
	return tctx->solo_runtime >= max_lag_ns;
}

/* What llc_load() reports besides the CPUs running CPU hogs (the low 16 bits). */
#define LLC_HOGS	0xffffU
#define LLC_IDLE_CPU	(1U << 16)	/* one of its CPUs runs nothing */
#define LLC_IDLE_CORE	(1U << 17)	/* one of its cores runs nothing on any CPU */
#define LLC_CORE_SHARED	(1U << 18)	/* another CPU of @cpu's core runs a CPU hog */

static bool runs_hog(s32 cpu)
{
	struct cpu_state *cs = cpu_state_of(cpu);

	return cs && cs->running_class != STORELAND_CLASS_NONE && cs->running_hog;
}

/*
 * The CPUs of @llc but @cpu that run CPU hogs, with the flags above (the
 * idle ones as the kernel's idle masks have them). Global, so the verifier
 * checks it once: hog_spread_llc() calls it in a loop over the LLCs.
 */
__noinline u32 llc_load(u32 llc, s32 cpu)
{
	const struct cpumask *idle, *idle_smt;
	u32 i, out = 0;
	s32 c;

	if (llc >= STORELAND_MAX_LLCS)
		return 0;
	idle = scx_bpf_get_idle_cpumask();
	idle_smt = scx_bpf_get_idle_smtmask();
	for_each_llc_cpu(i, c, llc) {
		if (c == cpu)
			continue;
		if (bpf_cpumask_test_cpu(c, idle)) {
			out |= LLC_IDLE_CPU;
			if (smt_enabled && bpf_cpumask_test_cpu(c, idle_smt))
				out |= LLC_IDLE_CORE;
			continue;
		}
		if (!runs_hog(c))
			continue;
		out++;
		if (smt_enabled && cpu >= 0 &&
		    cpu_core[c & (STORELAND_MAX_CPUS - 1)] == cpu_core[cpu & (STORELAND_MAX_CPUS - 1)])
			out |= LLC_CORE_SHARED;
	}
	scx_bpf_put_idle_cpumask(idle_smt);
	scx_bpf_put_idle_cpumask(idle);
	return out;
}

/*
 * The LLC a CPU hog on @cpu, whose slice ran out with nothing else waiting
 * for @cpu, moves to, or -1: the same rule as Policy::hog_spread_target() in
 * policy.rs. The LLC with the fewest CPU hogs, if that is balance_hysteresis
 * fewer than its own (twice that in another NUMA node; the first in steal
 * order among equals) and one of its CPUs is idle; else, if another hog
 * runs on its core, the LLC of a whole idle core: its own, or one with fewer
 * hogs. Counted in hogs, not busy CPUs: the tasks that come and go would make
 * hogs move at their every run. Nothing waits in any queue when this
 * happens, so neither stealing nor user space's queue balance sees it:
 * stress-ng's hogs, forked side by side on a Genoa-shaped VM (12 L3s of 1-2
 * cores of 2 threads), stayed on 9 of 12 cores, or 6 hogs in 3-5 of 12 L3s,
 * at times two on one core, where EEVDF gave each its own core and L3.
 */
static s32 hog_spread_llc(const struct task_struct *p, const struct task_ctx *tctx, s32 cpu)
{
	u32 llc = llc_of(cpu), mine, hogs, fewest = 0, i;
	s32 best = -1, core_llc = -1;
	const struct cpumask *idle;
	bool any_idle;

	if (!is_cpu_hog(tctx) || !runs_anywhere(p) || llc >= STORELAND_MAX_LLCS)
		return -1;
	/* A machine with no idle CPU, where hogs usually are, stops here. */
	idle = scx_bpf_get_idle_cpumask();
	any_idle = !bpf_cpumask_empty(idle);
	scx_bpf_put_idle_cpumask(idle);
	if (!any_idle)
		return -1;

	mine = llc_load(llc, cpu);
	hogs = (mine & LLC_HOGS) + 1;	/* itself */
	bpf_for(i, 0, STORELAND_MAX_LLCS - 1) {
		u32 other, v, n, gap;

		if (i + 1 >= nr_llcs)
			break;
		other = llc_steal_order[llc][i] & (STORELAND_MAX_LLCS - 1);
		v = llc_load(other, -1);
		n = v & LLC_HOGS;
		gap = llc_node[other] == llc_node[llc] ? balance_hysteresis : 2 * balance_hysteresis;
		if ((v & LLC_IDLE_CPU) && n + gap <= hogs && (best < 0 || n < fewest)) {
			best = other;
			fewest = n;
		}
		if (core_llc < 0 && (v & LLC_IDLE_CORE) && n < hogs)
			core_llc = other;
	}
	if (best >= 0)
		return best;
	if (!(mine & LLC_CORE_SHARED))
		return -1;
	return mine & LLC_IDLE_CORE ? llc : core_llc;
}

/*
 * Claim the CPU of @llc that a spreading hog moves to: a whole idle core in
 * its own LLC (any other CPU there gains it nothing), else the LLC's pick.
 */
static s32 claim_spread_cpu(const struct task_struct *p, u32 llc, s32 cpu)
{
	const struct cpumask *cpus;

	if (llc != llc_of(cpu))
		return claim_idle_in_llc(p, llc);
	cpus = llc_mask(llc);
	return cpus ? scx_bpf_pick_idle_cpu(cpus, SCX_PICK_IDLE_CORE) : -1;
}

/* The same as Policy::slice() in policy.rs. */
static u64 task_slice(const struct task_struct *p, const struct task_ctx *tctx)
{
	u32 weight = p->scx.weight ? p->scx.weight : 100;

	return clamp_slice(class_slice_ns[tctx->class % STORELAND_NR_CLASSES] * weight / 100);
}

static void queue_fallback(struct task_struct *p, struct task_ctx *tctx)
{
	queue_in_llc(p, llc_of(scx_bpf_task_cpu(p)), task_slice(p, tctx), task_deadline(p, tctx), false);
}

/*
 * User space is late when it was woken for a record more than
 * usersched_late_ns ago and has not drained the ring since (stopped,
 * starved). Reviews do not wake it, so they never make it look late.
 */
static bool usersched_is_late(void)
{
	u64 woken = loop_woken_at_ns;

	if (!bpf_ringbuf_query(&queued, BPF_RB_AVAIL_DATA))
		return false;
	return woken > usersched_last_drain_ns &&
	       bpf_ktime_get_ns() - woken > usersched_late_ns;
}

/*
 * Wake the policy loop for a record it must answer, once per drain: records
 * behind the first one ride along. A review only wakes it when the ring
 * fills up; otherwise the loop reads it on its next wake-up (at most its
 * idle wait later), so a stream of BPF-placed wake-ups costs no loop runs.
 */
static u64 loop_wakeup_flag(bool urgent)
{
	if (!urgent && bpf_ringbuf_query(&queued, BPF_RB_AVAIL_DATA) < REVIEW_WAKEUP_BYTES)
		return BPF_RB_NO_WAKEUP;
	if (loop_woken_at_ns > usersched_last_drain_ns)
		return BPF_RB_NO_WAKEUP;	/* already woken, not drained yet */
	loop_woken_at_ns = bpf_ktime_get_ns();
	/*
	 * Forced: the ring's own wake-up only fires when the reader has
	 * caught up, and unread reviews may sit in front of this record.
	 */
	return BPF_RB_FORCE_WAKEUP;
}

/*
 * Hand @p to the user-space policy; false if the ring is full. With @placed,
 * BPF has queued @p itself and user space only reviews its class.
 */
static bool queue_to_user(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags,
			  bool placed)
{
	struct queued_task *q;
	u64 flags = placed ? STORELAND_TF_PLACED : 0;

	q = bpf_ringbuf_reserve(&queued, sizeof(*q), 0);
	if (!q)
		return false;

	if (tctx->woke_up)
		flags |= STORELAND_TF_WAKEUP;
	if (tctx->woke_up && tctx->irq_wake)
		flags |= STORELAND_TF_IRQ_WAKE;
	if (tctx->slept_in_iowait)
		flags |= STORELAND_TF_IOWAIT;
	if (p->flags & PF_KTHREAD)
		flags |= STORELAND_TF_KTHREAD;

	q->pid = p->pid;
	q->prev_cpu = scx_bpf_task_cpu(p);
	q->waker_cpu = tctx->woke_up ? tctx->waker_cpu : -1;
	q->nr_cpus_allowed = p->nr_cpus_allowed;
	q->enq_seq = tctx->enq_seq;
	q->enq_flags = enq_flags;
	q->flags = flags;
	q->vtime = tctx->vtime;
	q->exec_runtime = tctx->exec_runtime;
	q->last_runtime = tctx->last_runtime;
	q->avg_runtime = tctx->avg_runtime;
	q->avg_wake_gap = tctx->avg_wake_gap;
	q->class = tctx->class;
	q->enq_at = bpf_ktime_get_ns();
	q->weight = p->scx.weight;
	q->nr_wakeups = tctx->nr_wakeups;
	__builtin_memcpy(q->comm, p->comm, sizeof(q->comm));

	/* A review leaves the task's placement, and its wake-up, to BPF. */
	if (!placed) {
		tctx->user_seq = tctx->enq_seq;
		tctx->woke_up = false;
	}
	bpf_ringbuf_submit(q, loop_wakeup_flag(!placed));
	return true;
}

/*
 * Count a placement BPF makes from the cached class. When a review is due,
 * user space gets a copy to reclassify the task, but the task does not wait
 * for the answer (a round trip through a busy machine is what set the tail
 * latency). A class-only decision comes back and resets the count; if the
 * ring is full, the next placement tries again.
 */
static void count_bpf_placement(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	if (tctx->fast_placements >= review_every &&
	    !usersched_is_late() && queue_to_user(p, tctx, enq_flags, true))
		tctx->fast_placements = 0;
	tctx->fast_placements++;
}

/*
 * @cpu's state if it runs a CPU hog that has had slice_min in this turn and
 * nothing waits there, else NULL.
 */
static struct cpu_state *hog_turn_may_end(s32 cpu)
{
	struct cpu_state *cs = cpu_state_of(cpu);

	if (cs && !cpu_may_have_work(cpu) && cs->running_class != STORELAND_CLASS_NONE &&
	    cs->running_hog && !cs->preempt_pending && !cs->released &&
	    scx_bpf_now() - cs->running_since >= slice_min_ns)
		return cs;
	return NULL;
}

/*
 * @p woke on the CPU whose queue it would wait in, where a CPU hog has run
 * slice_min and nothing else waits: the hog's turn ends now, not at the
 * next tick, and @p runs next. The kernel reschedules this CPU on its way
 * out of the interrupt or wake-up IPI, so there is no IPI to pay, which is
 * what made kicking the hog's CPU from elsewhere cost the hogs. A
 * latency-critical task takes it too, instead of preempting another CPU.
 */
static bool end_local_hog_turn(struct task_struct *p, struct task_ctx *tctx)
{
	s32 cpu = bpf_get_smp_processor_id();
	struct cpu_state *cs;

	if (scx_bpf_task_cpu(p) != cpu || !can_run_on(p, cpu))
		return false;
	cs = hog_turn_may_end(cpu);
	if (!cs)
		return false;
	mark_preempted(cs, tctx->class);
	tctx->deadline = task_deadline(p, tctx);
	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p, tctx), SCX_ENQ_PREEMPT);
	COUNT(hog_turns_cut);
	return true;
}

/*
 * Hard IRQ context is a field of preempt_count whose place depends on the
 * kernel: on the VM's 7.3 kernel it is at bit 24, not 16, and
 * bpf_in_hardirq() still reads bit 16, so it missed nearly every NVMe
 * completion (a trace of fio's wake-ups showed preempt_count 0x1000004 from
 * the idle task, irq_wake false). The tick always runs in the timer's hard
 * IRQ: the lowest count bit set there, above the softirq byte, is
 * HARDIRQ_OFFSET, and the field is 4 bits wide.
 */
static void learn_hardirq_bits(void)
{
	u32 above_softirq;

	if (hardirq_bits)
		return;
	/* Bit 31 is x86's inverted need-resched flag, not a count. */
	above_softirq = (u32)get_preempt_count() & 0x7fff0000;
	if (above_softirq)
		hardirq_bits = (above_softirq & -above_softirq) * 0xf;
}

/* In hard IRQ context (once learned) or serving a softirq. */
static bool in_irq_context(void)
{
	u32 bits = hardirq_bits;

	return (bits && ((u32)get_preempt_count() & bits)) || bpf_in_serving_softirq();
}

/*
 * Whether a waking task waits on I/O: it slept in I/O wait, or an interrupt
 * (an NVMe completion) woke it. TaskObservation::woken_from_io() in policy.rs.
 */
static bool woken_from_io(const struct task_ctx *tctx)
{
	return tctx->slept_in_iowait || tctx->irq_wake;
}

/*
 * A task woken from I/O that wakeup_fast_path() places itself, whatever its
 * class: up to io_batch_max_runtime_ns per wake-up (the faster classes'
 * bounds are below it).
 */
static bool io_wakeup_placed_by_bpf(const struct task_ctx *tctx)
{
	return tctx->avg_runtime <= io_batch_max_runtime_ns;
}

/*
 * The class the policy gives a task as it wakes (Policy::classify() before
 * it has run in this activation): its runtime per wake-up and whether it
 * woke from I/O.
 */
static u32 wakeup_class(const struct task_ctx *tctx)
{
	if (woken_from_io(tctx) && tctx->avg_runtime <= latcrit_max_runtime_ns)
		return STORELAND_CLASS_LATCRIT;
	if (tctx->avg_runtime <= interactive_max_runtime_ns)
		return STORELAND_CLASS_INTERACTIVE;
	return STORELAND_CLASS_BATCH;
}

/*
 * The CPU whose queue a waking task joins: for a wake-up from an interrupt,
 * the CPU that took it (where the completions arrive), else the task's own.
 */
static s32 wake_home_cpu(struct task_struct *p, struct task_ctx *tctx)
{
	return tctx->irq_wake ? tctx->waker_cpu : scx_bpf_task_cpu(p);
}

/*
 * A latency-critical or interactive task woke up: BPF places it at once, as
 * the policy would for its class, in the LLC where its completion arrived
 * (or where it last ran), ahead of batch work. A latency-critical task also
 * preempts batch work if no CPU there is idle. User space sees it again
 * every review_every wake-ups, or as soon as it runs long. A round trip per
 * wake-up through a busy machine set the tail latency of I/O, and made
 * message passing (hackbench) 2-4 times slower than under EEVDF.
 *
 * The class is the policy's rule applied at the wake-up (wakeup_class() in
 * ops.runnable), not one cached from before: a task whose work per wake-up
 * drifts across a threshold (fio at queue depth 16 in the VM moves between
 * all three) used to wait for user space to say so, about 30 times a second
 * next to CPU hogs, and each of those waits held its completions.
 *
 * So is batch work woken from I/O that computes for a while per wake-up
 * (up to io_batch_max_runtime_ns: fio at queue depth 16 in the VM, a
 * database thread parsing what it read): its next I/Os wait until it runs.
 * It keeps its batch deadline and preempts nothing; what it saves is the
 * round trip, and the policy loop's own run, which took a CPU from other
 * such tasks at every wake-up (fio qd16 alone 0.86x EEVDF's IOPS with the
 * round trip, about 0.96x without).
 */
static bool wakeup_fast_path(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	s32 home;

	if (!tctx->woke_up)
		return false;
	if (tctx->class == STORELAND_CLASS_BATCH &&
	    (!woken_from_io(tctx) || !io_wakeup_placed_by_bpf(tctx)))
		return false;

	count_bpf_placement(p, tctx, enq_flags);
	if (end_local_hog_turn(p, tctx))
		return true;
	home = wake_home_cpu(p, tctx);
	queue_in_llc(p, llc_of(home), task_slice(p, tctx), task_deadline(p, tctx),
		     tctx->class == STORELAND_CLASS_LATCRIT);
	return true;
}

/* @p woke on an idle CPU: it runs there next, no decision is worth the wait. */
static s32 run_on_idle_cpu(struct task_struct *p, s32 cpu)
{
	scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
	if (is_usersched_task(p))
		COUNT(fastpath_self);
	else
		COUNT(fastpath_idle);
	return cpu;
}

/*
 * An interrupt (an NVMe completion) woke @p on the CPU it last ran on, and
 * interrupted that CPU's idle task: @p runs there, where its completion
 * arrived, with no IPI. The kernel's idle picker sends it elsewhere whenever
 * that CPU's idle bit is already clear, at the cost of a rescheduling IPI
 * and a migration: fio at queue depth 1 in the VM woke onto another CPU
 * about 400 times a second that way, 4 times as often as under EEVDF. The
 * caller keeps @p there only if the bit is clear because it is not set
 * again yet, not because another wake-up claimed the CPU.
 */
static bool irq_on_own_idle_cpu(const struct task_struct *p, s32 prev_cpu, bool in_irq,
				s32 this_cpu)
{
	return in_irq && this_cpu == prev_cpu && bpf_get_current_task_btf()->pid == 0 &&
	       can_run_on(p, prev_cpu);
}

/*
 * ops.select_cpu: pick the CPU a waking task should go to. An interrupt on
 * the task's own idle CPU keeps it there (irq_on_own_idle_cpu()); if the
 * kernel's LLC-aware idle picker finds an idle CPU, the task goes straight
 * there: no decision is worth an idle CPU's wait.
 *
 * With none idle, a wake-up from an interrupt (an NVMe completion) on a CPU
 * whose CPU hog has had slice_min comes to that CPU, where ops.enqueue ends
 * the hog's turn without an IPI (end_local_hog_turn()). It would otherwise
 * wait in a queue of this CCX for a tick or, latency-critical, preempt
 * another CPU with an IPI. fio at queue depth 16 next to CPU hogs in the
 * VM, three boots: IOPS 1.6%, 3.1% and 4.0% higher, a third fewer
 * preemption IPIs, p99 and the hogs' throughput unchanged within the noise.
 *
 * Else a synchronous wake-up (the waker hands over data and is
 * about to sleep: a pipe or socket reader) from another CCX brings the wakee
 * to the waker's CPU, to wait there, in the L3 that holds the data, as
 * EEVDF's wake_affine does; its CPU, not idle, gets no IPI either. Not a
 * task that slept on I/O: it stays where its completions arrive. Hackbench
 * in the VM (4 vCPUs in 2 L3s), 8 rounds interleaved in three boots: 0.73x,
 * 0.94x and 0.83x EEVDF's time, against 0.97x, 0.97x and 1.13x without.
 */
s32 BPF_STRUCT_OPS(storeland_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool in_irq = in_irq_context(), is_idle = false;
	s32 this_cpu = bpf_get_smp_processor_id(), cpu;

	if (irq_on_own_idle_cpu(p, prev_cpu, in_irq, this_cpu)) {
		if (scx_bpf_test_and_clear_cpu_idle(prev_cpu))
			return run_on_idle_cpu(p, prev_cpu);
		/*
		 * Not when another wake-up claimed it (two completions before
		 * the CPU left its idle task): @p would wait for that task's
		 * whole run, so the kernel's picker sends it on, to an idle CPU
		 * of its CCX first, as the simulator does. fio at queue depth
		 * 1 in the VM: about 3,000 such wake-ups in an 8 s run, and
		 * fio's wait to run halved.
		 */
		if (!scx_bpf_dsq_nr_queued(SCX_DSQ_LOCAL)) {
			COUNT(irq_idle_kept);
			return run_on_idle_cpu(p, prev_cpu);
		}
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		return run_on_idle_cpu(p, cpu);
	if (in_irq) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		/* Only a wake-up that wakeup_fast_path() places ends the turn. */
		if (tctx && io_wakeup_placed_by_bpf(tctx) && !is_usersched_task(p) &&
		    can_run_on(p, this_cpu) && hog_turn_may_end(this_cpu)) {
			COUNT(irq_wakeups_pulled);
			return this_cpu;
		}
	}
	if (wake_flags & SCX_WAKE_SYNC) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		if (tctx && !tctx->slept_in_iowait && llc_of(this_cpu) != llc_of(cpu) &&
		    can_run_on(p, this_cpu)) {
			COUNT(sync_wakeups_pulled);
			return this_cpu;
		}
	}
	return cpu;
}

/*
 * ops.enqueue: @p is runnable and needs a CPU. Everything that must not wait
 * on user space is queued here; the rest goes to the policy.
 */
void BPF_STRUCT_OPS(storeland_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (!tctx) {
		scx_bpf_error("task %d has no context", p->pid);
		return;
	}
	tctx->enq_seq++;
	tctx->user_seq = 0;
	/* Dequeued before it ran (a property change): it left its queue. */
	uncount_queued(tctx);
	/* Re-enqueued from a CPU a higher class took: it has been waiting since. */
	if (!(enq_flags & (SCX_ENQ_WAKEUP | SCX_ENQ_REENQ)))
		tctx->runnable_at = scx_bpf_now();

	/*
	 * SCX_ENQ_LAST: its slice ran out but nothing else wants this CPU
	 * (SCX_OPS_ENQ_LAST is set so that this case is ours to handle, not a
	 * kernel fallback): keep it running here, no decision needed.
	 */
	if (enq_flags & SCX_ENQ_LAST) {
		s32 cpu = scx_bpf_task_cpu(p), llc = hog_spread_llc(p, tctx, cpu), to;

		/* ops.dispatch left it for this (hog_spread_llc()). */
		to = llc >= 0 ? claim_spread_cpu(p, llc, cpu) : -1;
		if (to >= 0 && to != cpu) {
			struct cpu_state *cs = cpu_state_of(to);

			/* Counted there at once, so that other hogs go elsewhere. */
			if (cs) {
				cs->running_class = tctx->class;
				cs->running_hog = 1;
				cs->running_vtime = tctx->vtime;
			}
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | to, task_slice(p, tctx), enq_flags);
			scx_bpf_kick_cpu(to, SCX_KICK_IDLE);
			COUNT(hog_spreads);
			return;
		}
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, task_slice(p, tctx), enq_flags);
		COUNT(fastpath_requeue);
		return;
	}

	/*
	 * The policy loop itself: everything else waits on it, so it gets its
	 * own queue that every CPU checks first. A wake-up with no idle CPU
	 * preempts the CPU it last ran on.
	 */
	if (is_usersched_loop(p)) {
		s32 cpu;

		/* Set before the insertion, cleared when it runs (ops.running). */
		usersched_queued = true;
		scx_bpf_dsq_insert(p, USERSCHED_DSQ, slice_ns, enq_flags);
		COUNT(fastpath_self);
		if (!(enq_flags & SCX_ENQ_WAKEUP))
			return;
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
		if (cpu < 0)
			cpu = claim_loop_victim(p);
		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		return;
	}

	/* Our other threads (stats, signal handling) must not depend on us. */
	if (is_usersched_task(p)) {
		COUNT(fastpath_self);
		queue_fallback(p, tctx);
		return;
	}

	/*
	 * Per-CPU kthreads (ksoftirqd, NVMe completion kworkers) stay local,
	 * except when a higher class took their CPU and sent them back
	 * (cpu_release): put back on that local queue they would be sent back
	 * at every RT wake-up there, and the kernel ejects a scheduler whose
	 * task is re-enqueued 256 times without running. That CPU's queue holds
	 * them for its next pick.
	 */
	if (is_pcpu_kthread(p)) {
		if (enq_flags & SCX_ENQ_REENQ)
			queue_fallback(p, tctx);
		else
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, enq_flags);
		COUNT(fastpath_kthread);
		return;
	}

	if (wakeup_fast_path(p, tctx, enq_flags)) {
		if (tctx->class == STORELAND_CLASS_LATCRIT)
			COUNT(fastpath_latcrit);
		else if (tctx->class == STORELAND_CLASS_INTERACTIVE)
			COUNT(fastpath_interactive);
		else
			COUNT(fastpath_io_batch);
		return;
	}

	/*
	 * Preempted before its slice ran out (by a latency-critical task or a
	 * higher scheduling class): its decision still stands, so requeue it
	 * where it was with the rest of its slice.
	 */
	if (!(enq_flags & SCX_ENQ_WAKEUP) && tctx->preempted && tctx->deadline) {
		tctx->preempted = false;
		queue_in_llc(p, llc_of(scx_bpf_task_cpu(p)), task_slice(p, tctx),
			     task_deadline(p, tctx), false);
		COUNT(requeued);
		return;
	}

	/*
	 * A slice ran out: BPF requeues the task in its CCX as the policy
	 * would for its cached class, and hands it to user space only every
	 * review_every slices. This keeps the slice-expiry rate of a saturated
	 * 192-CPU box off the ring, and a latency-critical task that used up
	 * its short slice keeps its early deadline instead of waiting for a
	 * round trip while batch work takes its CPU. User space still
	 * reclassifies and rebalances every task regularly.
	 */
	if (!(enq_flags & SCX_ENQ_WAKEUP) && tctx->deadline &&
	    tctx->fast_placements < review_every) {
		tctx->fast_placements++;
		queue_in_llc(p, llc_of(scx_bpf_task_cpu(p)), task_slice(p, tctx),
			     task_deadline(p, tctx), false);
		COUNT(fastpath_requeue);
		return;
	}

	if (usersched_is_late()) {
		COUNT(congested_late);
		queue_fallback(p, tctx);
		return;
	}

	/*
	 * A task that may run on one CPU only leaves user space no placement
	 * to choose, and one that waits there for an answer is what goes
	 * wrong when a higher class holds its CPU: the kernel's ext deadline
	 * server picks there in short windows, and an empty pick stops the
	 * server until the CPU's SCHED_EXT count next rises from zero. While
	 * the task waits for user space it keeps that count above zero, and
	 * so does a per-CPU kworker that wakes there meanwhile, in the CPU's
	 * local queue where nothing but the stopped server would run it: the
	 * watchdog ejected us that way with two SCHED_FIFO spinners over a
	 * CCX. The released flag alone does not cover it (a server window
	 * clears it in cpu_acquire, and slices run out inside the window), so
	 * an RT task queued on the task's CPU counts too. BPF keeps such a
	 * task where a pick finds it; user space reviews its class every
	 * review_every placements.
	 */
	if (p->nr_cpus_allowed == 1) {
		count_bpf_placement(p, tctx, enq_flags);
		COUNT(fastpath_requeue);
		queue_fallback(p, tctx);
		return;
	}
	if (cpu_held_by_higher_class(scx_bpf_task_cpu(p))) {
		count_bpf_placement(p, tctx, enq_flags);
		COUNT(held_cpu_kept);
		queue_fallback(p, tctx);
		return;
	}

	if (!queue_to_user(p, tctx, enq_flags, false)) {
		COUNT(congested_ring_full);
		queue_fallback(p, tctx);
		return;
	}
	COUNT(queued_to_user);
}

/*
 * ops.dequeue: @p leaves BPF custody before being dispatched (affinity or
 * priority change, class change). A decision user space still holds for it
 * is now stale.
 */
void BPF_STRUCT_OPS(storeland_dequeue, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (tctx)
		tctx->user_seq = 0;
}

struct drain_ctx {
	u32 applied;
};

/*
 * Apply one user-space decision. A decision is stale when the task it names
 * is gone, was re-enqueued since (new enq_seq) or left our custody: it is
 * dropped, and the task's current record gets its own decision.
 */
static long apply_decision(struct bpf_dynptr *dynptr, void *context)
{
	struct drain_ctx *dc = context;
	struct dispatch_decision d;
	struct task_struct *p;
	struct task_ctx *tctx;

	dc->applied++;
	if (bpf_dynptr_read(&d, sizeof(d), dynptr, 0, 0)) {
		COUNT(stale_dropped);
		goto next;
	}

	p = bpf_task_from_pid(d.pid);
	if (!p) {
		COUNT(stale_dropped);
		goto next;
	}

	tctx = lookup_task_ctx(p);
	/* A review of a task BPF placed itself: it may have run and moved since. */
	if (tctx && (d.flags & STORELAND_DF_CLASS_ONLY)) {
		set_class(p, tctx, d.class);
		bpf_task_release(p);
		goto next;
	}
	if (!tctx || !d.enq_seq || tctx->user_seq != d.enq_seq) {
		COUNT(stale_dropped);
		bpf_task_release(p);
		goto next;
	}
	tctx->user_seq = 0;
	set_class(p, tctx, d.class);
	tctx->fast_placements = 0;

	if (d.cpu >= 0 && can_run_on(p, d.cpu) && scx_bpf_test_and_clear_cpu_idle(d.cpu)) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | d.cpu, clamp_slice(d.slice_ns), 0);
		scx_bpf_kick_cpu(d.cpu, SCX_KICK_IDLE);
	} else {
		s32 llc = d.llc >= 0 ? d.llc : (s32)llc_of(d.cpu >= 0 ? d.cpu : scx_bpf_task_cpu(p));

		queue_in_llc(p, llc, clamp_slice(d.slice_ns), d.deadline,
			     d.flags & STORELAND_DF_PREEMPT);
	}
	COUNT(user_dispatches);
	bpf_task_release(p);
next:
	/* Stay within dispatch_max_batch insertions per ops.dispatch(). */
	return dc->applied >= STORELAND_DRAIN_BATCH;
}

/* Move to @cpu the first task of @owner's queue that starves and may run there. */
static bool rescue_from(s32 cpu, s32 owner, u64 now, bool *seen)
{
	struct task_struct *p;
	bool moved = false;

	bpf_for_each(scx_dsq, p, CPU_DSQ(owner), 0) {
		struct task_ctx *tctx = lookup_task_ctx(p);

		if (!tctx || (s64)(now - tctx->runnable_at) < (s64)starve_ns)
			continue;
		*seen = true;
		if (!can_run_on(p, cpu))
			continue;	/* pinned elsewhere: that CPU must look too */
		if (scx_bpf_dsq_move(BPF_FOR_EACH_ITER, p, SCX_DSQ_LOCAL, 0)) {
			COUNT(starvation_rescues);
			moved = true;
			break;
		}
	}
	return moved;
}

/*
 * Starvation guard. Deadline order is fair among tasks whose vtimes are
 * comparable, but vtimes drift apart between queues and between very
 * different weights (renice churn: a nice -20 hog's vtime barely moves), and
 * a task behind them could wait for seconds, long enough for the kernel's
 * watchdog to eject the scheduler ("runnable task stall", or "watchdog
 * failed to check in" when the task is the watchdog's own kworker). So at
 * most every starve_scan_ns, one CPU of each LLC looks through its queues and
 * runs the first task that has waited longer than starve_ns and may run
 * there; while such a task is left, the next dispatch looks again.
 */
static bool rescue_starving(s32 cpu, u32 llc)
{
	u64 now = scx_bpf_now(), prev;
	u64 *last = &llc_last_scan_ns[llc & (STORELAND_MAX_LLCS - 1)];
	bool moved = false, seen = false;
	s32 owner;
	u32 i;

	prev = *last;
	if (now - prev < starve_scan_ns)
		return false;
	if (__sync_val_compare_and_swap(last, prev, now) != prev)
		return false;	/* another CPU of this LLC is looking */

	for_each_llc_cpu(i, owner, llc) {
		if (!cpu_may_have_work(owner))
			continue;
		if (rescue_from(cpu, owner, now, &seen)) {
			note_queue(owner);
			moved = true;
			break;
		}
	}
	/*
	 * While a starving task is left, the next dispatch of any CPU here
	 * looks again: a task pinned to a CPU that a higher class (RT)
	 * monopolises gets only the kernel's ext deadline server's short
	 * windows there, and one of them must find it.
	 */
	if (seen)
		*last = now - starve_scan_ns;
	return moved;
}

/*
 * Apply the decisions user space submitted since the last drain. Most
 * dispatches find none (a CPU going idle), and draining takes the ring's
 * busy flag, one cache line that every CPU of the machine would write on
 * every dispatch: only a CPU that sees a new submission drains. User space
 * bumps the count after it advanced the ring (a release store), and x86
 * keeps loads in order, so a CPU that sees the new count sees the records.
 */
static __always_inline void apply_decisions(void)
{
	u64 submitted = decisions_submitted;
	/*
	 * Started from a value the verifier cannot know: from a known 0 it
	 * walks the callback once per possible count and gives up.
	 */
	struct drain_ctx dc = { .applied = drain_first_count };
	long n;

	if (submitted == decisions_seen)
		return;
	decisions_seen = submitted;
	n = bpf_user_ringbuf_drain(&decisions, apply_decision, &dc, BPF_RB_NO_WAKEUP);
	/*
	 * Stopped at the batch limit, or another CPU held the ring: look
	 * again. (Reading dc.applied here instead would make the verifier
	 * track every count the callback can leave behind.)
	 */
	if (n < 0 || n >= STORELAND_DRAIN_BATCH)
		decisions_seen = submitted - 1;
}

/*
 * The first task of @owner's queue, or NULL: a hint, since it may be taken
 * at once. Lockless where the kernel has it (7.1), else read under the
 * queue's lock: every dispatch and every tick of a hog reads the head of
 * each queue of its CCX that may hold work, and an iterator takes each
 * queue's lock, which a CPU that is queueing there (or, in a VM, a vCPU its
 * host is not running) may hold.
 */
static __always_inline struct task_struct *queue_head(s32 owner)
{
	if (!cpu_may_have_work(owner))
		return NULL;
	return __COMPAT_scx_bpf_dsq_peek(CPU_DSQ(owner));
}

/* The deadline of the first task in @owner's queue, or -1 if it is empty. */
static u64 head_deadline(s32 owner)
{
	struct task_struct *p = queue_head(owner);

	return p ? p->scx.dsq_vtime : (u64)-1;
}

static bool take_from(s32 owner)
{
	if (!cpu_may_have_work(owner) || !scx_bpf_dsq_move_to_local(CPU_DSQ(owner), 0))
		return false;
	note_queue(owner);
	return true;
}

/* Take a task for @cpu from any queue of @llc but @skip's, or false. */
static bool take_any_in_llc(s32 cpu, u32 llc, s32 skip)
{
	u32 i, n = llc_nr_cpus[llc & (STORELAND_MAX_LLCS - 1)], start = cpu;

	bpf_for(i, 0, STORELAND_MAX_LLC_CPUS) {
		s32 owner;

		if (i >= n)
			break;
		/* Each CPU starts at a different one, so they do not all pile on the first. */
		owner = llc_cpu(llc, (start + i) % n);
		if (owner != skip && take_from(owner))
			return true;
	}
	return false;
}

/*
 * Take the next task for @cpu from its LLC: the first of its own queue,
 * where it moves between no run queues, unless the first task of another
 * queue of the LLC is due more than slice_max earlier, or its own is empty.
 * Each CPU keeps its own queue because two CPUs taking work from one shared
 * queue wait on each other's locks: in the VM, with a CCX's two vCPUs on one
 * host core, a shared CCX queue made hackbench 1.31-1.48x EEVDF's time,
 * queues per CPU 0.87-1.16x. Deadline order holds across the CCX within slice_max: a
 * latency-critical or interactive task behind batch work on a busy CPU is
 * taken by the next CPU of the CCX that dispatches, tasks of one class stay.
 * On the way, it notes the LLC's shortest queue for queue_cpu().
 */
static bool take_from_llc(s32 cpu, u32 llc)
{
	u64 own = head_deadline(cpu), best_dl = own, fewest = queue_len(cpu);
	s32 best = -1, shortest = cpu, owner;
	u32 i;

	for_each_llc_cpu(i, owner, llc) {
		u64 dl, len;

		if (owner == cpu)
			continue;
		len = queue_len(owner);
		if (len < fewest) {
			fewest = len;
			shortest = owner;
		}
		dl = head_deadline(owner);
		if (dl == (u64)-1)
			continue;
		if (own != (u64)-1 && dl + slice_max_ns >= own)
			continue;
		if (best < 0 || dl < best_dl) {
			best = owner;
			best_dl = dl;
		}
	}
	llc_shortest_cpu[llc & (STORELAND_MAX_LLCS - 1)] = shortest;
	if (best >= 0 && take_from(best))
		return true;
	if (take_from(cpu))
		return true;
	return take_any_in_llc(cpu, llc, cpu);
}

/*
 * ops.dispatch: @cpu needs work (the kernel's pick_next for this class).
 * Apply pending decisions, run the policy loop if it is waiting, then take
 * from this LLC's queues (take_from_llc()), then steal from the other LLCs,
 * those of this NUMA node first.
 * Returning empty-handed keeps @prev running if it still can.
 */
void BPF_STRUCT_OPS(storeland_dispatch, s32 cpu, struct task_struct *prev)
{
	u32 llc = llc_of(cpu), i;

	apply_decisions();

	if (usersched_queued && scx_bpf_dsq_move_to_local(USERSCHED_DSQ, 0)) {
		COUNT(usersched_runs);
		return;
	}

	if (llc_may_have_work(llc)) {
		if (rescue_starving(cpu, llc))
			return;
		if (take_from_llc(cpu, llc))
			return;
	}

	bpf_for(i, 0, STORELAND_MAX_LLCS - 1) {
		u32 victim;

		if (i + 1 >= nr_llcs)
			break;
		victim = llc_steal_order[llc & (STORELAND_MAX_LLCS - 1)][i];
		if (llc_may_have_work(victim) && take_any_in_llc(cpu, victim, -1)) {
			COUNT(llc_steals);
			return;
		}
	}

	/*
	 * Nothing else wants this CPU: @prev, whose slice ran out, runs on
	 * with a new one. With SCX_OPS_ENQ_LAST the kernel would otherwise
	 * come back empty-handed and only then re-enqueue @prev. An empty
	 * pick is harmless on an idle CPU, but when the kernel's ext deadline
	 * server picks on a CPU that an RT task holds, it stops the server
	 * for good (the CPU's SCHED_EXT count never drops to zero to restart
	 * it) and @prev, pinned there, waits until the watchdog ejects us.
	 */
	if (prev && (prev->scx.flags & SCX_TASK_QUEUED)) {
		struct task_ctx *tctx = lookup_task_ctx(prev);

		/*
		 * A CPU hog that should spread out: with its slice left at 0,
		 * the kernel hands it to ops.enqueue (SCX_ENQ_LAST), which
		 * moves it. Not on a CPU a higher class holds (see above).
		 */
		if (tctx && hog_spread_llc(prev, tctx, cpu) >= 0 &&
		    !cpu_held_by_higher_class(cpu))
			return;
		scx_bpf_task_set_slice(prev, tctx ? task_slice(prev, tctx) : slice_ns);
		COUNT(fastpath_requeue);
	}
}

/*
 * Called by the policy loop (BPF_PROG_TEST_RUN) after it submitted
 * decisions: wake one idle CPU so its ops.dispatch() applies them now
 * instead of at the next slice expiry. Busy CPUs apply them on their own.
 */
SEC("syscall")
int kick_idle_cpu(void *ctx)
{
	const struct cpumask *online = scx_bpf_get_online_cpumask();
	s32 cpu = scx_bpf_pick_idle_cpu(online, 0);

	scx_bpf_put_cpumask(online);
	if (cpu >= 0)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	return cpu;
}

/*
 * The least vtime a task keeps as it wakes to queue on @cpu: sleep_credit_ns
 * behind the fairness clock, or behind the task running on @cpu if that one
 * is further behind (by at most max_wake_credit_ns). The same as
 * Policy::wake_vtime_floor() in policy.rs.
 *
 * vtime_now is the largest vtime taken from any queue of the machine, and
 * more than a CCX's hogs moves it: low-weight tasks elsewhere (their vtime
 * runs fast), a CCX whose tasks get more CPU, sleepers lifted to it that run
 * past it. A sleeper lifted to it queues behind the hogs of its own CCX and
 * waits whole hog slices. In the VM (fio at queue depth 16 next to CPU
 * hogs), whole 8 s runs had waking fio threads queued behind a hog due over
 * 50 ms earlier 10-30 times a second (about none in the other runs), though
 * fio used less CPU than the hogs; those runs set the p99.
 */
static u64 wake_vtime_floor(s32 cpu)
{
	struct cpu_state *cs = cpu_state_of(cpu);
	u64 ref = vtime_now, lowest;

	if (cs && cs->running_class != STORELAND_CLASS_NONE && cs->running_vtime < ref) {
		lowest = ref > max_wake_credit_ns ? ref - max_wake_credit_ns : 0;
		ref = cs->running_vtime > lowest ? cs->running_vtime : lowest;
	}
	return ref > sleep_credit_ns ? ref - sleep_credit_ns : 0;
}

/*
 * ops.runnable: @p became runnable. On a wake-up, reset the per-wake runtime
 * and cap the vtime credit earned while asleep.
 */
void BPF_STRUCT_OPS(storeland_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	u64 min_vtime, now;

	if (!tctx)
		return;
	now = scx_bpf_now();
	tctx->runnable_at = now;
	if (!(enq_flags & SCX_ENQ_WAKEUP))
		return;

	tctx->woke_up = true;
	tctx->irq_wake = in_irq_context();
	if (tctx->irq_wake)
		COUNT(irq_wakeups);
	tctx->waker_cpu = bpf_get_smp_processor_id();
	if (tctx->nr_wakeups)
		tctx->avg_wake_gap = ewma(tctx->avg_wake_gap, now - tctx->woke_at);
	tctx->woke_at = now;
	tctx->nr_wakeups++;
	tctx->exec_runtime = 0;
	tctx->solo_runtime = 0;
	/*
	 * Its class for this activation, whichever path places it: a task
	 * that wakes to an idle CPU never passes ops.enqueue, and its cached
	 * class would still be the one a long run once demoted it to.
	 */
	set_class(p, tctx, wakeup_class(tctx));

	/* A task woken from task context: its waker is no CPU hog. */
	if (!tctx->irq_wake) {
		struct task_ctx *wctx = lookup_task_ctx(bpf_get_current_task_btf());

		if (wctx)
			wctx->solo_runtime = 0;
	}

	min_vtime = wake_vtime_floor(wake_home_cpu(p, tctx));
	if (tctx->vtime < min_vtime)
		tctx->vtime = min_vtime;
}

/* Log2 histogram bucket of a wait: bucket b holds [2^b - 1, 2^(b+1) - 1) us. */
static u32 latency_bucket(u64 wait_ns)
{
	u64 us = wait_ns / 1000 + 1;
	u32 b;

	for (b = 0; b < STORELAND_LAT_BUCKETS - 1; b++)
		if (us < (2ULL << b))
			break;
	return b & (STORELAND_LAT_BUCKETS - 1);
}

/*
 * Statistics of a task starting on this CPU: its wait, per class for a
 * wake-up; whether it changed LLC; whether a wakee runs on its waker's LLC.
 */
static void record_start(struct task_ctx *tctx, s32 cpu, u64 wait_ns)
{
	struct cpu_counters *c = my_counters();
	u32 b = latency_bucket(wait_ns);

	if (!c)
		return;
	c->queue_wait[b]++;
	if (tctx->has_run && llc_of(tctx->last_cpu) != llc_of(cpu))
		c->llc_migrations++;
	tctx->has_run = true;
	tctx->last_cpu = cpu;
	if (!tctx->woke_up || tctx->class >= STORELAND_NR_CLASSES)
		return;
	c->wake_lat[tctx->class % STORELAND_NR_CLASSES][b]++;
	c->wakeups_seen++;
	if (tctx->waker_cpu >= 0 && llc_of(tctx->waker_cpu) == llc_of(cpu))
		c->wake_on_waker_llc++;
}

/* ops.running: @p got a CPU; start its accounting stint. */
void BPF_STRUCT_OPS(storeland_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	struct cpu_state *cs;

	if (!tctx)
		return;
	tctx->charged_at = scx_bpf_now();
	tctx->stint_runtime = 0;
	record_start(tctx, scx_bpf_task_cpu(p), tctx->charged_at - tctx->runnable_at);
	/* Its wake-up has been handled, whichever path it took. */
	tctx->woke_up = false;

	/*
	 * The fairness clock follows the tasks taken in deadline order: they
	 * are the furthest behind. A task that ran out of order (on an idle
	 * CPU) must not drag it forward, or a low-weight task whose vtime runs
	 * fast would push every waking task behind the whole queue.
	 */
	if (tctx->in_llc_queue && tctx->vtime > vtime_now)
		vtime_now = tctx->vtime;
	uncount_queued(tctx);
	if (is_usersched_loop(p))
		usersched_queued = false;

	cs = cpu_state_of(scx_bpf_task_cpu(p));
	if (cs) {
		cs->running_class = tctx->class;
		cs->running_hog = is_cpu_hog(tctx);
		cs->running_since = tctx->charged_at;
		cs->running_vtime = tctx->vtime;
	}
}

/*
 * A CPU hog queues as late as lag goes, so its slice decides only how long
 * the tasks behind it wait: once it has run slice_min in this turn and the
 * first task waiting in one of its CCX's queues is not a hog (and may run on
 * @cpu), its turn ends at this tick. Hogs waiting behind a hog wait for its slice: a
 * turn cut at every tick cost the hogs 7-12% of their throughput in the VM.
 * The same as Policy::hog_turn_over() in policy.rs.
 */
static bool first_is_no_hog(s32 owner, s32 cpu)
{
	struct task_struct *first = queue_head(owner);
	struct task_ctx *fctx;

	if (!first)
		return false;
	fctx = lookup_task_ctx(first);
	return fctx && !is_cpu_hog(fctx) && can_run_on(first, cpu);
}

static bool hog_turn_over(const struct task_ctx *tctx, s32 cpu)
{
	u32 llc = llc_of(cpu), i;
	s32 owner;

	if (!is_cpu_hog(tctx) || tctx->stint_runtime < slice_min_ns || !llc_may_have_work(llc))
		return false;
	for_each_llc_cpu(i, owner, llc) {
		if (first_is_no_hog(owner, cpu))
			return true;
	}
	return false;
}

/* ops.tick: periodic runtime accounting while @p runs. */
void BPF_STRUCT_OPS(storeland_tick, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	s32 cpu = scx_bpf_task_cpu(p);
	struct cpu_state *cs;

	learn_hardirq_bits();
	if (!tctx)
		return;
	charge_runtime(p, tctx, scx_bpf_now());

	/*
	 * Demote a task that runs longer than its class allows, as user space
	 * would: it loses the fast path, and batch work becomes preemptible
	 * even if it never left the CPU for user space to see it.
	 */
	if (tctx->class == STORELAND_CLASS_LATCRIT &&
	    tctx->exec_runtime > latcrit_max_runtime_ns)
		set_class(p, tctx, STORELAND_CLASS_INTERACTIVE);
	if (tctx->class != STORELAND_CLASS_BATCH &&
	    tctx->exec_runtime > interactive_max_runtime_ns)
		set_class(p, tctx, STORELAND_CLASS_BATCH);

	cs = cpu_state_of(cpu);
	if (cs) {
		cs->running_vtime = tctx->vtime;
		cs->running_class = tctx->class;
		cs->running_hog = is_cpu_hog(tctx);
	}

	if (hog_turn_over(tctx, cpu)) {
		scx_bpf_task_set_slice(p, 0);
		COUNT(hog_turns_cut);
	}
}

/* ops.stopping: @p leaves the CPU; close its accounting stint. */
void BPF_STRUCT_OPS(storeland_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	struct cpu_state *cs;

	if (!tctx)
		return;
	charge_runtime(p, tctx, scx_bpf_now());
	tctx->last_runtime = tctx->stint_runtime;

	cs = cpu_state_of(scx_bpf_task_cpu(p));
	if (cs) {
		if (cs->preempt_pending && runnable)
			tctx->preempted = true;
		cs->preempt_pending = 0;
		cs->running_class = STORELAND_CLASS_NONE;
	}
}

/*
 * ops.quiescent: @p stopped being runnable. Remember whether it went to
 * sleep waiting for I/O: that is what marks NVMe submitters and database
 * threads.
 */
void BPF_STRUCT_OPS(storeland_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	struct task_struct *task = p;	/* the macro below shadows "p" */

	if (!tctx || !(deq_flags & SCX_DEQ_SLEEP))
		return;
	tctx->slept_in_iowait = BPF_CORE_READ_BITFIELD(task, in_iowait);
	tctx->avg_runtime = ewma(tctx->avg_runtime, tctx->exec_runtime);
}

/* ops.init_task: allocate per-task state (may sleep). */
s32 BPF_STRUCT_OPS_SLEEPABLE(storeland_init_task, struct task_struct *p,
			     struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	return 0;
}

/* ops.enable: @p joins this scheduler; it starts level with the others. */
void BPF_STRUCT_OPS(storeland_enable, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (!tctx)
		return;
	tctx->vtime = vtime_now;
	tctx->exec_runtime = 0;
	tctx->solo_runtime = 0;
}

/* ops.exit_task: @p leaves; a decision still in flight for it will be dropped. */
void BPF_STRUCT_OPS(storeland_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	bpf_task_storage_delete(&task_ctx_stor, p);
}

/*
 * ops.disable: @p moves to another scheduling class or exits (the kernel
 * disables an enabled task before ops.exit_task()), out of our queues.
 */
void BPF_STRUCT_OPS(storeland_disable, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (tctx)
		uncount_queued(tctx);
}

/*
 * ops.cpu_release: a higher class (an RT or deadline task) takes @cpu. What
 * waits in its local queue would wait for that class to let go, or run only
 * in the kernel's ext deadline server windows (50 ms a second), where a task
 * put back at the head with slice left can keep the ones behind it from
 * running until the watchdog ejects us. Send them through ops.enqueue again:
 * each goes to a queue of its LLC, another CPU's where queue_cpu() knows a
 * shorter one, and another CPU of the LLC (take_from_llc(), the starvation
 * guard) or, for a task pinned here, the next server window takes it.
 */
void BPF_STRUCT_OPS(storeland_cpu_release, s32 cpu, struct scx_cpu_release_args *args)
{
	struct cpu_state *cs = cpu_state_of(cpu);

	if (cs) {
		cs->released = 1;
		cs->contested = 1;
		cs->running_class = STORELAND_CLASS_NONE;
	}
	scx_bpf_reenqueue_local();
}

/* ops.cpu_acquire: @cpu is back to SCHED_EXT work. */
void BPF_STRUCT_OPS(storeland_cpu_acquire, s32 cpu, struct scx_cpu_acquire_args *args)
{
	struct cpu_state *cs = cpu_state_of(cpu);

	if (cs)
		cs->released = 0;
}

/*
 * ops.cpu_online / ops.cpu_offline: the topology the queues were built for
 * changed. Ask user space to restart with the new one.
 */
void BPF_STRUCT_OPS(storeland_cpu_online, s32 cpu)
{
	scx_bpf_exit(SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG,
		     "CPU %d came online, restarting with the new topology", cpu);
}

void BPF_STRUCT_OPS(storeland_cpu_offline, s32 cpu)
{
	scx_bpf_exit(SCX_ECODE_ACT_RESTART | SCX_ECODE_RSN_HOTPLUG,
		     "CPU %d went offline, restarting with the new topology", cpu);
}

/* Store the CPUs of @llc in llc_cpumasks, for llc_mask(). */
static s32 build_llc_cpumask(u32 llc)
{
	struct bpf_cpumask *mask;
	struct llc_cpumask *m;
	u32 key = llc, i, n;

	m = bpf_map_lookup_elem(&llc_cpumasks, &key);
	if (!m || llc >= STORELAND_MAX_LLCS)
		return -ENOENT;
	n = llc_nr_cpus[llc & (STORELAND_MAX_LLCS - 1)];
	mask = bpf_cpumask_create();
	if (!mask)
		return -ENOMEM;
	bpf_for(i, 0, STORELAND_MAX_LLC_CPUS) {
		if (i >= n)
			break;
		bpf_cpumask_set_cpu(llc_cpu(llc, i), mask);
	}
	mask = bpf_kptr_xchg(&m->cpus, mask);
	if (mask)
		bpf_cpumask_release(mask);
	return 0;
}

/* ops.init: create the queues and CPU masks the topology asks for. */
s32 BPF_STRUCT_OPS_SLEEPABLE(storeland_init)
{
	u32 i;
	s32 ret;

	if (!nr_llcs || nr_llcs > STORELAND_MAX_LLCS || !usersched_tgid) {
		scx_bpf_error("bad configuration: nr_llcs=%u usersched_tgid=%u",
			      nr_llcs, usersched_tgid);
		return -EINVAL;
	}

	bpf_for(i, 0, STORELAND_MAX_CPUS)
		cpu_state[i].running_class = STORELAND_CLASS_NONE;

	ret = scx_bpf_create_dsq(USERSCHED_DSQ, -1);
	if (ret)
		return ret;

	bpf_for(i, 0, STORELAND_MAX_CPUS) {
		if (i >= nr_cpus)
			break;
		ret = scx_bpf_create_dsq(CPU_DSQ(i), -1);
		if (ret)
			return ret;
	}

	bpf_for(i, 0, STORELAND_MAX_LLCS) {
		if (i >= nr_llcs)
			break;
		ret = build_llc_cpumask(i);
		if (ret)
			return ret;
	}
	return 0;
}

/* ops.exit: record why we were unloaded for user space to report. */
void BPF_STRUCT_OPS(storeland_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

SCX_OPS_DEFINE(storeland_ops,
	       .select_cpu		= (void *)storeland_select_cpu,
	       .enqueue			= (void *)storeland_enqueue,
	       .dequeue			= (void *)storeland_dequeue,
	       .dispatch		= (void *)storeland_dispatch,
	       .runnable		= (void *)storeland_runnable,
	       .running			= (void *)storeland_running,
	       .tick			= (void *)storeland_tick,
	       .stopping		= (void *)storeland_stopping,
	       .quiescent		= (void *)storeland_quiescent,
	       .init_task		= (void *)storeland_init_task,
	       .enable			= (void *)storeland_enable,
	       .exit_task		= (void *)storeland_exit_task,
	       .disable			= (void *)storeland_disable,
	       .cpu_acquire		= (void *)storeland_cpu_acquire,
	       .cpu_release		= (void *)storeland_cpu_release,
	       .cpu_online		= (void *)storeland_cpu_online,
	       .cpu_offline		= (void *)storeland_cpu_offline,
	       .init			= (void *)storeland_init,
	       .exit			= (void *)storeland_exit,
	       .dispatch_max_batch	= STORELAND_DRAIN_BATCH,
	       .timeout_ms		= 5000,
	       .name			= "storeland");
