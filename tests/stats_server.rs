//! The stats server and its clients against a fake scheduler: a thread that
//! answers the loop's end of the channel with made-up counters, exactly as
//! the scheduling loop does. Runs on any host (no sched_ext, no root).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use storeland::intf::cpu_counters;
use storeland::stats::client::{monitor, Connection, Unavailable};
use storeland::stats::server::{claim_socket, owner_record, Claim, SHARED_SAMPLE_MAX_AGE};
use storeland::stats::{monotonic_ns, RingSample, SchedSample, StatsService, StorelandStats};
use storeland::topology::CcxTopology;

/// A fresh directory for one test's socket.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("storeland-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fake_sample(n: u64) -> SchedSample {
    let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
    let per_cpu = (0..4)
        .map(|cpu| {
            // SAFETY: plain integers; all-zero is valid.
            let mut c: cpu_counters = unsafe { std::mem::zeroed() };
            c.user_dispatches = 100 * n * (cpu + 1);
            c.fastpath_idle = 10 * n;
            c
        })
        .collect();
    let ring = RingSample {
        capacity_tasks: 8192,
        ..Default::default()
    };
    SchedSample::new(monotonic_ns(), 0, topo, per_cpu, ring)
}

/// A fake scheduling loop answering every request until dropped.
struct FakeScheduler {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<u64>>,
}

impl FakeScheduler {
    /// Answers each request as it comes.
    fn start(service: &StatsService) -> Self {
        Self::run(service, None)
    }

    /// Answers what waits once per `round`, as the scheduling loop answers
    /// between its rounds.
    fn answering_every(service: &StatsService, round: Duration) -> Self {
        Self::run(service, Some(round))
    }

