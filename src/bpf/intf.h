/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: everything shared between the BPF side and Rust.
 *
 * This header is the single source of truth for the records that cross the
 * ring buffers and for the counters user space reads. Rust gets it through
 * bindgen; both sides pin the sizes below (here with _Static_assert, in Rust
 * with a test) so a layout drift fails the build or the tests, never a run.
 */
#ifndef __STORELAND_INTF_H
#define __STORELAND_INTF_H

#ifndef __VMLINUX_H__
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;
typedef long long s64;
#endif

enum storeland_consts {
	/* Upper bounds the BPF arrays are sized for (one Genoa socket is 192). */
	STORELAND_MAX_CPUS	= 1024,
	STORELAND_MAX_LLCS	= 64,
	STORELAND_MAX_LLC_CPUS	= 64,

	/* Records each ring buffer can hold. */
	STORELAND_RING_ENTRIES	= 8192,

	/* Decisions applied per ops.dispatch() call (bounded by dispatch_max_batch). */
	STORELAND_DRAIN_BATCH	= 256,

	/* Decision targets: no exact CPU / no LLC preference. */
	STORELAND_CPU_ANY	= -1,
	STORELAND_LLC_ANY	= -1,

	STORELAND_COMM_LEN	= 16,

	/* Wake-to-run latency histogram: bucket b counts waits in [2^b - 1, 2^(b+1) - 1) us. */
	STORELAND_LAT_BUCKETS	= 16,
};

/* What BPF observed about a task, carried in queued_task.flags. */
enum storeland_task_flags {
	/* This enqueue is a wake-up (not a preemption or slice expiry). */
	STORELAND_TF_WAKEUP	= 1U << 0,
	/* The task's last sleep was an I/O wait (p->in_iowait). */
	STORELAND_TF_IOWAIT	= 1U << 1,
	/* Kernel thread. */
	STORELAND_TF_KTHREAD	= 1U << 2,
	/* The wake-up came from hard or soft IRQ context (e.g. an NVMe completion). */
	STORELAND_TF_IRQ_WAKE	= 1U << 3,
	/* BPF has placed the task already: user space only reviews its class. */
	STORELAND_TF_PLACED	= 1U << 4,
};

/*
 * What user space decided a task is. BPF caches it per task: a latency-critical
 * task's next wake-ups are placed by BPF at once (and preempt batch work)
 * without a round trip, until user space reviews it again.
 */
enum storeland_class {
	STORELAND_CLASS_INTERACTIVE	= 0,	/* default: sleeps often, short runs */
	STORELAND_CLASS_LATCRIT		= 1,	/* I/O-bound: waits on I/O, runs briefly */
	STORELAND_CLASS_BATCH		= 2,	/* CPU-bound: uses whole slices */
	STORELAND_NR_CLASSES		= 3,
	STORELAND_CLASS_NONE		= 0xff,	/* no task running (cpu_state) */
};

/* dispatch_decision.flags */
enum storeland_decision_flags {
	/* If no CPU of the target LLC is idle, preempt one running batch work. */
	STORELAND_DF_PREEMPT	= 1U << 0,
	/* Only the class changes (the answer to a TF_PLACED record): no dispatch. */
	STORELAND_DF_CLASS_ONLY	= 1U << 1,
};

/*
 * A runnable task handed to user space (BPF ring buffer, kernel -> user).
 * @enq_seq identifies this enqueue: user space echoes it back so BPF can tell
 * a fresh decision from a stale one.
 */
struct queued_task {
	s32 pid;
	s32 prev_cpu;		/* CPU the task last ran on */
	s32 waker_cpu;		/* CPU that woke it, or -1 */
	u32 nr_cpus_allowed;
	u64 enq_seq;
	u64 enq_flags;		/* SCX_ENQ_* of this enqueue */
	u64 flags;		/* STORELAND_TF_* */
	u64 vtime;		/* weighted virtual runtime, kept by BPF */
	u64 exec_runtime;	/* ns run since the task last slept */
	u64 last_runtime;	/* ns run in its last stint on a CPU */
	u64 avg_runtime;	/* EWMA of ns run per wake-up (wake to sleep) */
	u64 avg_wake_gap;	/* EWMA of ns between wake-ups */
	u64 enq_at;		/* ns timestamp of this enqueue */
	u32 weight;		/* 1..10000, 100 = nice 0 */
	u32 nr_wakeups;		/* wake-ups seen since the task was enabled */
	u32 class;		/* STORELAND_CLASS_* BPF holds for it */
	u32 reserved;
	char comm[STORELAND_COMM_LEN];
};

