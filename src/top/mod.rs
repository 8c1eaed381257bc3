//! `scx_storeland top`: a terminal UI attached to the running instance
//! through its stats socket. A separate process from the scheduler: nothing
//! here can stall a task waiting for a decision.
//!
//! - `top`: live, refreshing every interval; waits while no scheduler runs;
//! - `top --once`: one frame as plain text on stdout (no tty needed);
//! - `top --replay FILE`: plays back a `--monitor --json` recording.
//!
//! The terminal is restored on every exit: `q`, Ctrl-C, SIGTERM/SIGHUP, an
//! error, and a panic (the hook restores it before the message prints).

pub mod app;
pub mod ui;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;

use crate::stats::client::{running_scheduler, Connection};
use crate::stats::StorelandStats;
use app::{Action, App, Mode};

/// What `top` was asked to do.
#[derive(Clone, Debug)]
pub struct TopOptions {
    pub socket: PathBuf,
    pub once: bool,
    pub replay: Option<PathBuf>,
    /// Live refresh interval; with `--once`, the window the frame covers.
    pub interval: Duration,
    /// `--once` frame size; None: the terminal's, else 120x50.
    pub width: Option<u16>,
    pub height: Option<u16>,
}

/// Run `top`; returns the exit code.
pub fn run(opts: &TopOptions) -> Result<i32> {
    match (&opts.replay, opts.once) {
        (Some(file), true) => replay_once(opts, file),
        (Some(file), false) => interactive(opts, Some(load_recording(file)?)),
        (None, true) => live_once(opts),
        (None, false) => interactive(opts, None),
    }
}

/// Frames of a `--monitor --json` recording. Lines that are not our stats
/// (a truncated last line, log noise) are skipped; none at all is an error.
pub fn parse_recording(reader: impl BufRead, name: &str) -> Result<Vec<StorelandStats>> {
    let mut frames = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {name}"))?;
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        match serde_json::from_str::<StorelandStats>(line) {
            Ok(s) if s.is_ours() => frames.push(s),
            Ok(_) => log::debug!("{name}:{}: skipped: not scx_storeland's stats", n + 1),
            Err(e) => log::debug!("{name}:{}: skipped: {e}", n + 1),
        }
    }
    if frames.is_empty() {
        bail!("{name} has no scx_storeland stats (record one with --monitor SECS --json)");
    }
    Ok(frames)
}

fn load_recording(file: &Path) -> Result<Vec<StorelandStats>> {
    let f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    parse_recording(BufReader::new(f), &file.display().to_string())
}

fn once_size(opts: &TopOptions) -> (u16, u16) {
    let term = std::io::stdout()
        .is_terminal()
        .then(|| terminal::size().ok())
        .flatten();
    let (w, h) = term.unwrap_or((120, 50));
    (opts.width.unwrap_or(w), opts.height.unwrap_or(h))
}

