//! The TUI's state and key handling, free of any terminal: what to show,
//! which events happened, paused or not, how fast to refresh.

use std::collections::VecDeque;
use std::time::Duration;

use crate::stats::client::Unavailable;
use crate::stats::StorelandStats;

/// Events kept in the log.
const MAX_EVENTS: usize = 200;
/// Refresh interval bounds for `+`/`-` (live) and playback speed bounds (replay).
const MIN_INTERVAL: Duration = Duration::from_millis(250);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
const MIN_SPEED: f64 = 0.125;
const MAX_SPEED: f64 = 64.0;

/// Where the data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// A running scheduler, through its stats socket.
    Live { socket: String },
    /// A `--monitor --json` recording.
    Replay {
        file: String,
        /// Index of the frame shown, number of frames.
        pos: usize,
        len: usize,
        /// Playback speed (1.0 = as recorded).
        speed: f64,
    },
}

/// What a key press asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Redraw (help toggled, paused, rate changed).
    Redraw,
    /// Replay: show the next frame now.
    Step,
}

/// The detail panel a narrow terminal shows (a wide one shows them all).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Panel {
    #[default]
    Ccx,
    Scheduler,
    Classes,
    Nvme,
}

impl Panel {
    /// In declaration order, which is the order Tab cycles.
    pub const ALL: [Panel; 4] = [Panel::Ccx, Panel::Scheduler, Panel::Classes, Panel::Nvme];

    pub fn next(self) -> Self {
        Self::ALL[(self as usize + 1) % Self::ALL.len()]
    }

    /// Its place in the cycle, from 1.
    pub fn number(self) -> usize {
        self as usize + 1
    }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since `top` started (live) or into the recording (replay).
    pub at_s: f64,
    pub text: String,
}

pub struct App {
    pub mode: Mode,
    /// The latest stats; kept (and marked stale) when the scheduler goes away.
    pub stats: Option<StorelandStats>,
    /// Why there are no fresh stats, if there are none.
    pub unavailable: Option<Unavailable>,
    /// What runs as the sched_ext scheduler (sysfs), for the waiting screen.
    pub sched_ext: Option<String>,
    pub events: VecDeque<Event>,
    pub paused: bool,
    pub show_help: bool,
    /// Which detail panel a narrow terminal shows (Tab cycles).
    pub panel: Panel,
    /// Live refresh interval.
    pub interval: Duration,
    /// Clock of the event log, seconds.
    pub now_s: f64,
}

impl App {
    pub fn new(mode: Mode, interval: Duration) -> Self {
        Self {
            mode,
            stats: None,
            unavailable: None,
            sched_ext: None,
            events: VecDeque::new(),
            paused: false,
            show_help: false,
            panel: Panel::default(),
            interval: interval.clamp(MIN_INTERVAL, MAX_INTERVAL),
            now_s: 0.0,
        }
    }

