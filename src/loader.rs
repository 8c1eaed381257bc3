//! BPF lifecycle: open the skeleton, write the topology and knobs into its
//! rodata, load, attach, watch for the kernel's exit, detach and report.
//! The only module that knows libbpf-rs and the skeleton.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use libbpf_rs::{Link, OpenObject, ProgramInput};
use scx_utils::libbpf_clap_opts::LibbpfOpts;
use scx_utils::{compat, scx_ops_attach, scx_ops_load, scx_ops_open, uei_exited, uei_report};
use scx_utils::{ScxExitKind, UserExitInfo};

use storeland::counters::Counters;
use storeland::intf;
use storeland::policy::{LoadView, Policy, TaskClass};
use storeland::topology::CcxTopology;

use crate::rings::Rings;

#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals
)]
mod bpf_skel {
    include!(concat!(env!("OUT_DIR"), "/bpf_skel.rs"));
}
use bpf_skel::*;

/// How long queued tasks may wait for the policy loop before BPF stops
/// handing it new ones (well under the 5 s watchdog).
const USERSCHED_LATE_NS: u64 = 50_000_000;

/// A task queued longer than 1/STARVE_FRACTION of the watchdog timeout runs first.
const STARVE_FRACTION: u64 = 5;

/// Placements of a cached class BPF makes before user space reviews the task.
const REVIEW_EVERY: u32 = 8;

/// What the loader needs from the command line.
pub struct LoadOptions {
    pub partial: bool,
    pub exit_dump_len: u32,
    pub verbose: bool,
    pub libbpf: LibbpfOpts,
}

/// Why the scheduler stopped, as the kernel reported it.
pub enum Stopped {
    /// A graceful exit: unregistered from user space, or a restart request.
    Exit(UserExitInfo),
    /// The operator disabled sched_ext with sysrq-S; the kernel's reason line.
    SysRq(String),
}

/// The scheduler, attached to the kernel. Dropping it detaches.
pub struct Attached<'obj> {
    skel: BpfSkel<'obj>,
    link: Option<Link>,
    /// Wake-ups from another LLC are activated on the wakee's CPU.
    pub queued_wakeups: bool,
}