fn print_frame(app: &App, opts: &TopOptions) -> Result<()> {
    let (w, h) = once_size(opts);
    let mut out = std::io::stdout().lock();
    out.write_all(ui::render_text(app, w.max(1), h.max(1)).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Advance the replay clock and log what changed, for frame `i`.
fn replay_feed(app: &mut App, frames: &[StorelandStats], i: usize) {
    if i > 0 {
        app.now_s += frames[i].interval_s;
    }
    app.on_fetch(Ok(frames[i].clone()), || None);
    if let Mode::Replay { pos, .. } = &mut app.mode {
        *pos = i;
    }
}

fn replay_mode(file: &Path, len: usize) -> Mode {
    Mode::Replay {
        file: file.display().to_string(),
        pos: 0,
        len,
        speed: 1.0,
    }
}

/// `--once --replay`: the recording's last frame, with its event log.
fn replay_once(opts: &TopOptions, file: &Path) -> Result<i32> {
    let frames = load_recording(file)?;
    let mut app = App::new(replay_mode(file, frames.len()), opts.interval);
    for i in 0..frames.len() {
        replay_feed(&mut app, &frames, i);
    }
    print_frame(&app, opts)?;
    Ok(0)
}

/// `--once`: one frame covering `interval` (or, with 0, the time since
/// attach). Exit 1 when no scx_storeland answers (the frame says why).
fn live_once(opts: &TopOptions) -> Result<i32> {
    let mut app = App::new(live_mode(opts), opts.interval);
    let mut conn = Connection::new(&opts.socket);
    let mut got = conn.fetch();
    if got.is_ok() && !opts.interval.is_zero() {
        std::thread::sleep(opts.interval);
        app.now_s = opts.interval.as_secs_f64();
        got = conn.fetch();
    }
    let ok = got.is_ok();
    app.on_fetch(got, || None);
    app.sched_ext = sched_ext_state();
    print_frame(&app, opts)?;
    Ok(if ok { 0 } else { 1 })
}

fn live_mode(opts: &TopOptions) -> Mode {
    Mode::Live {
        socket: opts.socket.display().to_string(),
    }
}

fn sched_ext_state() -> Option<String> {
    let state = std::fs::read_to_string("/sys/kernel/sched_ext/state").ok()?;
    Some(match running_scheduler() {
        Some(ops) => format!("{} ({ops})", state.trim()),
        None => state.trim().to_string(),
    })
}

/// Restores the terminal when dropped, whatever the exit path.
struct TerminalGuard;

fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
}

impl TerminalGuard {
    fn enter() -> Result<Self> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore_terminal();
                previous(info);
            }));
        });
        terminal::enable_raw_mode().context("switching the terminal to raw mode")?;
        let guard = TerminalGuard; // restores even if the next step fails
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )
        .context("entering the alternate screen")?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn interactive(opts: &TopOptions, recording: Option<Vec<StorelandStats>>) -> Result<i32> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("top needs a terminal; use `top --once` for a plain-text frame");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // SIGINT/SIGTERM/SIGHUP: leave through the same path as 'q'. (In raw
    // mode Ctrl-C arrives as a key, handled below.)
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));

    let _guard = TerminalGuard::enter()?;
    let mut term = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    term.clear()?;
    let result = match recording {
        Some(frames) => replay_loop(&mut term, opts, &frames, &stop),
        None => live_loop(&mut term, opts, &stop),
    };
    drop(term);
    result.map(|()| 0)
}

type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

/// For the terminal-restore test (tests/tui/tmux-top.sh): panic right after
/// the first frame when SCX_STORELAND_TOP_PANIC is set.
fn test_panic_hook() {
    if std::env::var_os("SCX_STORELAND_TOP_PANIC").is_some() {
        panic!("SCX_STORELAND_TOP_PANIC is set: panicking after the first frame (a test)");
    }
}

/// Wait for a key until `deadline`; returns the action.
fn next_key(app: &mut App, deadline: Instant) -> Result<Option<Action>> {
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_millis(200));
    if !event::poll(wait)? {
        return Ok(None);
    }
    Ok(match event::read()? {
        TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
            let ctrl_c =
                k.modifiers.contains(KeyModifiers::CONTROL) && matches!(k.code, KeyCode::Char('c'));
            match k.code {
                _ if ctrl_c => Some(Action::Quit),
                KeyCode::Esc => Some(Action::Quit),
                KeyCode::Char(c) => Some(app.on_key(c)),
                KeyCode::Right => Some(app.on_key('n')),
                KeyCode::Tab => Some(app.on_key('\t')),
                _ => None,
            }
        }
        TermEvent::Resize(..) => Some(Action::Redraw),
        _ => None,
    })
}

