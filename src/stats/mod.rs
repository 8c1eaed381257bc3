//! Stats: what the scheduler decides, per CCX, per task class and per NVMe
//! drive, served with scx_stats and read by `--monitor` and `top`.
//!
//! - [`sample`]: the raw snapshot the scheduling loop hands over ([`SchedSample`]);
//! - [`procfs`]: CPU time, NVMe interrupts and the daemon's own CPU time from /proc;
//! - [`collect`]: rates, per-LLC sums and percentiles ([`Collector`]);
//! - [`metrics`]: the published JSON ([`StorelandStats`]), its scx_stats
//!   metadata and `--help-stats`;
//! - [`server`]: the scx_stats server and the loop's non-blocking responder;
//! - [`gate`]: the public socket in front of scx_stats, bounding what a
//!   client can make the daemon allocate;
//! - [`client`]: `--monitor` and the connection `top` uses.

pub mod client;
pub mod collect;
pub mod gate;
pub mod metrics;
pub mod procfs;
pub mod sample;
pub mod server;

pub use collect::{Collector, Reading};
pub use metrics::StorelandStats;
pub use sample::{Log2Histogram, RingSample, SchedSample, WakeLocality};
pub use server::{StatsResponder, StatsService, DEFAULT_SOCKET};

/// CLOCK_MONOTONIC in ns (the clock BPF's bpf_ktime_get_ns() reads).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
