/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_storeland: CPU hogs. Where one spreads to when its slice ends with
 * nothing waiting (other CCXs with fewer hogs, whole idle cores), and when
 * its turn ends early for other work waiting in its CCX.
 */
#ifndef __STORELAND_HOGS_BPF_H
#define __STORELAND_HOGS_BPF_H

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

	/* Not a queued wake-up from another LLC, activated here in an IPI. */
	if (scx_bpf_task_cpu(p) != cpu || tctx->waker_cpu != cpu || !can_run_on(p, cpu))
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

#endif /* __STORELAND_HOGS_BPF_H */
