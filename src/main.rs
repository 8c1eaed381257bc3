//! scx_storeland: entry point and the operator contract.
//!
//! Exit codes: 0 clean detach on SIGINT/SIGTERM/SIGHUP; 1 any failure,
//! including a kernel ejection; 2 usage error; 3 kernel without sched_ext;
//! 4 the operator disabled sched_ext with sysrq-S; 101 a panic.

mod cli;
mod daemon;
mod loader;
mod rings;

use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use log::{error, info, warn};
use scx_rustland_core::ALLOCATOR;

use storeland::hoststate::{InstanceLock, SysctlRecord, STATE_DIR};
use storeland::policy::{Policy, PolicyConfig};
use storeland::preflight::{self, Host, EXIT_FAILURE, EXIT_SYSRQ};
use storeland::stats::{self, StatsService};
use storeland::topology::CcxTopology;

use cli::{Command, Opts, TopArgs};
use daemon::{Daemon, Outcome};
use loader::{Attached, LoadOptions};

const EXIT_OK: i32 = 0;

/// How long a start waits for a previous scheduler still being disabled.
const DISABLING_WAIT: Duration = Duration::from_secs(10);

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
    if opts.help_stats {
        return match stats::metrics::write_help(&mut std::io::stdout()) {
            Ok(()) => EXIT_OK,
            Err(_) => EXIT_FAILURE,
        };
    }
    if let Some(Command::Top(args)) = &opts.command {
        return top(args, &opts.stats_socket); // no logger: it would garble the screen
    }
    init_logging(opts.verbose);
    if let Some(secs) = opts.monitor {
        return monitor(&opts.stats_socket, secs, opts.json);
    }
    info!("{} starting", version());
    info!(
        "options: {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );

    // A scheduler being disabled (e.g. our predecessor, just killed) is
    // gone within moments: wait for it rather than fail.
    if let Err(blocker) = preflight::check_waiting(&Host::current(), DISABLING_WAIT) {
        error!("{}", blocker.message());
        return blocker.exit_code();
    }
    // One scheduling instance at a time; it repairs what a killed one left.
    let _instance = match InstanceLock::acquire(Path::new(STATE_DIR)) {
        Ok(lock) => lock,
        Err(e) => {
            error!("{}", e.message());
            return EXIT_FAILURE;
        }
    };
    install_panic_hook();
    protect_from_oom();

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
    let _memory = LockedMemory::lock(SysctlRecord::compact_unevictable(Path::new(STATE_DIR)));

    let mut open_object = MaybeUninit::uninit();
    let mut stats: Option<StatsService> = None;
    let (mut restarts, mut last_restart) = (0u64, None::<String>);
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
            "scheduler attached: slice {} us, a queue per CPU in {nr_llcs} CCX(s), queued wake-ups {}",
            opts.slice_us,
            if bpf.queued_wakeups { "on" } else { "off" }
        );
        let attached_at = stats::monotonic_ns();
        if stats.is_none() && restarts == 0 {
            stats = serve_stats(opts, &shutdown);
        }
        let responder = stats
            .as_ref()
            .map(|s| s.responder(attached_at, restarts, last_restart.clone()));
        let stats_every = opts.stats.map(Duration::from_secs_f64);
        let daemon = Daemon::new(bpf, rings, policy, shutdown.clone(), stats_every);
        let daemon = daemon
            .with_stats(responder)
            .with_panic_after(opts.fault_panic_after);
        match daemon.run()? {
            Outcome::Detached => {
                info!("detached on request; the kernel's default scheduler is back");
                return Ok(EXIT_OK);
            }
            Outcome::Restart(why) => {
                warn!("restarting at the kernel's request: {why}");
                restarts += 1;
                last_restart = Some(why);
                continue;
            }
            Outcome::Ejected(why) => {
                error!("{why}");
                return Ok(EXIT_FAILURE);
            }
            Outcome::SysRq(why) => {
                warn!(
                    "{why}: the operator switched back to the kernel's default scheduler; \
                     exiting with {EXIT_SYSRQ} (do not restart)"
                );
                return Ok(EXIT_SYSRQ);
            }
        }
    }
}