    fn run(service: &StatsService, round: Option<Duration>) -> Self {
        let responder = service.responder(monotonic_ns(), 0, None);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut answered = 0;
            while !flag.load(Ordering::Relaxed) {
                match round {
                    None => {
                        let sample = || fake_sample(answered + 1);
                        if responder.answer_within(Duration::from_millis(50), sample) {
                            answered += 1;
                        }
                    }
                    Some(round) => {
                        thread::sleep(round);
                        responder.answer(|| {
                            answered += 1;
                            fake_sample(answered)
                        });
                    }
                }
            }
            answered
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// One request on a new connection, and its parsed reply.
fn raw_request(path: &Path, line: &str) -> serde_json::Value {
    request_on(&UnixStream::connect(path).unwrap(), line)
}

/// One request line on an open connection, and its parsed reply.
fn request_on(mut s: &UnixStream, line: &str) -> serde_json::Value {
    // One write: a server that answers and closes after the first piece
    // would fail a second write with a broken pipe.
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    read_reply(s)
}

/// The next reply line on `s`, parsed.
fn read_reply(s: &UnixStream) -> serde_json::Value {
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[test]
fn clients_get_our_stats_from_the_scheduling_loop() {
    let dir = temp_dir("serve");
    let path = dir.join("stats");
    let service = StatsService::launch(&path, "test", None).unwrap();
    let fake = FakeScheduler::start(&service);

    let mut conn = Connection::new(&path);
    let first = conn.fetch().unwrap();
    assert_eq!(first.scheduler, "scx_storeland");
    assert_eq!(first.version, "test");
    assert_eq!((first.nr_cpus, first.nr_llcs), (4, 2));
    assert_eq!(first.llcs[&0].cpus, vec![0, 1]);
    assert_eq!(first.llcs[&1].cpus, vec![2, 3]);
    // A newer sample than the first, for rates (clients share one for a while).
    thread::sleep(SHARED_SAMPLE_MAX_AGE + Duration::from_millis(10));
    let second = conn.fetch().unwrap();
    assert!(second.user_dispatches_per_sec > 0.0, "{second:?}");
    assert_eq!(
        second.cross_llc_migrations_per_sec, None,
        "no source: absent"
    );
    assert_eq!(second.classes.len(), 3, "one entry per task class");

    // The raw protocol, as scxtop and the OpenMetrics exporter speak it.
    let meta = raw_request(&path, r#"{"req":"stats_meta"}"#);
    assert_eq!(meta["errno"], 0);
    assert_eq!(meta["args"]["resp"]["StorelandStats"]["top"], "true");
    let llc_field = &meta["args"]["resp"]["StorelandStats"]["fields"]["llcs"];
    assert_eq!(llc_field["dict"]["datum"]["struct"], "LlcStats");
    let stats = raw_request(&path, r#"{"req":"stats","args":{"target":"top"}}"#);
    assert_eq!(stats["errno"], 0);
    let parsed: StorelandStats = serde_json::from_value(stats["args"]["resp"].clone()).unwrap();
    assert_eq!(parsed.llcs.len(), 2);

    // Bad requests get an errno, not a hang or a crash.
    let bad = raw_request(&path, r#"{"req":"stats","args":{"target":"nope"}}"#);
    assert_ne!(bad["errno"], 0);
    let garbage = raw_request(&path, "this is not json");
    assert_ne!(garbage["errno"], 0);
    assert!(conn.fetch().is_ok(), "the server still answers");

    assert!(fake.stop() >= 2);
    drop(service);
    assert!(!path.exists(), "our socket is removed on exit");
    assert!(!owner_record(&path).exists());
}

/// Many clients at once against a loop that answers only every 400 ms, as
/// an idle scheduling loop answers once per 100 ms round: every request is
/// answered, from one shared sample. With a loop request per client
/// request (scx_stats passes the loop one at a time), 12 clients queued
/// 4.8 s deep and requests timed out after 3 s with EAGAIN.
#[test]
fn many_clients_share_samples_from_a_slow_loop() {
    const CLIENTS: usize = 12;
    const REQUESTS: usize = 5;
    let dir = temp_dir("concurrent");
    let path = dir.join("stats");
    let service = StatsService::launch(&path, "test", None).unwrap();
    let fake = FakeScheduler::answering_every(&service, Duration::from_millis(400));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let path = path.clone();
            thread::spawn(move || {
                let mut conn = Connection::new(&path);
                (0..REQUESTS)
                    .filter_map(|_| conn.fetch().err())
                    .map(|e| format!("{e:?}"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(fake.stop() >= 1);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed, first: {}",
        failures.len(),
        CLIENTS * REQUESTS,
        failures[0]
    );
}

#[test]
fn a_live_socket_or_a_file_is_never_touched_a_dead_socket_is_reclaimed() {
    let dir = temp_dir("claim");
    let path = dir.join("stats");

    // Someone else serving there: left alone, we do not serve.
    let other = UnixListener::bind(&path).unwrap();
    assert!(StatsService::launch(&path, "test", None).is_err());
    assert!(path.exists());
    drop(other);

    // Their dead socket (an exited scheduler's, no record of ours): we are
    // attached, so nobody will serve it: reclaimed.
    assert!(path.exists(), "a dropped listener leaves its socket file");
    assert_eq!(claim_socket(&path).unwrap(), Claim::ReclaimedStale);
    assert!(!path.exists());
    let other = UnixListener::bind(&path).unwrap();
    drop(other);

    // Not a socket at all: left alone.
    let file = dir.join("file");
    std::fs::write(&file, "x").unwrap();
    assert!(claim_socket(&file).is_err());
    assert!(file.exists());

    // A socket a killed scx_storeland left (its record matches): reclaimed.
    std::fs::remove_file(&path).unwrap();
    let service = StatsService::launch(&path, "test", None).unwrap();
    std::mem::forget(service); // as if SIGKILLed: nothing cleaned up
    assert!(path.exists() && owner_record(&path).exists());
    // forget() leaves the listener thread running; make the socket dead.
    std::fs::rename(&path, dir.join("moved")).unwrap();
    let dead = UnixListener::bind(&path).unwrap();
    drop(dead);
    let meta = std::fs::metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    std::fs::write(
        owner_record(&path),
        format!("{} {} 1\n", meta.dev(), meta.ino()),
    )
    .unwrap();
    assert_eq!(claim_socket(&path).unwrap(), Claim::ReclaimedOurs);
    assert!(!path.exists());
    assert_eq!(claim_socket(&path).unwrap(), Claim::Free);
}

/// A writer that reports each line it receives.
struct Lines(mpsc::Sender<String>, Vec<u8>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(pos) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=pos).collect();
            let _ = self
                .0
                .send(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn monitor_waits_for_the_scheduler_then_prints_json_lines() {
    let dir = temp_dir("monitor");
    let path = dir.join("stats");
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let monitor_path = path.clone();
    let client = thread::spawn(move || {
        let mut out = Lines(tx, Vec::new());
        monitor(
            &monitor_path,
            Duration::from_millis(100),
            true,
            &|| flag.load(Ordering::Relaxed),
            &mut out,
        )
    });

    // No scheduler yet: the monitor waits, printing nothing.
    assert!(rx.try_recv().is_err());
    let mut conn = Connection::new(&path);
    assert_eq!(conn.fetch().unwrap_err(), Unavailable::NotRunning);

    let service = StatsService::launch(&path, "test", None).unwrap();
    let fake = FakeScheduler::start(&service);
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a JSON line"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap().unwrap();
    fake.stop();
    for line in &lines {
        let s: StorelandStats = serde_json::from_str(line).unwrap();
        assert_eq!(s.scheduler, "scx_storeland");
        assert_eq!(s.llcs.len(), 2);
    }
}

#[test]
fn a_huge_request_line_is_refused_without_buffering_it() {
    let dir = temp_dir("longline");
    let path = dir.join("stats");
    let service = StatsService::launch(&path, "test", None).unwrap();
    let fake = FakeScheduler::start(&service);

    // 100 MB with no newline. The daemon allocates from scx_rustland_core's
    // fixed 64 MiB heap: buffering it aborted the daemon in the VM.
    let mut s = UnixStream::connect(&path).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    while sent < 100 << 20 {
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(sent < 100 << 20, "the gate stopped reading (sent {sent})");
    let reply = read_reply(&s);
    assert_eq!(reply["errno"], libc::E2BIG, "{reply}");

    let mut conn = Connection::new(&path);
    assert!(conn.fetch().is_ok(), "the server still answers");
    fake.stop();
}

#[test]
fn clients_beyond_the_limit_are_told_busy_and_slots_come_back() {
    use storeland::stats::gate::MAX_CLIENTS;
    let dir = temp_dir("busy");
    let path = dir.join("stats");
    let service = StatsService::launch(&path, "test", None).unwrap();
    let fake = FakeScheduler::start(&service);

    let mut held: Vec<UnixStream> = (0..MAX_CLIENTS)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    // Each held client is served: one request each proves it got a slot.
    for s in &held {
        let reply = request_on(s, r#"{"req":"stats_meta"}"#);
        assert_eq!(reply["errno"], 0, "{reply}");
    }
    let extra = raw_request(&path, r#"{"req":"stats_meta"}"#);
    assert_eq!(extra["errno"], libc::EBUSY, "{extra}");

    // A client leaving frees its slot.
    held.pop();
    let mut answered = None;
    for _ in 0..100 {
        let r = raw_request(&path, r#"{"req":"stats_meta"}"#);
        if r["errno"] == 0 {
            answered = Some(r);
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(answered.is_some(), "a freed slot is reused");
    drop(held);
    fake.stop();
}