    pub fn log(&mut self, text: impl Into<String>) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            at_s: self.now_s,
            text: text.into(),
        });
    }

    /// Take in a fetch result; log what changed (start, restart, exit).
    /// `exit_reason` is asked for only when the scheduler just went away.
    pub fn on_fetch(
        &mut self,
        got: Result<StorelandStats, Unavailable>,
        exit_reason: impl FnOnce() -> Option<String>,
    ) {
        match got {
            Ok(s) => {
                match (self.stats.take(), self.unavailable.is_some()) {
                    (None, _) => self.log(format!(
                        "scheduler running: {} {}, attached {:.0}s ago, {} CPUs in {} LLCs",
                        s.scheduler, s.version, s.uptime_s, s.nr_cpus, s.nr_llcs
                    )),
                    (Some(_), true) => self.log(format!(
                        "scheduler back: {} {}, attached {:.0}s ago",
                        s.scheduler, s.version, s.uptime_s
                    )),
                    (Some(prev), false) => {
                        if s.restarts > prev.restarts {
                            self.log(format!(
                                "scheduler restarted in place (#{}): {}",
                                s.restarts,
                                s.last_restart_reason.as_deref().unwrap_or("reason unknown")
                            ));
                        } else if s.uptime_s + 0.5 < prev.uptime_s {
                            self.log("scheduler re-attached (a new instance)");
                        }
                        if (s.nr_cpus, s.nr_llcs) != (prev.nr_cpus, prev.nr_llcs) {
                            self.log(format!(
                                "topology now {} CPUs in {} LLCs",
                                s.nr_cpus, s.nr_llcs
                            ));
                        }
                    }
                }
                self.unavailable = None;
                self.stats = Some(s);
            }
            Err(why) => {
                if self.unavailable.as_ref() != Some(&why) {
                    let text = match (&why, self.stats.is_some() && self.unavailable.is_none()) {
                        (Unavailable::NotRunning, true) => match exit_reason() {
                            Some(r) => format!("scheduler exited: {r}"),
                            None => "scheduler exited (stats server gone)".to_string(),
                        },
                        (Unavailable::NotRunning, false) => {
                            "waiting for scx_storeland to start".to_string()
                        }
                        (other, _) => other.to_string(),
                    };
                    self.log(text);
                }
                self.unavailable = Some(why);
            }
        }
    }

    pub fn on_key(&mut self, key: char) -> Action {
        match key {
            'q' | 'Q' => Action::Quit,
            '?' | 'h' => {
                self.show_help = !self.show_help;
                Action::Redraw
            }
            ' ' => {
                self.paused = !self.paused;
                Action::Redraw
            }
            '+' | '=' => {
                self.faster();
                Action::Redraw
            }
            '-' | '_' => {
                self.slower();
                Action::Redraw
            }
            'n' if matches!(self.mode, Mode::Replay { .. }) => Action::Step,
            '\t' => {
                self.panel = self.panel.next();
                Action::Redraw
            }
            _ if self.show_help => {
                self.show_help = false;
                Action::Redraw
            }
            _ => Action::None,
        }
    }

    fn faster(&mut self) {
        match &mut self.mode {
            Mode::Live { .. } => self.interval = (self.interval / 2).max(MIN_INTERVAL),
            Mode::Replay { speed, .. } => *speed = (*speed * 2.0).min(MAX_SPEED),
        }
    }

    fn slower(&mut self) {
        match &mut self.mode {
            Mode::Live { .. } => self.interval = (self.interval * 2).min(MAX_INTERVAL),
            Mode::Replay { speed, .. } => *speed = (*speed / 2.0).max(MIN_SPEED),
        }
    }

    /// The data shown is from a scheduler that is no longer answering.
    pub fn stale(&self) -> bool {
        self.stats.is_some() && self.unavailable.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(uptime: f64, restarts: u64) -> StorelandStats {
        StorelandStats {
            scheduler: "scx_storeland".into(),
            version: "0.1.0".into(),
            uptime_s: uptime,
            restarts,
            last_restart_reason: (restarts > 0).then(|| "cpu hotplug".into()),
            nr_cpus: 4,
            nr_llcs: 2,
            ..Default::default()
        }
    }

    fn texts(app: &App) -> Vec<&str> {
        app.events.iter().map(|e| e.text.as_str()).collect()
    }

    #[test]
    fn the_log_tells_start_restart_and_exit() {
        let mut app = App::new(Mode::Live { socket: "s".into() }, Duration::from_secs(1));
        app.on_fetch(Err(Unavailable::NotRunning), || None);
        app.on_fetch(Err(Unavailable::NotRunning), || None);
        app.on_fetch(Ok(stats(3.0, 0)), || None);
        app.on_fetch(Ok(stats(4.0, 0)), || None);
        app.on_fetch(Ok(stats(0.5, 1)), || None);
        app.on_fetch(Err(Unavailable::NotRunning), || {
            Some("unregistered from user space".into())
        });
        assert!(app.stale());
        app.on_fetch(Ok(stats(1.0, 0)), || None);
        assert_eq!(
            texts(&app),
            [
                "waiting for scx_storeland to start",
                "scheduler running: scx_storeland 0.1.0, attached 3s ago, 4 CPUs in 2 LLCs",
                "scheduler restarted in place (#1): cpu hotplug",
                "scheduler exited: unregistered from user space",
                "scheduler back: scx_storeland 0.1.0, attached 1s ago",
            ]
        );
        assert!(!app.stale());
    }

    #[test]
    fn keys_in_scxtops_spirit() {
        let mut app = App::new(Mode::Live { socket: "s".into() }, Duration::from_secs(1));
        assert_eq!(app.on_key('q'), Action::Quit);
        assert_eq!(app.on_key(' '), Action::Redraw);
        assert!(app.paused);
        app.on_key('+');
        assert_eq!(app.interval, Duration::from_millis(500));
        for _ in 0..10 {
            app.on_key('+');
        }
        assert_eq!(app.interval, MIN_INTERVAL);
        for _ in 0..20 {
            app.on_key('-');
        }
        assert_eq!(app.interval, MAX_INTERVAL);
        app.on_key('?');
        assert!(app.show_help);
        app.on_key('x');
        assert!(!app.show_help, "any key closes the help");
        assert_eq!(app.on_key('n'), Action::None, "step is for replays");
        assert_eq!(app.panel, Panel::Ccx);
        assert_eq!(app.on_key('\t'), Action::Redraw);
        assert_eq!(app.panel, Panel::Scheduler);
    }

    #[test]
    fn replay_keys_change_the_speed() {
        let mut app = App::new(
            Mode::Replay {
                file: "f".into(),
                pos: 0,
                len: 3,
                speed: 1.0,
            },
            Duration::from_secs(1),
        );
        app.on_key('+');
        app.on_key('+');
        assert!(matches!(app.mode, Mode::Replay { speed, .. } if speed == 4.0));
        assert_eq!(app.on_key('n'), Action::Step);
    }
}
