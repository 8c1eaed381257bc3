/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: what BPF knows about a task's behaviour. Runtime
 * accounting (the kernel's update_curr() for this class), the class a task
 * wakes in, and the deadline and slice of its class: the same rules as
 * Policy in policy.rs, so that BPF places a task as user space would.
 */
#ifndef __STORELAND_CLASSIFY_BPF_H
#define __STORELAND_CLASSIFY_BPF_H

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

/* The same as Policy::slice() in policy.rs. */
static u64 task_slice(const struct task_struct *p, const struct task_ctx *tctx)
{
	u32 weight = p->scx.weight ? p->scx.weight : 100;

	return clamp_slice(class_slice_ns[tctx->class % STORELAND_NR_CLASSES] * weight / 100);
}

u32 hardirq_bits;			/* preempt_count bits of hard IRQ context, learned */

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

#endif /* __STORELAND_CLASSIFY_BPF_H */
