//! stress-ng's throughput: bogo operations per second of wall-clock time,
//! from its `--yaml FILE` metrics or, failing that, the `--metrics-brief`
//! lines it logs ("stress-ng: metrc: [pid] cpu 5424 2.00 ...").

/// One stressor's totals over all its instances.
#[derive(Debug, Clone, PartialEq)]
pub struct StressMetrics {
    pub stressor: String,
    pub bogo_ops: f64,
    /// Bogo-ops per second of wall-clock time (all instances together).
    pub ops_per_s_real: f64,
    /// Bogo-ops per second of CPU time (user + system).
    pub ops_per_s_cpu: Option<f64>,
    pub wall_s: Option<f64>,
    /// CPU time in user space and in the kernel, all instances together:
    /// the kernel's share is what the kernel (and a scheduler's callbacks)
    /// did on the hogs' time.
    pub user_s: Option<f64>,
    pub system_s: Option<f64>,
}

impl StressMetrics {
    /// The share of the hogs' CPU time spent in the kernel, in percent.
    pub fn system_pct(&self) -> Option<f64> {
        let (u, s) = (self.user_s?, self.system_s?);
        (u + s > 0.0).then(|| 100.0 * s / (u + s))
    }
}

/// Parse the `metrics:` list of stress-ng's YAML output.
pub fn parse_yaml(text: &str) -> Result<Vec<StressMetrics>, String> {
    let mut out = Vec::new();
    let mut in_metrics = false;
    let mut cur: Option<Partial> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if !line.starts_with(' ') && !line.starts_with('-') && !trimmed.is_empty() {
            in_metrics = trimmed == "metrics:";
            if let Some(p) = cur.take() {
                out.extend(p.finish());
            }
            continue;
        }
        if !in_metrics {
            continue;
        }
        let (entry_start, kv) = match trimmed.strip_prefix("- ") {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        if entry_start {
            if let Some(p) = cur.take() {
                out.extend(p.finish());
            }
            cur = Some(Partial::default());
        }
        let (Some(p), Some((k, v))) = (cur.as_mut(), kv.split_once(':')) else {
            continue;
        };
        let v = v.trim().trim_matches('\'').trim_matches('"');
        match k.trim() {
            "stressor" => p.stressor = Some(v.to_string()),
            "bogo-ops" => p.bogo_ops = v.parse().ok(),
            "bogo-ops-per-second-real-time" => p.real = v.parse().ok(),
            "bogo-ops-per-second-usr-sys-time" => p.cpu = v.parse().ok(),
            "wall-clock-time" => p.wall = v.parse().ok(),
            "user-time" => p.user = v.parse().ok(),
            "system-time" => p.system = v.parse().ok(),
            _ => {}
        }
    }
    if let Some(p) = cur.take() {
        out.extend(p.finish());
    }
    if out.is_empty() {
        return Err("no stressor metrics in stress-ng's YAML".into());
    }
    Ok(out)
}

#[derive(Default)]
struct Partial {
    stressor: Option<String>,
    bogo_ops: Option<f64>,
    real: Option<f64>,
    cpu: Option<f64>,
    wall: Option<f64>,
    user: Option<f64>,
    system: Option<f64>,
}

impl Partial {
    fn finish(self) -> Option<StressMetrics> {
        Some(StressMetrics {
            stressor: self.stressor?,
            bogo_ops: self.bogo_ops?,
            ops_per_s_real: self.real?,
            ops_per_s_cpu: self.cpu,
            wall_s: self.wall,
            user_s: self.user,
            system_s: self.system,
        })
    }
}

