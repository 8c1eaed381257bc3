//! Serving the stats with scx_stats on the standard socket, so `--monitor`,
//! scxtop's scheduler view and scx's OpenMetrics exporter work unchanged.
//!
//! The scheduling loop does almost nothing: when a client asks, it copies
//! its counters into a [`SchedSample`] ([`StatsResponder::answer`], a
//! non-blocking channel poll). Everything else (/proc, rates, JSON) happens
//! on the server's threads. Clients share a sample for up to 50 ms
//! ([`SharedSample`]), so the loop is asked at most once per 50 ms however
//! many clients there are.
//!
//! The socket path is shared by every scx scheduler, and scx_stats deletes
//! whatever is at the path before binding. So before launching we check it
//! ([`claim_socket`]): a socket someone answers on is left alone, and so is
//! anything that is not a socket (the scheduler then runs without stats). A
//! dead socket is removed: we are attached, so no other sched_ext scheduler
//! runs to serve it (scx_bpfland, for one, leaves its socket behind when it
//! exits); a record next to it tells whether a killed scx_storeland left it.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender};
use scx_stats::{StatsErrno, StatsOps, StatsReader, StatsServer, StatsServerData};

use crate::stats::gate::{inner_path, Gate};
use crate::stats::metrics::all_meta;
use crate::stats::procfs::ProcSample;
use crate::stats::sample::SchedSample;
use crate::stats::{monotonic_ns, Collector, Reading};

/// Where every scx scheduler serves its stats.
pub const DEFAULT_SOCKET: &str = "/var/run/scx/root/stats";

/// How long a client request waits for the scheduling loop (it answers at
/// least every 100 ms while attached; longer means it is restarting).
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// How old a sample may be and still answer another client: well under
/// any monitor's interval (`--monitor 0.1` is the shortest in use).
pub const SHARED_SAMPLE_MAX_AGE: Duration = Duration::from_millis(50);

/// The record that marks a socket as ours: "<socket>.scx_storeland".
pub fn owner_record(socket: &Path) -> PathBuf {
    let mut p = socket.as_os_str().to_owned();
    p.push(".scx_storeland");
    PathBuf::from(p)
}

/// (device, inode) of a path, not following a final symlink.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

fn recorded_identity(record: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(record).ok()?;
    let mut w = text.split_ascii_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
}

/// What we found at the socket path before serving.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Nothing there.
    Free,
    /// A dead socket a previous scx_storeland left behind: removed.
    ReclaimedOurs,
    /// A dead socket another (exited) scheduler left behind: removed.
    ReclaimedStale,
}

/// Make `path` free for our server, without touching a live socket or
/// anything that is not a socket. Call it only while attached: then a dead
/// socket cannot belong to a scheduler about to serve. Errors say what is in
/// the way.
pub fn claim_socket(path: &Path) -> Result<Claim> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Claim::Free),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; leaving it alone",
            path.display()
        );
    }
    match UnixStream::connect(path) {
        Ok(_) => bail!(
            "another process serves stats on {}; leaving it alone",
            path.display()
        ),
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
        Err(e) => return Err(e).with_context(|| format!("probing {}", path.display())),
    }
    let record = owner_record(path);
    let ours = recorded_identity(&record) == Some((meta.dev(), meta.ino()));
    std::fs::remove_file(path)
        .with_context(|| format!("removing the dead socket {}", path.display()))?;
    let _ = std::fs::remove_file(&record);
    Ok(if ours {
        Claim::ReclaimedOurs
    } else {
        Claim::ReclaimedStale
    })
}

/// A socket we created; removed again when dropped, if it is still ours.
struct OwnedSocket {
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

impl OwnedSocket {
    /// Our private socket: only its own name says it is ours (scx_stats
    /// replaces whatever is there when it binds).
    fn private(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            identity: identity(path),
        }
    }

    /// The public socket, with the record [`claim_socket`] checks.
    fn mark(path: &Path) -> Self {
        let identity = identity(path);
        if let Some((dev, ino)) = identity {
            let record = format!("{dev} {ino} {}\n", std::process::id());
            if let Err(e) = std::fs::write(owner_record(path), record) {
                log::warn!(
                    "stats: cannot record {} as ours ({e}); a killed instance's socket \
                     will need removing by hand",
                    path.display()
                );
            }
        }
        Self {
            path: path.to_path_buf(),
            identity,
        }
    }
}

