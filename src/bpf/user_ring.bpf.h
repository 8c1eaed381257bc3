/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: the path through user space. Records of tasks go out on
 * the "queued" ring buffer, the policy's decisions come back on the
 * "decisions" user ring and are applied in ops.dispatch(). Nothing waits on
 * this path when user space is late or the ring is full.
 */
#ifndef __STORELAND_USER_RING_BPF_H
#define __STORELAND_USER_RING_BPF_H

/* Unread reviews that wake the policy loop: a quarter of the ring. */
#define REVIEW_WAKEUP_BYTES	(sizeof(struct queued_task) * STORELAND_RING_ENTRIES / 4)

/* The policy loop was put in USERSCHED_DSQ and has not run since. */
volatile bool usersched_queued;
volatile u64 usersched_last_drain_ns;	/* written by the policy loop (CLOCK_MONOTONIC) */
volatile u64 decisions_submitted;	/* bumped by the policy loop after it submits decisions */
u64 decisions_seen;			/* decisions_submitted at the last full drain */
u32 drain_first_count;			/* always 0; see apply_decisions() */
u64 loop_woken_at_ns;			/* first wake-up of the policy loop since its last drain */

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

#endif /* __STORELAND_USER_RING_BPF_H */