impl<'obj> Attached<'obj> {
    /// Open, configure, load and attach; returns the rings to talk over.
    pub fn attach(
        open_object: &'obj mut MaybeUninit<OpenObject>,
        opts: &LoadOptions,
        policy: &Policy,
    ) -> Result<(Self, Rings)> {
        let topo = policy.topology();
        let mut builder = BpfSkelBuilder::default();
        builder.obj_builder.debug(opts.verbose);
        let open_opts = opts.libbpf.clone().into_bpf_open_opts();
        let mut skel = scx_ops_open!(builder, open_object, storeland_ops, open_opts)?;

        let ops = skel.struct_ops.storeland_ops_mut();
        ops.exit_dump_len = opts.exit_dump_len;
        // ENQ_LAST: a task whose slice ran out with nothing else to run is
        // handed back to ops.enqueue() (which keeps it running) instead of
        // the kernel deciding behind our back.
        ops.flags = *compat::SCX_OPS_ENQ_LAST;
        // Queued wake-ups: a wake-up from another LLC is activated on the
        // wakee's CPU, in an IPI, instead of the waker taking that CPU's
        // runqueue lock and holding it while it sends the reschedule IPI.
        // ops.select_cpu notes the waker for ops.runnable (note_waker());
        // a wake-up without it is told apart through the locked runqueue,
        // which older kernels (before 6.18) do not hand to BPF.
        let queued_wakeups = *compat::SCX_OPS_ALLOW_QUEUED_WAKEUP != 0
            && compat::ksym_exists("scx_bpf_locked_rq").unwrap_or(false);
        if queued_wakeups {
            ops.flags |= *compat::SCX_OPS_ALLOW_QUEUED_WAKEUP;
        }
        if opts.partial {
            ops.flags |= *compat::SCX_OPS_SWITCH_PARTIAL;
        }

        let rodata = skel
            .maps
            .rodata_data
            .as_mut()
            .context("BPF object has no rodata")?;
        rodata.usersched_tgid = std::process::id();
        rodata.slice_ns = policy.config().slice_ns;
        rodata.slice_min_ns = policy.config().slice_min_ns;
        rodata.slice_max_ns = policy.config().slice_max_ns;
        rodata.sleep_credit_ns = policy.config().sleep_credit_ns;
        rodata.max_wake_credit_ns = policy.config().max_wake_credit_ns;
        rodata.usersched_late_ns = USERSCHED_LATE_NS;
        rodata.latcrit_max_runtime_ns = policy.config().latcrit_max_runtime_ns;
        rodata.interactive_max_runtime_ns = policy.config().interactive_max_runtime_ns;
        rodata.io_batch_max_runtime_ns = policy.config().io_batch_max_runtime_ns;
        rodata.max_lag_ns = policy.config().max_lag_ns;
        rodata.review_every = REVIEW_EVERY;
        // The starvation guard acts at a fifth of the watchdog's timeout
        // (SCX_TIMEOUT_MS may have changed it; 0 means the kernel's 30 s).
        let timeout_ms = match skel.struct_ops.storeland_ops_mut().timeout_ms {
            0 => 30_000,
            ms => u64::from(ms),
        };
        rodata.starve_ns = timeout_ms * 1_000_000 / STARVE_FRACTION;
        for class in TaskClass::ALL {
            rodata.class_offset_ns[class as usize] = policy.config().class_offset_ns(class);
            rodata.class_slice_ns[class as usize] = policy.class_slice_ns(class);
        }
        rodata.nr_cpus = topo.nr_cpu_ids() as u32;
        rodata.nr_llcs = topo.nr_llcs() as u32;
        rodata.smt_enabled = topo.smt();
        rodata.balance_hysteresis = policy.config().balance_hysteresis;
        for llc in 0..topo.nr_llcs() {
            rodata.llc_node[llc] = topo.node_of(llc) as u32;
            for (i, other) in topo.steal_order(llc).into_iter().enumerate() {
                rodata.llc_steal_order[llc][i] = other as u32;
            }
            let cpus = topo.llc_cpus(llc);
            rodata.llc_nr_cpus[llc] = cpus.len() as u32;
            for (i, &cpu) in cpus.iter().enumerate() {
                rodata.llc_cpus[llc][i] = cpu;
                rodata.cpu_llc[cpu as usize] = llc as u32;
                rodata.cpu_core[cpu as usize] = topo.core_of(cpu).unwrap_or(cpu);
            }
        }

        let mut skel = scx_ops_load!(skel, storeland_ops, uei)?;
        let link = scx_ops_attach!(skel, storeland_ops)?;
        let rings = Rings::new(&skel.maps.queued, &skel.maps.decisions)?;
        Ok((
            Self {
                skel,
                link: Some(link),
                queued_wakeups,
            },
            rings,
        ))
    }

    /// The kernel unloaded us (error, sysrq, hotplug).
    pub fn exited(&self) -> bool {
        uei_exited!(&self.skel, uei)
    }

    /// The mmap'ed .bss shared with BPF.
    fn bss(&self) -> &types::bss {
        self.skel
            .maps
            .bss_data
            .as_ref()
            .expect("BPF object has no bss")
    }

    /// The per-CPU counter slots, viewed as the shared `intf` type.
    fn slots(&self) -> &[intf::cpu_counters] {
        const _: () = assert!(
            std::mem::size_of::<types::cpu_counters>() == std::mem::size_of::<intf::cpu_counters>()
        );
        let counters = &self.bss().counters;
        // SAFETY: both types are bindings of the same C struct (sizes checked
        // above, fields pinned by the intf tests), and the slice stays inside
        // the mmap'ed .bss array.
        unsafe {
            std::slice::from_raw_parts(
                counters.as_ptr().cast::<intf::cpu_counters>(),
                counters.len(),
            )
        }
    }

