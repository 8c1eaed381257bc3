//! The client side: `--monitor` (and `--stats`, which runs the same client
//! next to the scheduler), and the connection `top` uses.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use scx_stats::StatsClient;

use crate::stats::metrics::{StorelandStats, SCHEDULER_NAME};
use crate::topology::cpu_list;

/// How long one request may take before the client gives up on it.
const REQUEST_TIMEOUT_MS: u64 = 5000;

/// Why there are no stats right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Nothing listens at the path: no scheduler runs, or it has not attached yet.
    NotRunning,
    /// Something answered, but not with scx_storeland's stats.
    NotOurs(String),
    /// Any other failure (permissions, a broken connection).
    Error(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NotRunning => write!(f, "scx_storeland is not running (no stats server)"),
            Unavailable::NotOurs(who) => write!(f, "the stats server belongs to {who}"),
            Unavailable::Error(e) => write!(f, "{e}"),
        }
    }
}

/// What runs as the sched_ext scheduler now, from sysfs, for messages.
pub fn running_scheduler() -> Option<String> {
    let state = std::fs::read_to_string("/sys/kernel/sched_ext/state").ok()?;
    if state.trim() != "enabled" {
        return None;
    }
    std::fs::read_to_string("/sys/kernel/sched_ext/root/ops")
        .ok()
        .map(|s| s.trim().to_string())
}

/// A connection to scx_storeland's stats server, reconnecting as needed.
pub struct Connection {
    path: PathBuf,
    client: Option<StatsClient>,
}

impl Connection {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            client: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// One stats request; connects first if needed. A fresh connection's
    /// first stats cover the time since the scheduler attached.
    pub fn fetch(&mut self) -> Result<StorelandStats, Unavailable> {
        if self.client.is_none() {
            let c = StatsClient::new()
                .set_path(&self.path)
                .connect(Some(REQUEST_TIMEOUT_MS))
                .map_err(
                    |e| match e.downcast_ref::<std::io::Error>().map(|e| e.kind()) {
                        Some(ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                            Unavailable::NotRunning
                        }
                        _ => Unavailable::Error(format!("{}: {e:#}", self.path.display())),
                    },
                )?;
            self.client = Some(c);
        }
        let client = self.client.as_mut().expect("connected above");
        let value: Result<serde_json::Value> = client.request("stats", vec![]);
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                self.client = None;
                // The server went away between requests: the scheduler stopped.
                let gone = e.downcast_ref::<std::io::Error>().is_some()
                    || e.to_string().contains("connection closed");
                return Err(if gone {
                    Unavailable::NotRunning
                } else {
                    Unavailable::Error(format!("{e:#}"))
                });
            }
        };
        parse_ours(value).inspect_err(|_| self.client = None)
    }
}

/// Our stats, or who else is answering.
fn parse_ours(value: serde_json::Value) -> Result<StorelandStats, Unavailable> {
    if value.get("scheduler").and_then(|v| v.as_str()) != Some(SCHEDULER_NAME) {
        let who = running_scheduler().unwrap_or_else(|| "another scheduler".to_string());
        return Err(Unavailable::NotOurs(who));
    }
    serde_json::from_value(value).map_err(|e| Unavailable::Error(format!("bad stats: {e}")))
}

