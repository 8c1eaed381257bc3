//! Outputs of the scheduler micro-benchmarks: hackbench (rt-tests) or
//! `perf bench sched messaging` wall time, and schbench's latency
//! percentiles and requests per second.

/// Seconds a hackbench or `perf bench sched messaging` run took.
/// hackbench prints "Time: 0.048"; perf "Total time: 0.057 [sec]", or just
/// "0.060" with `-f simple`.
pub fn parse_messaging_time(text: &str) -> Result<f64, String> {
    let mut found = None;
    for line in text.lines() {
        let l = line.trim();
        let value = if let Some(v) = l.strip_prefix("Time:") {
            v.trim()
        } else if let Some(v) = l.strip_prefix("Total time:") {
            v.trim().trim_end_matches("[sec]").trim()
        } else if !l.is_empty() && l.chars().all(|c| c.is_ascii_digit() || c == '.') {
            l
        } else {
            continue;
        };
        if let Ok(v) = value.parse::<f64>() {
            found = Some(v);
        }
    }
    match found {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("no \"Time:\" or \"Total time:\" line in the messaging benchmark's output".into()),
    }
}

/// schbench's final report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schbench {
    /// Wake-up latency percentiles in µs, (percentile, value).
    pub wakeup_us: Vec<(f64, f64)>,
    /// Request latency percentiles in µs (newer schbench only).
    pub request_us: Vec<(f64, f64)>,
    /// Average requests per second (newer schbench only).
    pub rps: Option<f64>,
}

impl Schbench {
    pub fn wakeup(&self, p: f64) -> Option<f64> {
        self.wakeup_us
            .iter()
            .find(|(q, _)| (q - p).abs() < 1e-6)
            .map(|&(_, v)| v)
    }
}

/// Parse schbench's output. It prints interim reports during the run; the
/// last "Wakeup Latencies" block (and "Request Latencies", "average rps")
/// is the final one. Lines look like "\t* 99.0th: 33  (1234 samples)".
pub fn parse_schbench(text: &str) -> Result<Schbench, String> {
    #[derive(PartialEq)]
    enum Sect {
        None,
        Wakeup,
        Request,
        Other,
    }
    let mut sect = Sect::None;
    let mut res = Schbench::default();
    for line in text.lines() {
        let l = line.trim();
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("wakeup latencies") || lower.starts_with("latency percentiles") {
            sect = Sect::Wakeup;
            res.wakeup_us.clear();
            continue;
        }
        if lower.starts_with("request latencies") {
            sect = Sect::Request;
            res.request_us.clear();
            continue;
        }
        if lower.starts_with("rps percentiles") {
            sect = Sect::Other;
            continue;
        }
        if let Some(v) = lower.strip_prefix("average rps:") {
            res.rps = v.trim().parse().ok();
            continue;
        }
        let Some((p, v)) = percentile_line(l) else {
            continue;
        };
        match sect {
            Sect::Wakeup => res.wakeup_us.push((p, v)),
            Sect::Request => res.request_us.push((p, v)),
            _ => {}
        }
    }
    if res.wakeup_us.is_empty() {
        return Err("no wake-up latency percentiles in schbench's output".into());
    }
    Ok(res)
}

/// "* 99.0th: 33  (1234 samples)" -> (99.0, 33.0)
fn percentile_line(l: &str) -> Option<(f64, f64)> {
    let l = l.trim_start_matches('*').trim();
    let (p, rest) = l.split_once("th:")?;
    let p: f64 = p.trim().parse().ok()?;
    let v: f64 = rest.split_whitespace().next()?.parse().ok()?;
    Some((p, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hackbench_and_perf_times() {
        let hb =
            "Running in process mode with 2 groups using 40 file descriptors each (== 80 tasks)\n\
                  Each sender will pass 50 messages of 100 bytes\nTime: 0.048\n";
        assert_eq!(parse_messaging_time(hb).unwrap(), 0.048);
        let perf = "# Running 'sched/messaging' benchmark:\n# 20 sender and receiver processes per group\n\
                    # 2 groups == 80 processes run\n\n     Total time: 0.057 [sec]\n";
        assert_eq!(parse_messaging_time(perf).unwrap(), 0.057);
        assert_eq!(parse_messaging_time("0.060\n").unwrap(), 0.060);
        assert!(parse_messaging_time("Running in process mode\n").is_err());
        assert!(parse_messaging_time("").is_err());
        assert!(parse_messaging_time("Time: -1\n").is_err());
    }

    const SCHBENCH: &str = "Wakeup Latencies percentiles (usec) runtime 10 (s) (5000 total samples)
\t  50.0th: 12         (1500 samples)
\t  90.0th: 20         (1800 samples)
\t* 99.0th: 50         (400 samples)
\t  99.9th: 90         (40 samples)
\t  min=1, max=400
Request Latencies percentiles (usec) runtime 10 (s) (5000 total samples)
\t  50.0th: 8000       (2000 samples)
\t* 99.0th: 9000       (100 samples)
RPS percentiles (requests) runtime 10 (s) (11 total samples)
\t  20.0th: 480        (3 samples)
\t* 50.0th: 500        (4 samples)
Wakeup Latencies percentiles (usec) runtime 30 (s) (15000 total samples)
\t  50.0th: 9          (4500 samples)
\t  90.0th: 18         (5400 samples)
\t* 99.0th: 37         (1200 samples)
\t  99.9th: 69         (120 samples)
\t  min=1, max=1576
Request Latencies percentiles (usec) runtime 30 (s) (15000 total samples)
\t  50.0th: 7000       (6000 samples)
\t* 99.0th: 8200       (300 samples)
RPS percentiles (requests) runtime 30 (s) (31 total samples)
\t* 50.0th: 510        (10 samples)
average rps: 505.33
";

    #[test]
    fn schbench_final_report() {
        let s = parse_schbench(SCHBENCH).unwrap();
        assert_eq!(s.wakeup(50.0), Some(9.0));
        assert_eq!(s.wakeup(99.0), Some(37.0));
        assert_eq!(s.wakeup(99.9), Some(69.0));
        assert_eq!(s.wakeup_us.len(), 4);
        assert_eq!(s.request_us, vec![(50.0, 7000.0), (99.0, 8200.0)]);
        assert_eq!(s.rps, Some(505.33));
    }

    #[test]
    fn old_schbench_has_latency_only() {
        let old = "Latency percentiles (usec)\n\t50.0000th: 40\n\t75.0000th: 55\n\t90.0000th: 70\n\
                   \t95.0000th: 80\n\t*99.0000th: 120\n\t99.5000th: 150\n\t99.9000th: 400\n\tmin=0, max=900\n";
        let s = parse_schbench(old).unwrap();
        assert_eq!(s.wakeup(99.0), Some(120.0));
        assert_eq!(s.wakeup(99.9), Some(400.0));
        assert_eq!(s.rps, None);
        assert!(parse_schbench("usage: schbench [-m messengers]\n").is_err());
    }
}