    /// Sum of the per-CPU counters.
    pub fn counters(&self) -> Counters {
        Counters::sum(self.slots())
    }

    /// The per-CPU counter slots of CPUs `0..nr_cpu_ids`, copied (for the stats).
    pub fn counter_slots(&self, nr_cpu_ids: usize) -> Vec<intf::cpu_counters> {
        let slots = self.slots();
        slots[..nr_cpu_ids.min(slots.len())].to_vec()
    }

    /// Waiting tasks per LLC (the sum of its CPUs' queues), as BPF last saw them.
    pub fn read_llc_load(&self, topo: &CcxTopology, load: &mut LoadView) {
        let queued = &self.bss().cpu_nr_queued;
        load.fill_from_cpu_queues(topo, |cpu| {
            queued
                .get(cpu as usize)
                // SAFETY: plain u32s in the mmap'ed .bss, written racily by BPF.
                .map_or(0, |q| unsafe { std::ptr::read_volatile(q) })
        });
    }

    /// Tell BPF the loop just drained the ring (its "user space is late" clock).
    pub fn note_drained(&mut self) {
        let now = monotonic_ns();
        if let Some(bss) = self.skel.maps.bss_data.as_mut() {
            // SAFETY: a plain u64 in the mmap'ed .bss; BPF reads it racily by design.
            unsafe { std::ptr::write_volatile(&mut bss.usersched_last_drain_ns, now) };
        }
    }

    /// Tell BPF the loop submitted decisions: the next ops.dispatch() drains them.
    pub fn note_submitted(&mut self) {
        if let Some(bss) = self.skel.maps.bss_data.as_mut() {
            let p = std::ptr::addr_of_mut!(bss.decisions_submitted);
            // SAFETY: an aligned u64 in the mmap'ed .bss that only this
            // thread writes; BPF reads it and drains whenever it changed.
            // Release: the ring's producer position is visible first.
            let n = unsafe { AtomicU64::from_ptr(p) };
            n.store(n.load(Ordering::Relaxed).wrapping_add(1), Ordering::Release);
        }
    }

    /// Wake an idle CPU to apply the decisions just submitted.
    pub fn kick_idle_cpu(&self) -> Result<()> {
        self.skel
            .progs
            .kick_idle_cpu
            .test_run(ProgramInput::default())
            .context("running kick_idle_cpu")?;
        Ok(())
    }

    /// Detach (if still attached) and return why the scheduler stopped.
    /// Err carries the kernel's reason for an error exit (stall, BPF error).
    pub fn detach_and_report(mut self) -> Result<Stopped> {
        drop(self.link.take());
        // scx_utils reports sysrq-S as an error; it is the operator's choice.
        if self.exit_kind() == ScxExitKind::SysRq as i32 {
            let uei = scx_utils::uei_read!(&self.skel, uei);
            let why = match uei.report() {
                Err(e) => e.to_string(),
                Ok(()) => "EXIT: disabled by sysrq-S".into(),
            };
            return Ok(Stopped::SysRq(why));
        }
        uei_report!(&self.skel, uei).map(Stopped::Exit)
    }

    /// The kernel's scx_exit_kind, 0 while attached.
    fn exit_kind(&self) -> i32 {
        let data = self
            .skel
            .maps
            .data_data
            .as_ref()
            .expect("BPF object has no data");
        // SAFETY: a plain i32 in the mmap'ed .data, written by the kernel's ops.exit.
        unsafe { std::ptr::read_volatile(&data.uei.kind as *const _) }
    }
}

/// CLOCK_MONOTONIC in ns, the clock bpf_ktime_get_ns() reads.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