impl Drop for OwnedSocket {
    fn drop(&mut self) {
        if self.identity.is_some() && identity(&self.path) == self.identity {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(owner_record(&self.path));
        }
    }
}

/// A sample from the scheduling loop, through this client's channel to it.
fn ask_loop(tx: &Sender<()>, rx: &Receiver<SchedSample>) -> Result<SchedSample> {
    // A reply that came after an earlier request timed out.
    while rx.try_recv().is_ok() {}
    tx.send(()).map_err(|_| anyhow!("the scheduler stopped"))?;
    match rx.recv_timeout(REPLY_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(RecvTimeoutError::Timeout) => {
            Err(anyhow!("the scheduler did not answer (restarting?)")
                .context(StatsErrno(libc::EAGAIN)))
        }
        Err(RecvTimeoutError::Disconnected) => bail!("the scheduler stopped"),
    }
}

/// The newest loop sample and /proc reading, shared by every client: a
/// client asks the scheduling loop only when they are older than
/// [`SHARED_SAMPLE_MAX_AGE`]. scx_stats passes the loop one request at a
/// time, and the loop answers once per round, which lasts up to 100 ms when
/// it has nothing to schedule; so a sample per request capped all clients
/// together at one request per round. 20 `--monitor 0.1` clients next to
/// CPU hogs in the VM overran that: requests waited out the reply timeout
/// and were told EAGAIN for over a minute.
#[derive(Default)]
struct SharedSample(Mutex<Option<Arc<Reading>>>);