/// Parse the `--metrics-brief` table stress-ng logs (tag "metrc:" since
/// 0.15, "info:" before): stressor, bogo ops, real time, usr time, sys
/// time, bogo ops/s (real time), bogo ops/s (usr+sys time).
pub fn parse_brief(text: &str) -> Result<Vec<StressMetrics>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("stress-ng:") else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(rest) = rest
            .strip_prefix("metrc:")
            .or_else(|| rest.strip_prefix("info:"))
        else {
            continue;
        };
        // Drop the "[pid]" word.
        let words: Vec<&str> = rest
            .split_whitespace()
            .skip_while(|w| w.starts_with('['))
            .collect();
        if words.len() != 7 {
            continue;
        }
        let nums: Option<Vec<f64>> = words[1..].iter().map(|w| w.parse().ok()).collect();
        if let Some(n) = nums {
            out.push(StressMetrics {
                stressor: words[0].to_string(),
                bogo_ops: n[0],
                ops_per_s_real: n[4],
                ops_per_s_cpu: Some(n[5]),
                wall_s: Some(n[1]),
                user_s: Some(n[2]),
                system_s: Some(n[3]),
            });
        }
    }
    if out.is_empty() {
        return Err(
            "no stressor metrics in stress-ng's output (was --metrics-brief given?)".into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "---
system-info:
      stress-ng-version: 0.15.06
      run-by: root
      version: '#1 SMP PREEMPT_DYNAMIC @0'
      cpus: 2

metrics:
    - stressor: cpu
      bogo-ops: 5424
      bogo-ops-per-second-usr-sys-time: 1655.752963
      bogo-ops-per-second-real-time: 2711.537443
      wall-clock-time: 2.000341
      user-time: 3.260864
      system-time: 0.815216
    - stressor: zlib
      bogo-ops: 80
      bogo-ops-per-second-usr-sys-time: 40.5
      bogo-ops-per-second-real-time: 39.9
      wall-clock-time: 2.005

...
";

    const BRIEF: &str = "stress-ng: info:  [4095] setting to a 2 second run per stressor
stress-ng: info:  [4095] dispatching hogs: 2 cpu
stress-ng: metrc: [4095] stressor       bogo ops real time  usr time  sys time   bogo ops/s     bogo ops/s
stress-ng: metrc: [4095]                           (secs)    (secs)    (secs)   (real time) (usr+sys time)
stress-ng: metrc: [4095] cpu                5424      2.00      3.26      0.01      2711.54        1655.75
stress-ng: metrc: [4654] zlib                  65.64 % compression ratio (geometic mean of 1 instances)
stress-ng: info:  [4095] successful run completed in 2.00s
";

    #[test]
    fn yaml_metrics() {
        let m = parse_yaml(YAML).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].stressor, "cpu");
        assert_eq!(m[0].bogo_ops, 5424.0);
        assert!((m[0].ops_per_s_real - 2711.537443).abs() < 1e-9);
        assert_eq!(m[0].ops_per_s_cpu, Some(1655.752963));
        assert_eq!(m[0].wall_s, Some(2.000341));
        assert!((m[0].system_pct().unwrap() - 20.0).abs() < 1e-6);
        assert_eq!(m[1].stressor, "zlib");
        assert_eq!(m[1].ops_per_s_real, 39.9);
        assert_eq!(m[1].system_pct(), None, "no user or system time given");
    }

    #[test]
    fn brief_metrics_old_and_new_tags() {
        let m = parse_brief(BRIEF).unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].stressor, "cpu");
        assert_eq!(m[0].ops_per_s_real, 2711.54);
        assert_eq!(m[0].wall_s, Some(2.0));
        assert_eq!(m[0].user_s, Some(3.26));
        assert!((m[0].system_pct().unwrap() - 100.0 * 0.01 / 3.27).abs() < 1e-9);
        let old = "stress-ng: info:  [99] cpu  100  1.00  1.00  0.00  100.00  100.00\n";
        assert_eq!(parse_brief(old).unwrap()[0].bogo_ops, 100.0);
    }

    #[test]
    fn missing_metrics_are_errors() {
        assert!(parse_yaml("---\nsystem-info:\n  cpus: 2\n...\n").is_err());
        assert!(parse_yaml("").is_err());
        assert!(parse_yaml("metrics:\n    - stressor: cpu\n      bogo-ops: x\n").is_err());
        assert!(parse_brief("stress-ng: info: [1] dispatching hogs\n").is_err());
    }
}
