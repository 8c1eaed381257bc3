//! The gate in front of scx_stats on the public socket.
//!
//! scx_stats speaks the protocol, but it reads a request line of any length
//! and starts one thread per client. The daemon allocates from a fixed,
//! locked heap, so one root client sending a 100 MB line with no newline
//! aborted the scheduler. scx_stats therefore listens on a private socket
//! next to the public one, and this gate owns the public path: it admits at
//! most [`MAX_CLIENTS`] at a time, forwards request lines of at most
//! [`MAX_REQUEST_BYTES`] one by one, and drops a client that stops reading
//! its replies. Whatever a client does costs the daemon a bounded amount of
//! memory and never reaches the scheduling loop.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Clients served at once; more get a one-line EBUSY reply and are closed.
pub const MAX_CLIENTS: usize = 32;

/// Longest request line accepted (requests are a few dozen bytes).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// How long a reply may sit unread before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The private socket scx_stats serves on, next to the public `path`.
pub fn inner_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".scx_storeland-inner");
    PathBuf::from(p)
}

/// One line of the scx_stats reply format carrying an error.
fn error_reply(errno: i32, message: &str) -> Vec<u8> {
    let mut line = serde_json::json!({ "errno": errno, "args": { "resp": message } })
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}

/// What reading one request produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// A line (with its newline, if the client sent one) in the buffer.
    Line,
    /// The client closed the connection.
    Closed,
    /// More than `limit` bytes without a newline.
    TooLong,
}

/// Read one request line of at most `limit` bytes into `buf`, never
/// buffering more than `limit + 1` bytes whatever the client sends.
pub fn read_request(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> Result<Request> {
    buf.clear();
    let n = r.by_ref().take(limit as u64 + 1).read_until(b'\n', buf)?;
    Ok(match n {
        0 => Request::Closed,
        _ if buf.last() == Some(&b'\n') => Request::Line,
        _ if n > limit => Request::TooLong,
        // The last request of a client that closed without a newline.
        _ => Request::Line,
    })
}

/// The public socket, served by a thread until dropped.
pub struct Gate {
    path: PathBuf,
    exit: Arc<AtomicBool>,
}

impl Gate {
    /// Bind `path` (which must be free) and forward its clients to `inner`.
    pub fn launch(path: &Path, inner: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("creating UNIX socket {}", path.display()))?;
        let exit = Arc::new(AtomicBool::new(false));
        let flag = exit.clone();
        let inner = inner.to_path_buf();
        thread::Builder::new()
            .name("stats-gate".into())
            .spawn(move || accept_loop(listener, inner, flag))
            .context("starting the stats gate thread")?;
        Ok(Self {
            path: path.to_path_buf(),
            exit,
        })
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.exit.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.path);
    }
}

/// Decrements the client count when a client's thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn accept_loop(listener: UnixListener, inner: PathBuf, exit: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if exit.load(Ordering::Relaxed) {
            break;
        }
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log::warn!("stats: accepting a client failed ({e})");
                continue;
            }
        };
        if active.fetch_add(1, Ordering::Relaxed) >= MAX_CLIENTS {
            active.fetch_sub(1, Ordering::Relaxed);
            refuse_busy(&mut stream);
            continue;
        }
        let slot = Slot(active.clone());
        let inner = inner.clone();
        let spawned = thread::Builder::new()
            .name("stats-client".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = forward(stream, &inner) {
                    log::debug!("stats: client dropped ({e:#})");
                }
            });
        if let Err(e) = spawned {
            log::warn!("stats: cannot start a client thread ({e})");
        }
    }
}

/// Tell a client beyond [`MAX_CLIENTS`] to come back later. Its request is
/// read first (briefly, bounded), so that the reply answers it as usual: a
/// client whose write found the connection already closed would see a broken
/// pipe instead of the reason. Never blocks the accept loop for long.
fn refuse_busy(stream: &mut UnixStream) {
    const WAIT: Duration = Duration::from_millis(100);
    let _ = stream.set_write_timeout(Some(WAIT));
    // Up to the end of the first line, within WAIT in all (each read gets
    // what is left of it): a client may write its request in pieces, and
    // any piece written after we close would fail.
    let deadline = Instant::now() + WAIT;
    let mut request = [0u8; 4096];
    let mut seen = 0;
    while seen < request.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut request[seen..]) {
            Ok(0) | Err(_) => break,
            Ok(n) if request[seen..seen + n].contains(&b'\n') => break,
            Ok(n) => seen += n,
        }
    }
    let busy = format!("too many stats clients (at most {MAX_CLIENTS})");
    let _ = stream.write_all(&error_reply(libc::EBUSY, &busy));
}

/// Relay one client's requests to scx_stats and its replies back, a line at
/// a time.
fn forward(client: UnixStream, inner: &Path) -> Result<()> {
    client.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let upstream =
        UnixStream::connect(inner).with_context(|| format!("connecting to {}", inner.display()))?;
    let mut from_server = BufReader::new(upstream.try_clone()?);
    let mut to_server = upstream;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let (mut request, mut reply) = (Vec::new(), Vec::new());
    loop {
        match read_request(&mut from_client, &mut request, MAX_REQUEST_BYTES)? {
            Request::Closed => return Ok(()),
            Request::TooLong => {
                let msg = format!("request longer than {MAX_REQUEST_BYTES} bytes");
                let _ = to_client.write_all(&error_reply(libc::E2BIG, &msg));
                bail!("{msg}");
            }
            Request::Line => {
                if request.last() != Some(&b'\n') {
                    request.push(b'\n');
                }
                to_server.write_all(&request)?;
                reply.clear();
                if from_server.read_until(b'\n', &mut reply)? == 0 {
                    bail!("the stats server closed the connection");
                }
                to_client.write_all(&reply)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8], limit: usize) -> Vec<(Request, Vec<u8>)> {
        let mut r = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut buf = Vec::new();
        loop {
            let req = read_request(&mut r, &mut buf, limit).unwrap();
            let done = req != Request::Line;
            out.push((req, buf.clone()));
            if done {
                return out;
            }
        }
    }

    #[test]
    fn lines_within_the_limit_pass_whole() {
        let got = read_all(b"{\"a\":1}\nxy\n", 8);
        assert_eq!(got[0], (Request::Line, b"{\"a\":1}\n".to_vec()));
        assert_eq!(got[1], (Request::Line, b"xy\n".to_vec()));
        assert_eq!(got[2].0, Request::Closed);
    }

    #[test]
    fn a_last_line_without_newline_is_still_a_request() {
        let got = read_all(b"abc", 8);
        assert_eq!(got[0], (Request::Line, b"abc".to_vec()));
        assert_eq!(got[1].0, Request::Closed);
    }

    #[test]
    fn an_overlong_line_stops_after_limit_plus_one_bytes() {
        let input = vec![b'x'; 10_000];
        let got = read_all(&input, 100);
        assert_eq!(got[0].0, Request::TooLong);
        assert_eq!(got[0].1.len(), 101, "never buffers more than the limit + 1");
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let mut input = vec![b'x'; 100];
        input.push(b'\n');
        let got = read_all(&input, 100);
        assert_eq!(got[0].0, Request::Line, "limit bytes plus the newline");
        assert_eq!(got[0].1.len(), 101);
    }

    #[test]
    fn error_replies_are_one_json_line() {
        let line = error_reply(libc::EBUSY, "busy");
        assert_eq!(line.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["errno"], libc::EBUSY);
        assert_eq!(v["args"]["resp"], "busy");
    }
}
