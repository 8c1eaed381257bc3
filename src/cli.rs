//! Command line, in the scx schedulers' vocabulary.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use scx_utils::libbpf_clap_opts::LibbpfOpts;
use storeland::stats::DEFAULT_SOCKET;

/// scx_storeland: a sched_ext scheduler for single-socket AMD EPYC Genoa
/// storage servers. A BPF fast path places what must not wait; a Rust policy
/// orders the rest by weighted virtual-time deadlines, per CCX.
///
/// Exit codes: 0 detached on SIGINT/SIGTERM/SIGHUP; 1 failure (including a
/// kernel ejection, or a refused start); 2 usage error; 3 this kernel cannot
/// run sched_ext; 4 the operator disabled sched_ext with sysrq-S (do not
/// restart); 101 a panic (a bug).
///
/// `scx_storeland top` watches the running instance in a terminal UI.
#[derive(Debug, Parser)]
#[command(
    name = "scx_storeland",
    disable_version_flag = true,
    args_conflicts_with_subcommands = true
)]
pub struct Opts {
    /// Time slice of a nice-0 task, in microseconds.
    #[arg(short = 's', long, default_value_t = 5000, value_name = "US",
          value_parser = clap::value_parser!(u64).range(100..=100_000))]
    pub slice_us: u64,

    /// Bytes of the kernel's debug dump kept on an error exit (0 = kernel default).
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    pub exit_dump_len: u32,

    /// Only schedule tasks that switch themselves to SCHED_EXT.
    #[arg(short = 'p', long)]
    pub partial: bool,

    /// Log the scheduler's counters and print its stats every SECS seconds while it runs.
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub stats: Option<f64>,

    /// Do not schedule: print the running instance's stats every SECS
    /// seconds, waiting while none runs. Ctrl-C ends it.
    #[arg(long, value_name = "SECS", value_parser = parse_interval, conflicts_with = "stats")]
    pub monitor: Option<f64>,

    /// With --monitor: one JSON object per line (a recording for `top --replay`).
    #[arg(long, requires = "monitor")]
    pub json: bool,

    /// Describe every metric, one line each, with its unit, and exit.
    #[arg(long)]
    pub help_stats: bool,

    /// The stats socket, served while attached and read by --monitor and top.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET, global = true)]
    pub stats_socket: PathBuf,

    /// Verbose output, including libbpf's debug messages.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print the version and exit.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// Fault injection, for the fault tests only: the policy loop panics
    /// after this many decisions (see README, "Fault injection").
    #[arg(long, value_name = "DECISIONS", hide = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub fault_panic_after: Option<u64>,

    #[command(flatten, next_help_heading = "Libbpf Options")]
    pub libbpf: LibbpfOpts,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the running instance in a terminal UI: CPUs per CCX, queues,
    /// task classes, NVMe interrupts, events. Keys: q quit, ? help, space
    /// pause, +/- rate.
    Top(TopArgs),
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Print one frame as plain text on stdout and exit (no terminal needed).
    /// Exit 1 if no scx_storeland answers.
    #[arg(long)]
    pub once: bool,

    /// Play back a `--monitor SECS --json` recording instead of watching live.
    #[arg(long, value_name = "FILE")]
    pub replay: Option<PathBuf>,

    /// Refresh interval; with --once, the window the frame covers (0: since attach).
    #[arg(short = 'i', long, value_name = "SECS", default_value_t = 1.0,
          value_parser = parse_top_interval)]
    pub interval: f64,

    /// --once: frame width in columns (default: the terminal's, else 120).
    #[arg(long, value_name = "COLS", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub width: Option<u16>,

    /// --once: frame height in rows (default: the terminal's, else 50).
    #[arg(long, value_name = "ROWS", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub height: Option<u16>,
}

/// Like parse_interval, but 0 is allowed (top --once: since attach).
fn parse_top_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        _ => parse_interval(s),
    }
}

/// A finite interval between 0.1 s and one day.
fn parse_interval(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.1..=86_400.0).contains(&secs) {
        return Err(format!("{s} is outside 0.1..=86400 seconds"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Opts, clap::Error> {
        Opts::try_parse_from(std::iter::once("scx_storeland").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!((o.slice_us, o.exit_dump_len, o.partial), (5000, 0, false));
        assert!(o.stats.is_none());
    }

    #[test]
    fn out_of_range_values_are_usage_errors() {
        for bad in [
            &["--slice-us", "0"][..],
            &["-s", "100001"],
            &["--stats", "0"],
            &["--stats", "-1"],
            &["--stats", "NaN"],
            &["--exit-dump-len", "-5"],
            &["--no-such-option"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn top_is_a_subcommand_that_keeps_the_scheduler_cli() {
        let o = parse(&["top", "--once", "-i", "0", "--width", "80"]).unwrap();
        match o.command {
            Some(Command::Top(t)) => {
                assert!(t.once);
                assert_eq!((t.interval, t.width), (0.0, Some(80)));
            }
            None => panic!("no subcommand"),
        }
        let o = parse(&["top", "--stats-socket", "/tmp/s"]).unwrap();
        assert_eq!(o.stats_socket, PathBuf::from("/tmp/s"));
        let o = parse(&["-s", "2000"]).unwrap();
        assert!(o.command.is_none());
        assert_eq!(o.stats_socket, PathBuf::from(DEFAULT_SOCKET));
        for bad in [
            &["-s", "2000", "top"][..],
            &["top", "--bogus"],
            &["top", "-i", "-1"],
            &["top", "--width", "0"],
            &["--json"],
            &["--monitor", "1", "--stats", "1"],
            &["--monitor", "0"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
        let o = parse(&["--monitor", "0.5", "--json"]).unwrap();
        assert_eq!((o.monitor, o.json), (Some(0.5), true));
    }

    #[test]
    fn scx_short_options() {
        let o = parse(&["-s", "2000", "-p", "-v", "-V", "--stats", "0.5"]).unwrap();
        assert_eq!(o.slice_us, 2000);
        assert!(o.partial && o.verbose && o.version);
        assert_eq!(o.stats, Some(0.5));
    }
}
