/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: the queue per CPU in each LLC (CCX), ordered by deadline.
 * Where a task waits (queue_cpu(), queue_in_llc()), what a CPU takes next
 * (take_from_llc()), and the starvation guard over them.
 */
#ifndef __STORELAND_QUEUES_BPF_H
#define __STORELAND_QUEUES_BPF_H

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

static void queue_fallback(struct task_struct *p, struct task_ctx *tctx)
{
	queue_in_llc(p, llc_of(scx_bpf_task_cpu(p)), task_slice(p, tctx), task_deadline(p, tctx), false);
}

u64 llc_last_scan_ns[STORELAND_MAX_LLCS];	/* last starvation check of each LLC's queues */

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

#endif /* __STORELAND_QUEUES_BPF_H */