impl SharedSample {
    /// The shared reading if it was taken less than the maximum age before
    /// `now_ns`, else a new one from `ask`, which the other clients wait
    /// for instead of asking too.
    fn get(&self, now_ns: u64, ask: impl FnOnce() -> Result<Reading>) -> Result<Arc<Reading>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = slot.as_ref() {
            let age = now_ns.saturating_sub(shared.sched.taken_at_ns);
            if u128::from(age) < SHARED_SAMPLE_MAX_AGE.as_nanos() {
                return Ok(shared.clone());
            }
        }
        let fresh = Arc::new(ask()?);
        *slot = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The stats server, running. Dropping it stops serving and removes the socket.
pub struct StatsService {
    // Field order is drop order: close the public door first, then stop
    // scx_stats, removing each socket after its server.
    _gate: Gate,
    _socket: OwnedSocket,
    server: StatsServer<(), SchedSample>,
    _inner_socket: OwnedSocket,
    path: PathBuf,
}

impl StatsService {
    /// Claim `path` and serve the `top` target there. `loop_tid` is the
    /// scheduling thread's id, for its CPU time. Call it once the scheduler
    /// is attached: before that, the path may belong to the scheduler we
    /// would replace.
    pub fn launch(path: &Path, version: &str, loop_tid: Option<i32>) -> Result<Self> {
        let claim = claim_socket(path)?;
        match claim {
            Claim::ReclaimedOurs => log::info!(
                "stats: removed the socket a previous scx_storeland left at {}",
                path.display()
            ),
            Claim::ReclaimedStale => log::info!(
                "stats: removed a dead socket an earlier scheduler left at {}",
                path.display()
            ),
            Claim::Free => {}
        }
        let baseline = Arc::new(ProcSample::read(loop_tid));
        let version = version.to_string();
        let mut data = StatsServerData::new();
        for m in all_meta() {
            data = data.add_meta(m);
        }
        let shared = Arc::new(SharedSample::default());
        let open = move |_: (&Sender<()>, &Receiver<SchedSample>)| {
            let mut collector = Collector::new(version.clone(), (*baseline).clone());
            let shared = shared.clone();
            let read =
                move |_args: &BTreeMap<String, String>,
                      (tx, rx): (&Sender<()>, &Receiver<SchedSample>)| {
                    let reading = shared.get(monotonic_ns(), || {
                        let sched = ask_loop(tx, rx)?;
                        Ok(Reading {
                            sched,
                            proc: ProcSample::read(loop_tid),
                        })
                    })?;
                    Ok(serde_json::to_value(collector.update(reading))?)
                };
            Ok(Box::new(read) as Box<dyn StatsReader<(), SchedSample>>)
        };
        let data = data.add_ops(
            "top",
            StatsOps {
                open: Box::new(open),
                close: None,
            },
        );
        // scx_stats on a private socket, behind the gate (see `stats::gate`).
        let inner = inner_path(path);
        let server = StatsServer::new(data)
            .set_path(&inner)
            .launch()
            .with_context(|| format!("serving stats on {}", inner.display()))?;
        let inner_socket = OwnedSocket::private(&inner);
        let gate = Gate::launch(path, &inner)?;
        let socket = OwnedSocket::mark(path);
        Ok(Self {
            _gate: gate,
            _socket: socket,
            server,
            _inner_socket: inner_socket,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The scheduling loop's end of the channel, for one attach.
    pub fn responder(
        &self,
        attached_at_ns: u64,
        restarts: u64,
        last_restart_reason: Option<String>,
    ) -> StatsResponder {
        let (replies, requests) = self.server.channels();
        StatsResponder {
            requests,
            replies,
            attached_at_ns,
            restarts,
            last_restart_reason,
        }
    }
}

/// The scheduling loop's end: answers stats requests without blocking.
#[derive(Clone)]
pub struct StatsResponder {
    requests: Receiver<()>,
    replies: Sender<SchedSample>,
    attached_at_ns: u64,
    restarts: u64,
    last_restart_reason: Option<String>,
}

impl StatsResponder {
    /// If a client is waiting, answer it with `sample()`; never blocks.
    /// `sample` fills what the loop owns; the attach facts are added here.
    #[inline]
    pub fn answer(&self, mut sample: impl FnMut() -> SchedSample) {
        while self.requests.try_recv().is_ok() {
            self.reply(sample());
        }
    }

    /// Wait up to `timeout` for a request and answer it (for a stats source
    /// that has its own thread, such as a test's fake scheduler).
    pub fn answer_within(&self, timeout: Duration, sample: impl FnOnce() -> SchedSample) -> bool {
        if self.requests.recv_timeout(timeout).is_err() {
            return false;
        }
        self.reply(sample());
        true
    }

    fn reply(&self, mut s: SchedSample) {
        s.attached_at_ns = self.attached_at_ns;
        s.restarts = self.restarts;
        s.last_restart_reason = self.last_restart_reason.clone();
        // Unbounded channel: never blocks. Fails only when the server is gone.
        let _ = self.replies.send(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::RingSample;
    use crate::topology::CcxTopology;

    const MS: u64 = 1_000_000;
    const SEC_NS: u64 = 1_000 * MS;

    fn sample(taken_at_ns: u64) -> Reading {
        let topo = CcxTopology::new(vec![vec![0]]).unwrap();
        let ring = RingSample::default();
        let sched = SchedSample::new(taken_at_ns, 0, topo, Vec::new(), ring);
        Reading {
            sched,
            proc: ProcSample::default(),
        }
    }

    #[test]
    fn clients_share_a_sample_until_it_is_too_old() {
        let shared = SharedSample::default();
        let asked = std::cell::Cell::new(0);
        let ask = |at| {
            asked.set(asked.get() + 1);
            Ok(sample(at))
        };
        let got = |r: Result<Arc<Reading>>| r.unwrap().sched.taken_at_ns;
        assert_eq!(got(shared.get(100 * MS, || ask(100 * MS))), 100 * MS);
        // Younger than the maximum age: shared, the loop is not asked.
        assert_eq!(got(shared.get(149 * MS, || ask(149 * MS))), 100 * MS);
        // As old as the maximum age: a new one.
        assert_eq!(got(shared.get(150 * MS, || ask(150 * MS))), 150 * MS);
        assert_eq!(asked.get(), 2);
    }

    #[test]
    fn after_a_failed_ask_the_next_client_asks_again() {
        let shared = SharedSample::default();
        assert!(shared.get(0, || Ok(sample(0))).is_ok());
        let err = shared.get(SEC_NS, || Err(anyhow!("the scheduler stopped")));
        assert!(err.is_err());
        // Still too old: the next client asks again rather than get it.
        let again = shared.get(SEC_NS, || Ok(sample(SEC_NS))).unwrap();
        assert_eq!(again.sched.taken_at_ns, SEC_NS);
    }
}
