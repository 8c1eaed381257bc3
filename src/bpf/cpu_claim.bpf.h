/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: claiming a CPU for a task that should not wait. An idle
 * CPU of its LLC first; for latency-critical work and for the policy loop,
 * else a CPU running batch work to preempt.
 */
#ifndef __STORELAND_CPU_CLAIM_BPF_H
#define __STORELAND_CPU_CLAIM_BPF_H

/*
 * With SMT, claim a CPU of a whole idle core of @llc for @p, or -1: an idle
 * CPU whose sibling runs a CPU hog shares that core's execution units. A
 * task with an affinity (a database pinned to a CCX) gets the first allowed
 * CPU of such a core.
 */
static s32 claim_idle_core_in_llc(const struct task_struct *p, u32 llc)
{
	const struct cpumask *cpus;
	s32 cpu, found = -1;
	u32 i;

	if (!smt_enabled || llc >= STORELAND_MAX_LLCS)
		return -1;
	cpus = runs_anywhere(p) ? llc_mask(llc) : NULL;
	if (cpus) {
		cpu = scx_bpf_pick_idle_cpu(cpus, SCX_PICK_IDLE_CORE);
	} else {
		const struct cpumask *idle_smt = scx_bpf_get_idle_smtmask();

		for_each_llc_cpu(i, cpu, llc) {
			if (can_run_on(p, cpu) && bpf_cpumask_test_cpu(cpu, idle_smt)) {
				found = cpu;
				break;
			}
		}
		scx_bpf_put_idle_cpumask(idle_smt);
		cpu = found >= 0 && scx_bpf_test_and_clear_cpu_idle(found) ? found : -1;
	}
	if (cpu >= 0)
		COUNT(idle_core_picks);
	return cpu;
}

/*
 * Claim any idle CPU of @llc that may run @p, or -1. A task that may run
 * anywhere asks the kernel's idle mask for one, which takes an atomic only on
 * a CPU it found idle; testing and clearing each CPU in turn would write the
 * shared idle mask once per CPU of the CCX (16 on Genoa) at every wake-up
 * that finds none.
 */
static s32 claim_idle_cpu_in_llc(const struct task_struct *p, u32 llc)
{
	u32 i, n, start;

	if (llc >= STORELAND_MAX_LLCS)
		return -1;
	if (runs_anywhere(p)) {
		const struct cpumask *cpus = llc_mask(llc);

		if (cpus)
			return scx_bpf_pick_idle_cpu(cpus, 0);
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

/* Claim an idle CPU of @llc that may run @p, of a whole idle core first. */
static s32 claim_idle_in_llc(const struct task_struct *p, u32 llc)
{
	s32 cpu = claim_idle_core_in_llc(p, llc);

	return cpu >= 0 ? cpu : claim_idle_cpu_in_llc(p, llc);
}

/* Are @cpu and every SMT sibling of it idle? */
static bool whole_core_idle(s32 cpu)
{
	const struct cpumask *idle_smt = scx_bpf_get_idle_smtmask();
	bool idle = bpf_cpumask_test_cpu(cpu, idle_smt);

	scx_bpf_put_idle_cpumask(idle_smt);
	return idle;
}

/*
 * With SMT, claim an idle CPU for a waking @p in the LLC (CCX) of @prev_cpu,
 * where its data is, or -1: @prev_cpu if idle (its caches, the queue its
 * completions come in on), else a whole idle core of the CCX, else any idle
 * CPU of the CCX, as EEVDF's select_idle_sibling() does. The kernel's
 * picker looks for a whole idle core in the other CCXs (of its NUMA node
 * first) before an idle CPU whose sibling is busy, @prev_cpu included: on a
 * Genoa whose cores each ran a CPU hog, an I/O thread left its L3 at every
 * wake-up.
 */
static s32 claim_idle_in_own_llc(const struct task_struct *p, s32 prev_cpu)
{
	u32 llc = llc_of(prev_cpu);
	s32 cpu;

	if (can_run_on(p, prev_cpu)) {
		bool whole = whole_core_idle(prev_cpu);

		if (scx_bpf_test_and_clear_cpu_idle(prev_cpu)) {
			if (!whole)
				COUNT(half_core_wakeups);
			return prev_cpu;
		}
	}
	cpu = claim_idle_core_in_llc(p, llc);
	if (cpu >= 0)
		return cpu;
	cpu = claim_idle_cpu_in_llc(p, llc);
	if (cpu >= 0)
		COUNT(half_core_wakeups);
	return cpu;
}

/*
 * scx_bpf_locked_rq() came in 6.18, before the ext deadline server and
 * before the loader asks for queued wake-ups (the reasons to ask), so an
 * older kernel has no need of the answer.
 */
struct rq *scx_bpf_locked_rq___storeland(void) __ksym __weak;

/* The runqueue this callback holds, or NULL on a kernel that does not say. */
static struct rq *locked_rq(void)
{
	if (!bpf_ksym_exists(scx_bpf_locked_rq___storeland))
		return NULL;
	return scx_bpf_locked_rq___storeland();
}

/* An RT task waits on or runs on the runqueue this callback holds. */
static bool rt_queued_on_locked_rq(void)
{
	struct rq *rq = locked_rq();

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

#endif /* __STORELAND_CPU_CLAIM_BPF_H */
