//! scx_storeland: entry point and the operator contract.
//!
//! Exit codes: 0 clean detach on SIGINT/SIGTERM/SIGHUP; 1 any failure,
//! including a kernel ejection; 2 usage error; 3 kernel without sched_ext.

mod cli;
mod daemon;
mod loader;
mod rings;

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use log::{error, info, warn};
use scx_rustland_core::ALLOCATOR;

use storeland::policy::{Policy, PolicyConfig};
use storeland::preflight::{self, Host, EXIT_FAILURE};
use storeland::topology::CcxTopology;

use cli::Opts;
use daemon::{Daemon, Outcome};
use loader::{Attached, LoadOptions};

const EXIT_OK: i32 = 0;

fn main() {
    // anyhow captures a backtrace per error when RUST_BACKTRACE is set; on
    // the fixed locked heap that can exhaust memory on an error path.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let opts = Opts::parse(); // usage errors exit 2 here
    std::process::exit(run(opts));
}

fn run(opts: Opts) -> i32 {
    if opts.version {
        println!("{}", version());
        return EXIT_OK;
    }
    init_logging(opts.verbose);
    info!("{} starting", version());
    info!(
        "options: {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );

    if let Err(blocker) = preflight::check(&Host::current()) {
        error!("{}", blocker.message());
        return blocker.exit_code();
    }

    match schedule(&opts) {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            EXIT_FAILURE
        }
    }
}

/// Attach and run until a signal or the kernel stops us; restart in place
/// when the kernel asks (CPU hotplug).
fn schedule(opts: &Opts) -> Result<i32> {
    let policy_cfg = PolicyConfig::from_slice(opts.slice_us * 1000)?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = shutdown.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the SIGINT/SIGTERM/SIGHUP handler")?;

    // Spawn-free from here on: lock the daemon's memory so it never waits
    // on a page fault while tasks wait on it.
    let _memory = LockedMemory::lock();

    let mut open_object = MaybeUninit::uninit();
    loop {
        let topo = CcxTopology::from_system()?;
        info!("topology: {topo}");
        let load = LoadOptions {
            partial: opts.partial,
            exit_dump_len: opts.exit_dump_len,
            verbose: opts.verbose,
            libbpf: opts.libbpf.clone(),
        };
        let nr_llcs = topo.nr_llcs();
        let policy = Policy::new(policy_cfg.clone(), topo)?;
        let (bpf, rings) = Attached::attach(&mut open_object, &load, &policy)?;
        info!(
            "scheduler attached: slice {} us, {nr_llcs} CCX queue(s)",
            opts.slice_us
        );
        let stats_every = opts.stats.map(Duration::from_secs_f64);
        match Daemon::new(bpf, rings, policy, shutdown.clone(), stats_every).run()? {
            Outcome::Detached => {
                info!("detached on request; the kernel's default scheduler is back");
                return Ok(EXIT_OK);
            }
            Outcome::Restart(why) => {
                warn!("restarting at the kernel's request: {why}");
                continue;
            }
            Outcome::Ejected(why) => {
                error!("{why}");
                return Ok(EXIT_FAILURE);
            }
        }
    }
}

/// mlock'ed heap for the lifetime of the scheduler; restores the sysctl
/// scx_rustland_core changed when dropped.
struct LockedMemory;

impl LockedMemory {
    fn lock() -> Self {
        ALLOCATOR.lock_memory();
        LockedMemory
    }
}

impl Drop for LockedMemory {
    fn drop(&mut self) {
        ALLOCATOR.unlock_memory();
    }
}

fn version() -> String {
    format!(
        "scx_storeland {} (scx_rustland_core {}) {}",
        env!("CARGO_PKG_VERSION"),
        scx_rustland_core::VERSION,
        std::env::consts::ARCH
    )
}

fn init_logging(verbose: bool) {
    let level = if verbose {
        simplelog::LevelFilter::Debug
    } else {
        simplelog::LevelFilter::Info
    };
    let config = simplelog::ConfigBuilder::new()
        .set_time_level(simplelog::LevelFilter::Error)
        .set_location_level(simplelog::LevelFilter::Off)
        .set_target_level(simplelog::LevelFilter::Off)
        .set_thread_level(simplelog::LevelFilter::Off)
        .build();
    let _ = simplelog::TermLogger::init(
        level,
        config,
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Never,
    );
}