fn live_loop(term: &mut Term, opts: &TopOptions, stop: &AtomicBool) -> Result<()> {
    let started = Instant::now();
    let mut app = App::new(live_mode(opts), opts.interval);
    let mut conn = Connection::new(&opts.socket);
    let mut next_fetch = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        app.now_s = started.elapsed().as_secs_f64();
        if !app.paused && Instant::now() >= next_fetch {
            let got = conn.fetch();
            app.on_fetch(got, kernel_exit_reason);
            app.sched_ext = sched_ext_state();
            next_fetch = Instant::now() + app.interval;
        }
        term.draw(|f| ui::draw(f, &app))?;
        test_panic_hook();
        let deadline = if app.paused {
            Instant::now() + Duration::from_millis(200)
        } else {
            next_fetch
        };
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            match next_key(&mut app, deadline)? {
                Some(Action::Quit) => return Ok(()),
                Some(Action::Redraw) => {
                    if !app.paused {
                        next_fetch = next_fetch.min(Instant::now() + app.interval);
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn replay_loop(
    term: &mut Term,
    opts: &TopOptions,
    frames: &[StorelandStats],
    stop: &AtomicBool,
) -> Result<()> {
    let file = opts.replay.as_deref().unwrap_or(Path::new("?"));
    let mut app = App::new(replay_mode(file, frames.len()), opts.interval);
    let mut i = 0;
    replay_feed(&mut app, frames, 0);
    let mut next = Instant::now();
    let mut ended = false;
    while !stop.load(Ordering::Relaxed) {
        let speed = match app.mode {
            Mode::Replay { speed, .. } => speed,
            Mode::Live { .. } => 1.0,
        };
        let due = !app.paused && Instant::now() >= next;
        if due && i + 1 < frames.len() {
            i += 1;
            replay_feed(&mut app, frames, i);
        } else if due && !ended && i + 1 == frames.len() {
            app.log("end of recording (q quits)");
            ended = true;
        }
        if due {
            let step = frames.get(i + 1).map_or(1.0, |s| s.interval_s).max(0.05);
            next = Instant::now() + Duration::from_secs_f64(step / speed);
        }
        term.draw(|f| ui::draw(f, &app))?;
        test_panic_hook();
        let deadline = if app.paused || ended {
            Instant::now() + Duration::from_millis(200)
        } else {
            next
        };
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            match next_key(&mut app, deadline)? {
                Some(Action::Quit) => return Ok(()),
                Some(Action::Step) => {
                    if i + 1 < frames.len() {
                        i += 1;
                        replay_feed(&mut app, frames, i);
                    }
                    break;
                }
                Some(Action::Redraw) => break,
                _ => {}
            }
        }
    }
    Ok(())
}

/// The kernel's reason for the last sched_ext exit, from the kernel log
/// ("sched_ext: BPF scheduler "X" disabled (REASON)"). Best effort: needs
/// read access to /dev/kmsg; reads without blocking.
pub fn kernel_exit_reason() -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .ok()?;
    let mut buf = vec![0u8; 8192];
    let mut last = None;
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                let msg = rec.split_once(';').map_or(&*rec, |(_, m)| m);
                if let Some(reason) = parse_disabled_line(msg.lines().next().unwrap_or("")) {
                    last = Some(reason);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue, // overwritten record
            Err(_) => break,                                             // EAGAIN: no more records
        }
    }
    last
}

/// "sched_ext: BPF scheduler "storeland_0.1.0" disabled (unregistered from user space)"
/// -> "storeland_0.1.0: unregistered from user space".
pub fn parse_disabled_line(msg: &str) -> Option<String> {
    let rest = msg.split("sched_ext: BPF scheduler \"").nth(1)?;
    let (name, rest) = rest.split_once('"')?;
    let reason = rest.trim().strip_prefix("disabled (")?.strip_suffix(')')?;
    Some(format!("{name}: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_skip_what_is_not_our_stats() {
        let good = serde_json::to_string(&StorelandStats {
            scheduler: "scx_storeland".into(),
            ..Default::default()
        })
        .unwrap();
        let text = format!("log noise\n{good}\n{{\"nr_running\":1}}\n{good}\n{{\"trunc");
        let frames = parse_recording(text.as_bytes(), "t").unwrap();
        assert_eq!(frames.len(), 2);
        assert!(parse_recording("nothing\n".as_bytes(), "t").is_err());
    }

    #[test]
    fn the_kernels_exit_reason_is_found() {
        assert_eq!(
            parse_disabled_line(
                "sched_ext: BPF scheduler \"storeland_0.1.0\" disabled (unregistered from user space)"
            )
            .as_deref(),
            Some("storeland_0.1.0: unregistered from user space")
        );
        assert_eq!(
            parse_disabled_line("sched_ext: BPF scheduler \"x\" enabled"),
            None
        );
    }
}