/* User space's decision for one queued task (user ring buffer, user -> kernel). */
struct dispatch_decision {
	s32 pid;
	s32 cpu;		/* exact CPU wanted, or STORELAND_CPU_ANY */
	s32 llc;		/* LLC (CCX) queue to use, or STORELAND_LLC_ANY */
	u16 class;		/* STORELAND_CLASS_*, cached by BPF for the fast path */
	u16 flags;		/* STORELAND_DF_* */
	u64 enq_seq;		/* copied from queued_task.enq_seq */
	u64 slice_ns;
	u64 deadline;		/* position in the LLC queue, same clock as vtime */
};

/*
 * Per-CPU event counters, written only by the CPU that owns the slot (no
 * atomics, no sharing) and summed by user space.
 */
struct cpu_counters {
	u64 queued_to_user;	/* tasks handed to user space */
	u64 user_dispatches;	/* user-space decisions applied */
	u64 fastpath_idle;	/* wake-ups sent straight to an idle CPU */
	u64 fastpath_kthread;	/* per-CPU kthreads kept local */
	u64 fastpath_self;	/* the scheduler's own threads */
	u64 congested_ring_full;/* ring full: dispatched by BPF instead */
	u64 congested_late;	/* user space late: dispatched by BPF instead */
	u64 stale_dropped;	/* decisions for a re-enqueued/gone task */
	u64 affinity_redirects;	/* decisions whose CPU/LLC the task may not use */
	u64 llc_steals;		/* tasks pulled from another LLC's queue */
	u64 usersched_runs;	/* times the scheduler's loop was put on a CPU */
	u64 fastpath_latcrit;	/* latency-critical wake-ups placed by BPF */
	u64 preemptions;	/* CPUs running batch work kicked for a waiting task */
	u64 requeued;		/* preempted mid-slice, requeued with their last decision */
	u64 fastpath_requeue;	/* slice expiries requeued by BPF from the cached class */
	u64 starvation_rescues;	/* tasks run first after waiting longer than starve_ns */
	/* Wake-up to running, per class of the task when it started running. */
	u64 wake_lat[STORELAND_NR_CLASSES][STORELAND_LAT_BUCKETS];
	u64 llc_migrations;	/* tasks that started on another LLC than they last ran on */
	u64 wake_on_waker_llc;	/* woken tasks that ran on their waker's LLC */
	u64 wakeups_seen;	/* woken tasks that started running */
	u64 fastpath_interactive;/* interactive wake-ups placed by BPF */
	u64 irq_wakeups;	/* wake-ups from hard or soft IRQ context (NVMe completions) */
	u64 hog_turns_cut;	/* CPU hogs that gave their CPU up to other work */
	u64 idle_core_picks;	/* placements on a CPU of a whole idle core (SMT) */
	u64 held_cpu_kept;	/* kept in BPF: a higher class holds or waits for their CPU */
	/* Runnable to running (any wait, any class), on this CPU: summed per LLC. */
	u64 queue_wait[STORELAND_LAT_BUCKETS];
	u64 fastpath_io_batch;	/* batch wake-ups from I/O placed by BPF */
	u64 sync_wakeups_pulled;/* synchronous wake-ups brought to the waker's CCX */
	u64 irq_wakeups_pulled;	/* wake-ups brought to their interrupt's CPU to end its hog's turn */
	u64 irq_idle_kept;	/* IRQ wake-ups kept on their idle CPU, its idle bit already clear */
	u64 hog_spreads;	/* CPU hogs moved to an idle core or CCX at the end of a slice */
	u64 half_core_wakeups;	/* wake-ups placed in their CCX on an idle CPU of a busy core (SMT) */
};

#ifndef __cplusplus
_Static_assert(sizeof(struct queued_task) == 120, "queued_task layout changed");
_Static_assert(sizeof(struct dispatch_decision) == 40, "dispatch_decision layout changed");
_Static_assert(sizeof(struct cpu_counters) == 752, "cpu_counters layout changed");
/* The BPF side masks indices with these, so they must be powers of two. */
_Static_assert((STORELAND_MAX_CPUS & (STORELAND_MAX_CPUS - 1)) == 0, "MAX_CPUS not a power of 2");
_Static_assert((STORELAND_MAX_LLCS & (STORELAND_MAX_LLCS - 1)) == 0, "MAX_LLCS not a power of 2");
_Static_assert((STORELAND_MAX_LLC_CPUS & (STORELAND_MAX_LLC_CPUS - 1)) == 0, "MAX_LLC_CPUS not a power of 2");
#endif

#endif /* __STORELAND_INTF_H */
