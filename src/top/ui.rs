//! Drawing one frame from the app state. Pure: no I/O, so every layout is
//! tested with ratatui's TestBackend, and `top --once` prints the same frame
//! as plain text.
//!
//! Numbers a scheduler build does not report show as "-". The heat strip
//! and the NVMe spread use block glyphs whose height encodes the level, so
//! they read without colour too (in `--once` output, for instance).

use std::path::Path;

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};
use ratatui::{Frame, Terminal};

use crate::stats::client::Unavailable;
use crate::stats::StorelandStats;
use crate::top::app::{App, Mode, Panel};
use crate::topology::cpu_list;

/// Below this, only a "too small" note is drawn.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 8;

const LEVELS: [char; 9] = ['·', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const CLASS_NAMES: [&str; 3] = ["latency_critical", "interactive", "batch"];

/// The glyph for a 0..=100 level.
pub fn level_glyph(pct: f64) -> char {
    if !pct.is_finite() || pct < 0.5 {
        return LEVELS[0];
    }
    LEVELS[((pct / 12.5).ceil() as usize).clamp(1, 8)]
}

fn level_color(pct: f64) -> Color {
    match pct {
        p if p >= 80.0 => Color::Red,
        p if p >= 50.0 => Color::Yellow,
        p if p >= 0.5 => Color::Green,
        _ => Color::DarkGray,
    }
}

fn dash_f(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn rate(v: f64) -> String {
    match v {
        v if v >= 10_000_000.0 => format!("{:.0}M", v / 1e6),
        v if v >= 100_000.0 => format!("{:.0}k", v / 1e3),
        v if v >= 10.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

fn opt_rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), rate)
}

fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        s if s >= 3600 => format!("{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{secs:.1}s"),
    }
}

fn block(title: &str) -> Block<'_> {
    Block::default().borders(Borders::ALL).title(Span::styled(
        format!(" {title} "),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// From this width on, the detail panels stand in pairs side by side; a
/// narrower terminal (80 columns, say) cut their columns, so there they are
/// stacked, full width, and when they do not all fit in its height, one
/// shows at a time (Tab cycles).
pub const WIDE_WIDTH: u16 = 120;

/// Draw the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        draw_too_small(f, area);
        return;
    }
    let stats = app.stats.as_ref();
    let heat_rows = stats.map_or(1, |s| heat_lines(s, area.width.saturating_sub(2)).len());
    let nr_llcs = stats.map_or(0, |s| s.llcs.len());
    let nr_drives = stats.map_or(0, |s| s.nvme.len());
    let nr_classes = stats.map_or(0, |s| s.classes.len());
    let status = u16::from(app.unavailable.is_some() || stats.is_none());
    // Each panel's height: its lines inside a border.
    let height = |panel| match panel {
        Panel::Ccx => nr_llcs as u16 + 3,
        // 17 lines of scheduler health.
        Panel::Scheduler => 19,
        Panel::Classes => nr_classes.max(CLASS_NAMES.len()) as u16 + 3,
        Panel::Nvme => (nr_drives.max(4) as u16 + 3).min(27),
    };
    let fixed = 1 + status + heat_rows as u16 + 2;
    // The events log keeps 3 lines, the footer 1.
    let room = area.height.saturating_sub(fixed + 3 + 1);

    let (detail, shown): (Vec<Constraint>, Vec<Panel>) = if area.width >= WIDE_WIDTH {
        let middle = height(Panel::Ccx).max(height(Panel::Scheduler));
        let lower = height(Panel::Classes).max(height(Panel::Nvme));
        let pairs = vec![Constraint::Length(middle), Constraint::Length(lower)];
        (pairs, Panel::ALL.to_vec())
    } else if Panel::ALL.iter().map(|&p| height(p)).sum::<u16>() <= room {
        let all = Panel::ALL.iter().map(|&p| Constraint::Length(height(p)));
        (all.collect(), Panel::ALL.to_vec())
    } else {
        (
            vec![Constraint::Min(height(app.panel).min(room))],
            vec![app.panel],
        )
    };
    let mut constraints = vec![
        Constraint::Length(1),
        Constraint::Length(status),
        Constraint::Length(heat_rows as u16 + 2),
    ];
    constraints.extend(&detail);
    constraints.extend([Constraint::Min(3), Constraint::Length(1)]);
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints(constraints)
        .split(area);

    draw_header(f, rows[0], app);
    if status > 0 {
        draw_status(f, rows[1], app);
    }
    draw_heat(f, rows[2], stats);
    if area.width >= WIDE_WIDTH {
        let pairs = [
            (rows[3], 56, Panel::Ccx, Panel::Scheduler),
            (rows[4], 44, Panel::Classes, Panel::Nvme),
        ];
        for (row, left_pct, left, right) in pairs {
            let halves = Layout::default()
                .direction(Direction::Horizontal)
                .constraints([
                    Constraint::Percentage(left_pct),
                    Constraint::Percentage(100 - left_pct),
                ])
                .split(row);
            draw_panel(f, halves[0], left, stats);
            draw_panel(f, halves[1], right, stats);
        }
    } else {
        for (i, &panel) in shown.iter().enumerate() {
            draw_panel(f, rows[3 + i], panel, stats);
        }
    }
    let after = 3 + detail.len();
    draw_events(f, rows[after], app);
    draw_footer(f, rows[after + 1], app, shown.len() == 1);
    if app.show_help {
        draw_help(f, area);
    }
}