/// Serve stats on the standard socket, now that we are attached (so the
/// socket cannot belong to a scheduler we replace); with `--stats SECS`,
/// also print them from a client thread (never from the scheduling loop).
/// Stats are optional: any problem is a warning, never a reason to stop.
fn serve_stats(opts: &Opts, shutdown: &Arc<AtomicBool>) -> Option<StatsService> {
    let loop_tid = Some(std::process::id() as i32); // the main thread runs the loop
    let version = env!("CARGO_PKG_VERSION");
    let service = match StatsService::launch(&opts.stats_socket, version, loop_tid) {
        Ok(s) => s,
        Err(e) => {
            warn!("stats: not serving: {e:#}");
            return None;
        }
    };
    info!("stats: serving on {}", service.path().display());
    if let Some(secs) = opts.stats {
        let (path, flag) = (service.path().to_path_buf(), shutdown.clone());
        let spawned = std::thread::Builder::new()
            .name("stats-print".into())
            .spawn(move || {
                let mut out = std::io::stdout();
                let every = Duration::from_secs_f64(secs);
                let stop = || flag.load(Ordering::Relaxed);
                if let Err(e) = stats::client::monitor(&path, every, false, &stop, &mut out) {
                    warn!("stats: printing stopped: {e:#}");
                }
            });
        if let Err(e) = spawned {
            warn!("stats: cannot start the printing thread: {e}");
        }
    }
    Some(service)
}

/// `--monitor SECS`: print the running instance's stats; no scheduling.
fn monitor(path: &Path, secs: f64, json: bool) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        error!("installing the signal handler: {e}");
        return EXIT_FAILURE;
    }
    let should_exit = || stop.load(Ordering::Relaxed);
    let mut out = std::io::stdout();
    match stats::client::monitor(
        path,
        Duration::from_secs_f64(secs),
        json,
        &should_exit,
        &mut out,
    ) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            error!("monitor: {e:#}");
            EXIT_FAILURE
        }
    }
}

/// `top`: the terminal UI, a client of the stats socket.
fn top(args: &TopArgs, socket: &Path) -> i32 {
    let opts = storeland::top::TopOptions {
        socket: socket.to_path_buf(),
        once: args.once,
        replay: args.replay.clone(),
        interval: Duration::from_secs_f64(args.interval),
        width: args.width,
        height: args.height,
    };
    match storeland::top::run(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("scx_storeland top: error: {e:#}");
            EXIT_FAILURE
        }
    }
}

/// mlock'ed heap for the lifetime of the scheduler; restores the sysctl
/// scx_rustland_core changed when dropped. The sysctl's original value is
/// also kept on record under /run, so that the next start restores it if
/// this process dies without dropping this (SIGKILL).
struct LockedMemory {
    sysctl: Option<SysctlRecord>,
}

impl LockedMemory {
    /// Call it holding the instance lock.
    fn lock(sysctl: SysctlRecord) -> Self {
        match sysctl.repair() {
            Ok(Some(r)) => info!(
                "restored {}={} that a killed scx_storeland{} left at 0",
                sysctl.name(),
                r.restored,
                r.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            Ok(None) => {}
            Err(e) => warn!("{}: cannot repair: {e:#}", sysctl.name()),
        }
        let sysctl = match sysctl.record_original() {
            Ok(()) => Some(sysctl),
            Err(e) => {
                warn!(
                    "{}: cannot record the original value ({e:#}); \
                     if this process is killed, restore it by hand",
                    sysctl.name()
                );
                None
            }
        };
        ALLOCATOR.lock_memory();
        LockedMemory { sysctl }
    }
}

impl Drop for LockedMemory {
    fn drop(&mut self) {
        ALLOCATOR.unlock_memory();
        if let Some(s) = &self.sysctl {
            s.clear();
        }
    }
}

/// Tasks wait on the policy loop: the OOM killer must pick anyone else.
fn protect_from_oom() {
    if let Err(e) = std::fs::write("/proc/self/oom_score_adj", "-1000") {
        warn!("cannot set oom_score_adj to -1000: {e}");
    }
}

/// A panic unwinds (dropping the link, so the kernel falls back at once)
/// and exits 101; say so in the log too.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if std::thread::current().name() == Some("main") {
            error!(
                "the policy loop panicked: detaching (the kernel's default scheduler \
                 takes over) and exiting with 101"
            );
        }
    }));
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