/// Sleep `d` in short steps, returning early (true) once `should_exit()`.
pub fn sleep_unless(d: Duration, should_exit: &dyn Fn() -> bool) -> bool {
    let end = Instant::now() + d;
    loop {
        if should_exit() {
            return true;
        }
        let now = Instant::now();
        if now >= end {
            return false;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// Print the running instance's stats every `interval` until
/// `should_exit()`: text blocks, or one JSON object per line with `json`.
/// Waits politely (one message, then a retry a second) while no
/// scx_storeland serves stats, including after it goes away.
pub fn monitor(
    path: &Path,
    interval: Duration,
    json: bool,
    should_exit: &dyn Fn() -> bool,
    out: &mut dyn Write,
) -> Result<()> {
    let mut conn = Connection::new(path);
    let mut said: Option<Unavailable> = None;
    while !should_exit() {
        match conn.fetch() {
            Ok(stats) => {
                if said.take().is_some() {
                    log::info!("stats: connected to scx_storeland at {}", path.display());
                }
                let text = if json {
                    serde_json::to_string(&stats)? + "\n"
                } else {
                    format_text(&stats)
                };
                match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    Ok(()) => {}
                    // The reader is gone (`--monitor 1 | head`): done.
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(e.into()),
                }
                if sleep_unless(interval, should_exit) {
                    break;
                }
            }
            Err(why) => {
                if said.as_ref() != Some(&why) {
                    log::info!("stats: waiting: {why} at {}", path.display());
                    said = Some(why.clone());
                }
                if let Unavailable::Error(e) = &why {
                    if e.contains("Permission denied") {
                        return Err(anyhow!("{e} (run as root)"));
                    }
                }
                if sleep_unless(Duration::from_secs(1), should_exit) {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}{unit}"))
}

/// A human-readable block: one summary line, then one line per LLC, NVMe
/// drive and task class. Absent numbers print as "-".
pub fn format_text(s: &StorelandStats) -> String {
    let mut t = String::new();
    t += &format!(
        "[storeland] up {:.1}s restarts {} | cpu {:.1}% irq {:.1}% | user {:.0}/s fast {:.0}/s \
         (share {}) congested {:.0}/s stale {:.0}/s redirected {:.0}/s steals {:.0}/s | \
         ring {:.0}% batch {}/{} pending {} deferred {:.0}/s | xllc {} waker-llc {} preempt {:.0}/s \
         irq-wake {:.0}/s hog-cut {:.0}/s idle-core {:.0}/s sync-pull {:.0}/s irq-pull {:.0}/s irq-idle-kept {:.0}/s hog-spread {:.0}/s half-core {:.0}/s held-kept {:.0}/s rescued {:.0}/s | \
         smt {} numa {} | daemon {} loop {} majflt {}\n",
        s.uptime_s,
        s.restarts,
        s.cpu_util_pct,
        s.irq_pct,
        s.user_dispatches_per_sec,
        s.fastpath_dispatches_per_sec,
        opt(s.user_dispatch_share_pct, "%"),
        s.congestion_fallbacks_per_sec,
        s.stale_dropped_per_sec,
        s.affinity_redirects_per_sec,
        s.llc_steals_per_sec,
        s.ring_fill_pct,
        opt(s.ring_drain_batch_avg, ""),
        s.ring_drain_batch_max,
        s.decisions_pending,
        s.decisions_deferred_per_sec,
        opt(s.cross_llc_migrations_per_sec, "/s"),
        opt(s.wakeups_on_waker_llc_pct, "%"),
        s.preemptions_per_sec,
        s.irq_wakeups_per_sec,
        s.hog_turns_cut_per_sec,
        s.idle_core_picks_per_sec,
        s.sync_wakeups_pulled_per_sec,
        s.irq_wakeups_pulled_per_sec,
        s.irq_idle_kept_per_sec,
        s.hog_spreads_per_sec,
        s.half_core_wakeups_per_sec,
        s.held_cpu_kept_per_sec,
        s.starvation_rescues_per_sec,
        s.smt_threads_per_core,
        s.nr_numa_nodes,
        opt(s.daemon_cpu_pct, "%"),
        opt(s.daemon_loop_cpu_pct, "%"),
        s.daemon_major_faults
            .map_or_else(|| "-".to_string(), |n| n.to_string()),
    );
    for (id, l) in &s.llcs {
        t += &format!(
            "  llc {id} cpus {} util {:.1}% irq {:.1}% nvme {} steals {:.0}/s runnable {} \
             wait p50 {} p99 {}\n",
            cpu_list(&l.cpus),
            l.util_pct,
            l.irq_pct,
            opt(l.nvme_irqs_per_sec, "/s"),
            l.steals_per_sec,
            l.runnable
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            opt(l.queue_wait_p50_us, "us"),
            opt(l.queue_wait_p99_us, "us"),
        );
    }
    for (name, d) in &s.nvme {
        let spread: Vec<String> = d
            .llc_irqs_per_sec
            .iter()
            .enumerate()
            .map(|(i, r)| format!("llc{i} {r:.0}/s"))
            .collect();
        t += &format!(
            "  {name} irqs {:.0}/s queues {} cpus {} | {}\n",
            d.irqs_per_sec,
            d.queues,
            d.cpus_serving,
            spread.join(" ")
        );
    }
    for (name, c) in &s.classes {
        t += &format!(
            "  class {name} wakeups {:.0}/s wake-to-run p50 {} p99 {}\n",
            c.wakeups_per_sec,
            opt(c.wake_to_run_p50_us, "us"),
            opt(c.wake_to_run_p99_us, "us"),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_numbers_print_as_dashes() {
        let mut s = StorelandStats {
            scheduler: SCHEDULER_NAME.into(),
            ..Default::default()
        };
        s.llcs.insert(
            0,
            crate::stats::metrics::LlcStats {
                cpus: vec![0, 1],
                ..Default::default()
            },
        );
        let t = format_text(&s);
        assert!(t.starts_with("[storeland] up 0.0s"), "{t}");
        assert!(t.contains("xllc -"), "{t}");
        assert!(t.contains("  llc 0 cpus 0-1 "), "{t}");
        assert!(t.contains("wait p50 - p99 -"), "{t}");
    }

    #[test]
    fn a_missing_socket_means_not_running() {
        let mut c = Connection::new(Path::new("/nonexistent/scx_storeland/stats"));
        assert_eq!(c.fetch().unwrap_err(), Unavailable::NotRunning);
    }

    #[test]
    fn foreign_stats_are_recognised() {
        let v = serde_json::json!({"nr_running": 1});
        assert!(matches!(parse_ours(v), Err(Unavailable::NotOurs(_))));
    }
}