fn draw_panel(f: &mut Frame, area: Rect, panel: Panel, stats: Option<&StorelandStats>) {
    match panel {
        Panel::Ccx => draw_llcs(f, area, stats),
        Panel::Scheduler => draw_scheduler(f, area, stats),
        Panel::Classes => draw_classes(f, area, stats),
        Panel::Nvme => draw_nvme(f, area, stats),
    }
}

fn draw_too_small(f: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("scx_storeland top"),
        Line::from(format!(
            "terminal {}x{} is too small: need {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::from("q quits"),
    ];
    f.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let mut spans = vec![Span::styled(
        " scx_storeland top ",
        Style::default()
            .fg(Color::Black)
            .bg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )];
    if app.paused {
        spans.push(Span::styled(
            " PAUSED ",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    // The numbers first: a narrow terminal cuts the path at the end.
    if let Some(s) = &app.stats {
        spans.push(Span::raw(format!(
            " {} up {} │ restarts {} │ {} CPUs in {} CCX │ window {:.1}s │",
            s.version,
            duration(s.uptime_s),
            s.restarts,
            s.nr_cpus,
            s.nr_llcs,
            s.interval_s
        )));
    }
    spans.push(Span::raw(match &app.mode {
        Mode::Live { socket } => format!(" live {socket}"),
        Mode::Replay { file, pos, len, .. } => {
            let name = Path::new(file)
                .file_name()
                .map_or(file.into(), |n| n.to_string_lossy());
            format!(" replay frame {}/{len} {name}", (pos + 1).min(*len))
        }
    }));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_status(f: &mut Frame, area: Rect, app: &App) {
    let sched = app
        .sched_ext
        .as_deref()
        .map_or_else(String::new, |s| format!("; sched_ext: {s}"));
    let (text, color) = match (&app.unavailable, app.stats.is_some()) {
        (Some(Unavailable::NotRunning), true) => (
            format!("scx_storeland is not running: showing its last stats{sched}"),
            Color::Yellow,
        ),
        (Some(Unavailable::NotRunning), false) => (
            format!("waiting for scx_storeland to start (no stats server yet){sched}"),
            Color::Yellow,
        ),
        (Some(other), _) => (format!("{other}{sched}"), Color::Red),
        (None, _) => ("waiting for the first stats…".to_string(), Color::Yellow),
    };
    f.render_widget(
        Paragraph::new(Span::styled(
            format!(" {text}"),
            Style::default().fg(color).add_modifier(Modifier::BOLD),
        )),
        area,
    );
}

/// The heat strip's lines: CCX groups side by side as far as `width` allows.
fn heat_lines(s: &StorelandStats, width: u16) -> Vec<Line<'static>> {
    let groups: Vec<Vec<Span<'static>>> = s
        .llcs
        .iter()
        .map(|(id, l)| {
            let mut g = vec![Span::styled(
                format!("CCX{id:<2} "),
                Style::default().add_modifier(Modifier::BOLD),
            )];
            for &u in &l.cpu_util_pct {
                g.push(Span::styled(
                    level_glyph(u).to_string(),
                    Style::default().fg(level_color(u)),
                ));
            }
            g.push(Span::raw(format!(" {:>3.0}%", l.util_pct)));
            g
        })
        .collect();
    if groups.is_empty() {
        return vec![Line::from(" no CPU data")];
    }
    let group_width = groups
        .iter()
        .map(|g| g.iter().map(|s| s.content.chars().count()).sum::<usize>())
        .max()
        .unwrap_or(1)
        + 3;
    let per_line = (usize::from(width) / group_width).max(1);
    groups
        .chunks(per_line)
        .map(|chunk| {
            let mut spans = Vec::new();
            for g in chunk {
                let w: usize = g.iter().map(|s| s.content.chars().count()).sum();
                spans.extend(g.iter().cloned());
                spans.push(Span::raw(" ".repeat(group_width - w)));
            }
            Line::from(spans)
        })
        .collect()
}

fn draw_heat(f: &mut Frame, area: Rect, stats: Option<&StorelandStats>) {
    let title = match stats {
        Some(s) => format!(
            "CPU busy by CCX ({:.1}% all, irq {:.1}%, iowait {:.1}%)",
            s.cpu_util_pct, s.irq_pct, s.iowait_pct
        ),
        None => "CPU busy by CCX".to_string(),
    };
    let lines = stats.map_or_else(
        || vec![Line::from(" -")],
        |s| heat_lines(s, area.width.saturating_sub(2)),
    );
    f.render_widget(Paragraph::new(lines).block(block(&title)), area);
}

fn draw_llcs(f: &mut Frame, area: Rect, stats: Option<&StorelandStats>) {
    let header = Row::new(
        [
            "CCX", "CPUs", "busy%", "irq%", "nvme/s", "steal/s", "runq", "wait50", "wait99",
        ]
        .map(|h| Cell::from(h).style(Style::default().add_modifier(Modifier::BOLD))),
    );
    let cpus_width = stats
        .and_then(|s| s.llcs.values().map(|l| cpu_list(&l.cpus).len()).max())
        .unwrap_or(4)
        .clamp(4, 24) as u16;
    let rows: Vec<Row> = stats.map_or_else(Vec::new, |s| {
        s.llcs
            .iter()
            .map(|(id, l)| {
                Row::new(vec![
                    Cell::from(id.to_string()),
                    Cell::from(cpu_list(&l.cpus)),
                    Cell::from(format!("{:.1}", l.util_pct))
                        .style(Style::default().fg(level_color(l.util_pct))),
                    Cell::from(format!("{:.1}", l.irq_pct)),
                    Cell::from(opt_rate(l.nvme_irqs_per_sec)),
                    Cell::from(rate(l.steals_per_sec)),
                    Cell::from(l.runnable.map_or_else(|| "-".into(), |n| n.to_string())),
                    Cell::from(dash_f(l.queue_wait_p50_us, 0)),
                    Cell::from(dash_f(l.queue_wait_p99_us, 0)),
                ])
            })
            .collect()
    });
    let widths = [
        Constraint::Length(3),
        Constraint::Length(cpus_width),
        Constraint::Length(5),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .block(block("CCX (LLC): busy, interrupts, queue wait in us")),
        area,
    );
}

fn kv(label: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{label:<15} "), Style::default().fg(Color::Cyan)),
        Span::raw(value),
    ])
}

fn draw_scheduler(f: &mut Frame, area: Rect, stats: Option<&StorelandStats>) {
    let lines = match stats {
        None => vec![Line::from(" -")],
        Some(s) => vec![
            kv(
                "user decisions",
                format!(
                    "{}/s  share {}%",
                    rate(s.user_dispatches_per_sec),
                    dash_f(s.user_dispatch_share_pct, 1)
                ),
            ),
            // Three short lines: at 120 columns the panel has 34 for a value.
            kv(
                "fast path",
                format!(
                    "{}/s  idle {} self {}",
                    rate(s.fastpath_dispatches_per_sec),
                    rate(s.fastpath_idle_per_sec),
                    rate(s.fastpath_self_per_sec)
                ),
            ),
            kv(
                "  woken",
                format!(
                    "latcrit {} inter {} io {}",
                    rate(s.fastpath_latcrit_per_sec),
                    rate(s.fastpath_interactive_per_sec),
                    rate(s.fastpath_io_batch_per_sec)
                ),
            ),
            kv(
                "  slice end",
                format!(
                    "{}/s  kthread {}/s",
                    rate(s.fastpath_requeue_per_sec),
                    rate(s.fastpath_kthread_per_sec)
                ),
            ),
            kv(
                "congestion",
                format!(
                    "{}/s  ring-full {} late {}",
                    rate(s.congestion_fallbacks_per_sec),
                    rate(s.congested_ring_full_per_sec),
                    rate(s.congested_late_per_sec)
                ),
            ),
            kv(
                "stale/redirect",
                format!(
                    "{}/s  {}/s",
                    rate(s.stale_dropped_per_sec),
                    rate(s.affinity_redirects_per_sec)
                ),
            ),
            kv(
                "ring",
                format!(
                    "{:.0}% full  batch avg {} max {}",
                    s.ring_fill_pct,
                    dash_f(s.ring_drain_batch_avg, 1),
                    s.ring_drain_batch_max
                ),
            ),
            kv(
                "decisions out",
                format!(
                    "{} pending  {}/s deferred",
                    s.decisions_pending,
                    rate(s.decisions_deferred_per_sec)
                ),
            ),
            kv(
                "cross-CCX",
                format!(
                    "{}/s  steals {}/s  waker-CCX {}%",
                    opt_rate(s.cross_llc_migrations_per_sec),
                    rate(s.llc_steals_per_sec),
                    dash_f(s.wakeups_on_waker_llc_pct, 1)
                ),
            ),
            kv(
                "preempt/requeue",
                format!(
                    "{}/s  {}/s",
                    rate(s.preemptions_per_sec),
                    rate(s.requeued_per_sec)
                ),
            ),
            kv(
                "IRQ wake/hog cut",
                format!(
                    "{}/s  {}/s",
                    rate(s.irq_wakeups_per_sec),
                    rate(s.hog_turns_cut_per_sec)
                ),
            ),
            kv(
                "pulled to waker",
                format!(
                    "IRQ {}/s  sync {}/s",
                    rate(s.irq_wakeups_pulled_per_sec),
                    rate(s.sync_wakeups_pulled_per_sec)
                ),
            ),
            kv(
                "IRQ idle kept",
                format!(
                    "{}/s  hog spread {}/s",
                    rate(s.irq_idle_kept_per_sec),
                    rate(s.hog_spreads_per_sec)
                ),
            ),
            kv(
                "SMT idle picks",
                format!(
                    "whole core {}/s  half core {}/s",
                    rate(s.idle_core_picks_per_sec),
                    rate(s.half_core_wakeups_per_sec)
                ),
            ),
            kv(
                "held CPU/rescue",
                format!(
                    "{}/s  {}/s",
                    rate(s.held_cpu_kept_per_sec),
                    rate(s.starvation_rescues_per_sec)
                ),
            ),
            kv(
                "daemon CPU",
                format!(
                    "{}%  loop {}%  majflt {}",
                    dash_f(s.daemon_cpu_pct, 1),
                    dash_f(s.daemon_loop_cpu_pct, 1),
                    s.daemon_major_faults
                        .map_or_else(|| "-".into(), |n| n.to_string())
                ),
            ),
            kv("loop runs", format!("{}/s", rate(s.usersched_runs_per_sec))),
        ],
    };
    f.render_widget(
        Paragraph::new(lines).block(block("Scheduler: decisions, ring and queue health")),
        area,
    );
}

fn draw_classes(f: &mut Frame, area: Rect, stats: Option<&StorelandStats>) {
    let header = Row::new(
        ["class", "wakeups/s", "wake p50", "p99 us"]
            .map(|h| Cell::from(h).style(Style::default().add_modifier(Modifier::BOLD))),
    );
    let classes = stats.map(|s| &s.classes).filter(|c| !c.is_empty());
    let mut rows: Vec<Row> = Vec::new();
    match classes {
        Some(map) => {
            for (name, c) in map {
                rows.push(Row::new(vec![
                    Cell::from(name.clone()),
                    Cell::from(rate(c.wakeups_per_sec)),
                    Cell::from(dash_f(c.wake_to_run_p50_us, 0)),
                    Cell::from(dash_f(c.wake_to_run_p99_us, 0)),
                ]));
            }
        }
        None => {
            for name in CLASS_NAMES {
                rows.push(Row::new(vec![
                    Cell::from(name),
                    Cell::from("-"),
                    Cell::from("-"),
                    Cell::from("-"),
                ]));
            }
        }
    }
    let widths = [
        Constraint::Length(16),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    f.render_widget(
        Table::new(rows, widths).header(header).block(block(
            if classes.is_none() && stats.is_some() {
                "Task classes (not reported by this build)"
            } else {
                "Task classes: wake-to-run latency"
            },
        )),
        area,
    );
}

fn draw_nvme(f: &mut Frame, area: Rect, stats: Option<&StorelandStats>) {
    let mut lines = Vec::new();
    match stats {
        None => lines.push(Line::from(" -")),
        Some(s) if s.nvme_irqs_per_sec.is_none() => {
            lines.push(Line::from(" /proc/interrupts not readable"))
        }
        Some(s) if s.nvme.is_empty() => lines.push(Line::from(" no NVMe interrupts found")),
        Some(s) => {
            lines.push(Line::from(Span::styled(
                format!(
                    "{:<8}{:>7}/s  one glyph per CCX (0..), share of the drive's irqs",
                    "all",
                    opt_rate(s.nvme_irqs_per_sec)
                ),
                Style::default().add_modifier(Modifier::BOLD),
            )));
            let mut drives: Vec<_> = s.nvme.iter().collect();
            drives.sort_by_key(|(name, _)| drive_order(name));
            let room = usize::from(area.height.saturating_sub(3));
            let shown = if drives.len() > room {
                room.saturating_sub(1)
            } else {
                drives.len()
            };
            let hidden = drives.len() - shown;
            for (name, d) in drives.into_iter().take(shown) {
                let mut spans = vec![Span::raw(format!(
                    "{name:<8}{:>7}/s q{:<3} cpus {:<3} ",
                    rate(d.irqs_per_sec),
                    d.queues,
                    d.cpus_serving
                ))];
                let mut top = (0usize, 0.0f64);
                for (i, &r) in d.llc_irqs_per_sec.iter().enumerate() {
                    let share = if d.irqs_per_sec > 0.0 {
                        100.0 * r / d.irqs_per_sec
                    } else {
                        0.0
                    };
                    if share > top.1 {
                        top = (i, share);
                    }
                    spans.push(Span::styled(
                        level_glyph(share).to_string(),
                        Style::default().fg(level_color(share)),
                    ));
                }
                if d.irqs_per_sec > 0.0 {
                    spans.push(Span::raw(format!("  top CCX{} {:.0}%", top.0, top.1)));
                }
                lines.push(Line::from(spans));
            }
            if hidden > 0 {
                lines.push(Line::from(format!(
                    "… {hidden} more drives (a taller terminal shows them)"
                )));
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(block("NVMe interrupts per drive and CCX")),
        area,
    );
}

/// nvme2 before nvme10.
fn drive_order(name: &str) -> (String, u64) {
    let digits = name.trim_start_matches(|c: char| !c.is_ascii_digit());
    let prefix = &name[..name.len() - digits.len()];
    (prefix.to_string(), digits.parse().unwrap_or(u64::MAX))
}

fn draw_events(f: &mut Frame, area: Rect, app: &App) {
    let room = usize::from(area.height.saturating_sub(2));
    let skip = app.events.len().saturating_sub(room);
    let lines: Vec<Line> = app
        .events
        .iter()
        .skip(skip)
        .map(|e| Line::from(format!("{:>8.1}s  {}", e.at_s, e.text)))
        .collect();
    f.render_widget(Paragraph::new(lines).block(block("Scheduler events")), area);
}

/// `one_panel`: the detail panels take turns (a small terminal), so Tab
/// is worth a mention.
fn draw_footer(f: &mut Frame, area: Rect, app: &App, one_panel: bool) {
    let rate = match &app.mode {
        Mode::Live { .. } => format!("+/- rate (every {:.2}s)", app.interval.as_secs_f64()),
        Mode::Replay { speed, .. } => format!("n step  +/- speed ({speed}x)"),
    };
    let tab = if one_panel {
        format!("  tab panel {}/{}", app.panel.number(), Panel::ALL.len())
    } else {
        String::new()
    };
    let text = format!(
        " q quit  ? help{tab}  space {}  {rate}",
        if app.paused { "resume" } else { "pause" }
    );
    f.render_widget(
        Paragraph::new(Span::styled(text, Style::default().fg(Color::DarkGray))),
        area,
    );
}

fn draw_help(f: &mut Frame, area: Rect) {
    let lines = vec![
        Line::from("q        quit (also Ctrl-C, Esc)"),
        Line::from("? or h   this help (any key closes it)"),
        Line::from("space    pause / resume"),
        Line::from("+ / -    refresh faster / slower (replay: speed)"),
        Line::from("n        replay: next frame"),
        Line::from("tab      next panel, where they take turns"),
        Line::from(""),
        Line::from("Heat strip: one glyph per CPU, · idle .. █ busy."),
        Line::from("\"-\" marks a number this build does not report."),
    ];
    let w = 56.min(area.width);
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block("Keys")), r);
}

/// Buffer contents as plain text, one line per row, trailing blanks cut.
pub fn buffer_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One frame of `app` as plain text, `width` x `height` cells.
pub fn render_text(app: &App, width: u16, height: u16) -> String {
    let mut terminal =
        Terminal::new(TestBackend::new(width, height)).expect("a test backend cannot fail");
    terminal
        .draw(|f| draw(f, app))
        .expect("a test backend cannot fail");
    buffer_text(terminal.backend().buffer())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::metrics::{ClassStats, LlcStats, NvmeDriveStats};
    use std::time::Duration;

    /// A Genoa 9654 under load: 12 CCXs of 16 CPUs, 24 drives.
    fn genoa() -> StorelandStats {
        let llcs = (0..12u32)
            .map(|ccx| {
                let cpus: Vec<u32> = (ccx * 8..ccx * 8 + 8)
                    .chain(96 + ccx * 8..96 + ccx * 8 + 8)
                    .collect();
                let util: Vec<f64> = (0..16)
                    .map(|i| f64::from((i * 7 + ccx * 13) % 101))
                    .collect();
                let l = LlcStats {
                    util_pct: util.iter().sum::<f64>() / 16.0,
                    cpu_util_pct: util,
                    cpus,
                    irq_pct: 2.5,
                    steals_per_sec: 12.0,
                    nvme_irqs_per_sec: Some(20_000.0),
                    ..Default::default()
                };
                (ccx, l)
            })
            .collect();
        let nvme = (0..24)
            .map(|d| {
                let mut spread = vec![0.0; 12];
                spread[d % 12] = 9000.0;
                spread[(d + 1) % 12] = 1000.0;
                (
                    format!("nvme{d}"),
                    NvmeDriveStats {
                        queues: 97,
                        irqs_per_sec: 10_000.0,
                        cpus_serving: 9,
                        llc_irqs_per_sec: spread,
                    },
                )
            })
            .collect();
        StorelandStats {
            scheduler: "scx_storeland".into(),
            version: "0.1.0".into(),
            interval_s: 1.0,
            uptime_s: 3725.0,
            nr_cpus: 192,
            nr_llcs: 12,
            user_dispatches_per_sec: 123_456.0,
            cpu_util_pct: 87.5,
            daemon_cpu_pct: Some(4.2),
            nvme_irqs_per_sec: Some(240_000.0),
            llcs,
            nvme,
            ..Default::default()
        }
    }

    fn live_app(stats: Option<StorelandStats>) -> App {
        let mut app = App::new(
            Mode::Live {
                socket: "/var/run/scx/root/stats".into(),
            },
            Duration::from_secs(1),
        );
        if let Some(s) = stats {
            app.on_fetch(Ok(s), || None);
        }
        app
    }

    #[test]
    fn a_genoa_socket_fits_192_cpus_grouped_by_ccx() {
        let app = live_app(Some(genoa()));
        for (w, h) in [(200, 60), (120, 50), (80, 40), (80, 24)] {
            let text = render_text(&app, w, h);
            for ccx in 0..12 {
                assert!(
                    text.contains(&format!("CCX{ccx:<2} ")),
                    "{w}x{h}: CCX{ccx}\n{text}"
                );
            }
            // Every CPU has its glyph in the heat strip (the block below its title).
            let strip: String = text
                .lines()
                .skip_while(|l| !l.contains("CPU busy by CCX"))
                .skip(1)
                .take_while(|l| !l.contains("└"))
                .collect();
            let glyphs = strip.chars().filter(|c| LEVELS.contains(c)).count();
            assert_eq!(glyphs, 192, "{w}x{h}\n{text}");
        }
    }

    #[test]
    fn panels_show_ccx_rows_drives_and_absent_numbers_as_dashes() {
        let mut s = genoa();
        s.held_cpu_kept_per_sec = 3.0;
        let text = render_text(&live_app(Some(s)), 200, 70);
        assert!(text.contains("123k/s"), "{text}");
        assert!(text.contains("up 1h02m05s"), "{text}");
        assert!(text.contains("nvme23"), "{text}");
        assert!(text.contains("top CCX11 90%"), "{text}");
        assert!(text.contains("(not reported by this build)"), "{text}");
        assert!(text.contains("cross-CCX       -/s"), "{text}");
        assert!(text.contains("held CPU/rescue 3.0/s  0.0/s"), "{text}");
        // The panel's last line still fits above its border.
        assert!(text.contains("loop runs"), "{text}");
        let rows = text
            .lines()
            .filter(|l| {
                l.trim_start_matches('│')
                    .trim_start()
                    .starts_with(char::is_numeric)
            })
            .filter(|l| l.contains("20000"))
            .count();
        assert_eq!(rows, 12, "one row per CCX\n{text}");
    }

    #[test]
    fn fast_path_counts_fit_a_120_column_terminal() {
        let mut s = genoa();
        s.fastpath_dispatches_per_sec = 88_888.0;
        s.fastpath_idle_per_sec = 77_777.0;
        s.fastpath_self_per_sec = 66_666.0;
        s.fastpath_latcrit_per_sec = 11_111.0;
        s.fastpath_interactive_per_sec = 22_222.0;
        s.fastpath_io_batch_per_sec = 33_333.0;
        s.fastpath_requeue_per_sec = 44_444.0;
        s.fastpath_kthread_per_sec = 55_555.0;
        s.irq_wakeups_pulled_per_sec = 3_333.0;
        s.sync_wakeups_pulled_per_sec = 4.5;
        s.irq_idle_kept_per_sec = 321.0;
        s.hog_spreads_per_sec = 12.0;
        s.idle_core_picks_per_sec = 7.0;
        s.half_core_wakeups_per_sec = 250.0;
        let text = render_text(&live_app(Some(s)), 120, 50);
        for line in [
            "fast path       88888/s  idle 77777 self 66666",
            "  woken         latcrit 11111 inter 22222 io 33333",
            "  slice end     44444/s  kthread 55555/s",
            "pulled to waker IRQ 3333/s  sync 4.5/s",
            "IRQ idle kept   321/s  hog spread 12/s",
            "SMT idle picks  whole core 7.0/s  half core 250/s",
            "loop runs",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn an_80_column_terminal_stacks_the_panels_whole() {
        let mut app = live_app(Some(genoa()));
        // Side by side at 80 columns, the CCX table lost its CPU lists and
        // the scheduler panel its values.
        let whole = [
            "0-7,96-103    46.2",
            "steal/s runq wait50 wait99",
            "decisions out   0 pending  0.0/s deferred",
            "cross-CCX       -/s  steals 0.0/s  waker-CCX -%",
            "nvme23    10000/s",
            "top CCX11 90%",
        ];
        let tall = render_text(&app, 80, 90);
        for text in whole {
            assert!(tall.contains(text), "80x90: {text}\n{tall}");
        }
        assert!(
            !tall.contains("tab panel"),
            "all four fit: no turns\n{tall}"
        );
        assert!(tall.contains("192 CPUs in 12 CCX"), "{tall}");

        // 80x24: the heat strip whole, then one panel at a time.
        let seen = |app: &App| render_text(app, 80, 24);
        let first = seen(&app);
        assert!(first.contains("CCX11 "), "{first}");
        assert!(first.contains("0-7,96-103    46.2"), "{first}");
        assert!(first.contains("tab panel 1/4"), "{first}");
        assert!(!first.contains("Scheduler: decisions"), "{first}");
        let mut titles = Vec::new();
        for _ in 0..4 {
            app.on_key('\t');
            let text = seen(&app);
            let title = [
                "CCX (LLC)",
                "Scheduler: decisions",
                "Task classes",
                "NVMe interrupts",
            ]
            .into_iter()
            .filter(|t| text.contains(t))
            .collect::<Vec<_>>();
            assert_eq!(title.len(), 1, "one panel at a time\n{text}");
            titles.push(title[0]);
        }
        assert_eq!(
            titles,
            [
                "Scheduler: decisions",
                "Task classes",
                "NVMe interrupts",
                "CCX (LLC)"
            ]
        );
        assert!(seen(&app).contains("tab panel 1/4"), "back to the first");
    }

    #[test]
    fn classes_show_when_reported() {
        let mut s = genoa();
        s.classes = [(
            "latency_critical".to_string(),
            ClassStats {
                wakeups_per_sec: 5000.0,
                wake_to_run_p50_us: Some(15.0),
                wake_to_run_p99_us: Some(127.0),
            },
        )]
        .into();
        let text = render_text(&live_app(Some(s)), 160, 60);
        let line = text
            .lines()
            .find(|l| l.contains("latency_critical"))
            .unwrap();
        assert!(
            line.contains("5000") && line.contains("15") && line.contains("127"),
            "{line}"
        );
        assert!(!text.contains("not reported"), "{text}");
    }

    #[test]
    fn tiny_terminals_never_panic() {
        let app = live_app(Some(genoa()));
        for w in [1u16, 2, 10, 39, 40, 41, 60, 79] {
            for h in [1u16, 2, 5, 7, 8, 9, 12, 24] {
                let text = render_text(&app, w, h);
                if w < MIN_WIDTH || h < MIN_HEIGHT {
                    assert!(
                        text.contains("too small") || w < 20 || h < 2,
                        "{w}x{h}\n{text}"
                    );
                }
            }
        }
        let text = render_text(&app, 30, 6);
        assert!(text.contains("too small"), "{text}");
    }

    #[test]
    fn waiting_for_a_scheduler_that_is_not_running() {
        let mut app = live_app(None);
        app.on_fetch(Err(Unavailable::NotRunning), || None);
        app.sched_ext = Some("disabled".into());
        let text = render_text(&app, 100, 30);
        assert!(
            text.contains("waiting for scx_storeland to start"),
            "{text}"
        );
        assert!(text.contains("sched_ext: disabled"), "{text}");
    }

    #[test]
    fn a_scheduler_that_went_away_keeps_its_last_stats() {
        let mut app = live_app(Some(genoa()));
        app.on_fetch(Err(Unavailable::NotRunning), || {
            Some("storeland: unregistered from user space".into())
        });
        let text = render_text(&app, 160, 60);
        assert!(
            text.contains("not running: showing its last stats"),
            "{text}"
        );
        assert!(
            text.contains("scheduler exited: storeland: unregistered from user space"),
            "{text}"
        );
        assert!(text.contains("CCX11"), "{text}");
    }

    #[test]
    fn help_and_pause_are_drawn() {
        let mut app = live_app(Some(genoa()));
        app.on_key('?');
        app.on_key(' ');
        let text = render_text(&app, 120, 50);
        assert!(text.contains(" Keys "), "{text}");
        assert!(text.contains("PAUSED"), "{text}");
    }

    #[test]
    fn glyphs_encode_the_level() {
        assert_eq!(level_glyph(0.0), '·');
        assert_eq!(level_glyph(1.0), '▁');
        assert_eq!(level_glyph(50.0), '▄');
        assert_eq!(level_glyph(100.0), '█');
        assert_eq!(level_glyph(f64::NAN), '·');
        assert_eq!(level_glyph(1e9), '█');
    }
}
