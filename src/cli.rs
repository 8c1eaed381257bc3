//! Command line, in the scx schedulers' vocabulary.

use clap::Parser;
use scx_utils::libbpf_clap_opts::LibbpfOpts;

/// scx_storeland: a sched_ext scheduler for single-socket AMD EPYC Genoa
/// storage servers. A BPF fast path places what must not wait; a Rust policy
/// orders the rest by weighted virtual-time deadlines, per CCX.
///
/// Exit codes: 0 detached on SIGINT/SIGTERM/SIGHUP; 1 failure (including a
/// kernel ejection); 2 usage error; 3 this kernel cannot run sched_ext.
#[derive(Debug, Parser)]
#[command(name = "scx_storeland", disable_version_flag = true)]
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

    /// Log the scheduler's counters every SECS seconds while it runs.
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    pub stats: Option<f64>,

    /// Verbose output, including libbpf's debug messages.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Print the version and exit.
    #[arg(short = 'V', long)]
    pub version: bool,

    #[command(flatten, next_help_heading = "Libbpf Options")]
    pub libbpf: LibbpfOpts,
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
    fn scx_short_options() {
        let o = parse(&["-s", "2000", "-p", "-v", "-V", "--stats", "0.5"]).unwrap();
        assert_eq!(o.slice_us, 2000);
        assert!(o.partial && o.verbose && o.version);
        assert_eq!(o.stats, Some(0.5));
    }
}
