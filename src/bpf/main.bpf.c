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
 *
 * This file holds the sched_ext callbacks and the wake-up fast path. The
 * headers, each building on the ones before it: common.bpf.h (knobs,
 * topology, shared state, task context), classify.bpf.h (runtime
 * accounting, classes, deadlines, slices), cpu_claim.bpf.h (idle CPUs and
 * preemption victims), queues.bpf.h (the CPU queues of each LLC),
 * hogs.bpf.h (where CPU hogs spread, when their turns end) and
 * user_ring.bpf.h (the path through user space).
 */
#include <scx/common.bpf.h>
#include <bpf_experimental.h>
#include "intf.h"
#include "common.bpf.h"
#include "classify.bpf.h"
#include "cpu_claim.bpf.h"
#include "queues.bpf.h"
#include "hogs.bpf.h"
#include "user_ring.bpf.h"

char _license[] SEC("license") = "GPL";

UEI_DEFINE(uei);

/*
 * The CPU whose queue a waking task joins: for a wake-up from an interrupt,
 * the CPU that took it (where the completions arrive), else the task's own.
 */
static s32 wake_home_cpu(struct task_struct *p, struct task_ctx *tctx)
{
	return tctx->irq_wake ? tctx->waker_cpu : scx_bpf_task_cpu(p);
}

/*
 * Who wakes the task of @tctx, noted in the waker's own context: from IRQ
 * context or not, on @this_cpu. A task (not a fork) that wakes another one
 * is no CPU hog (is_cpu_hog()). With queued wake-ups
 * (SCX_OPS_ALLOW_QUEUED_WAKEUP), a wake-up from another LLC is activated on
 * the wakee's CPU, in the IPI the waker sends there, where the current
 * context tells nothing of the waker: ops.select_cpu notes it for
 * ops.runnable.
 */
static void note_waker(struct task_ctx *tctx, bool in_irq, s32 this_cpu, bool fork)
{
	struct task_ctx *wctx;

	tctx->irq_wake = in_irq;
	tctx->waker_cpu = this_cpu;
	if (in_irq || fork)
		return;
	wctx = lookup_task_ctx(bpf_get_current_task_btf());
	if (wctx)
		wctx->solo_runtime = 0;
}

/*
 * ops.runnable runs where the kernel activates the wake-ups queued to this
 * CPU (its IPI, or its idle loop): this runqueue, locked, has them pending.
 * The flag is set before the IPI is sent, so a direct wake-up racing with
 * a queued one may be taken for one too. The loader asks for queued
 * wake-ups only where the kfunc exists.
 */
static bool in_queued_activation(void)
{
	struct rq *rq = locked_rq();

	return rq && rq->ttwu_pending;
}

/*
 * A wake-up that ops.select_cpu did not see: a task that may run on one CPU
 * only, or one still leaving its CPU as it is woken. In a queued
 * activation the waker is unknown, and the IPI is no completion.
 */
static void note_unseen_waker(struct task_ctx *tctx)
{
	if (in_queued_activation()) {
		tctx->irq_wake = false;
		tctx->waker_cpu = -1;
		return;
	}
	note_waker(tctx, in_irq_context(), bpf_get_smp_processor_id(), false);
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
 * the task's own idle CPU keeps it there (irq_on_own_idle_cpu()); if an idle
 * CPU of its CCX (with SMT, our own picker) or the kernel's LLC-aware idle
 * picker finds one, the task goes straight there: no decision is worth an
 * idle CPU's wait.
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
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (tctx) {
		note_waker(tctx, in_irq, this_cpu, wake_flags & SCX_WAKE_FORK);
		tctx->waker_noted = true;
	}
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
	/*
	 * With SMT, an idle CPU of its own CCX first (claim_idle_in_own_llc()).
	 * Not a new task, which spreads out as under EEVDF, nor a synchronous
	 * wake-up, which the kernel's picker may bring to its waker's CPU.
	 */
	if (smt_enabled && !(wake_flags & (SCX_WAKE_FORK | SCX_WAKE_SYNC))) {
		cpu = claim_idle_in_own_llc(p, prev_cpu);
		if (cpu >= 0)
			return run_on_idle_cpu(p, cpu);
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		return run_on_idle_cpu(p, cpu);
	/* Only a wake-up that wakeup_fast_path() places ends the turn. */
	if (in_irq && tctx && io_wakeup_placed_by_bpf(tctx) && !is_usersched_task(p) &&
	    can_run_on(p, this_cpu) && hog_turn_may_end(this_cpu)) {
		COUNT(irq_wakeups_pulled);
		return this_cpu;
	}
	if ((wake_flags & SCX_WAKE_SYNC) && tctx && !tctx->slept_in_iowait &&
	    llc_of(this_cpu) != llc_of(cpu) && can_run_on(p, this_cpu)) {
		COUNT(sync_wakeups_pulled);
		return this_cpu;
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
 * ops.runnable: @p became runnable. On a wake-up, reset the per-wake runtime
 * and cap the vtime credit earned while asleep.
 */
void BPF_STRUCT_OPS(storeland_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	u64 min_vtime, now;
	bool noted;

	if (!tctx)
		return;
	now = scx_bpf_now();
	tctx->runnable_at = now;
	noted = tctx->waker_noted;
	tctx->waker_noted = false;
	if (!(enq_flags & SCX_ENQ_WAKEUP))
		return;

	tctx->woke_up = true;
	if (!noted)
		note_unseen_waker(tctx);
	if (tctx->irq_wake)
		COUNT(irq_wakeups);
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
