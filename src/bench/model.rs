//! The results file (`results.json`): what ran, where, and every run's
//! numbers. The Markdown report and the plots are rendered from it alone,
//! so `storeland-bench --report-from DIR` reproduces them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::sysinfo::{CpuTopology, Drive, KernelInfo, SchedState};

pub const SCHEMA: &str = "storeland-bench/1";

/// The scheduler every other is compared with: the kernel's default.
pub const BASELINE: &str = "eevdf";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema: String,
    pub tool: String,
    /// UTC, RFC 3339.
    pub started: String,
    pub finished: Option<String>,
    /// "running", "complete" or "interrupted".
    pub status: String,
    pub command: Vec<String>,
    pub options: RunOptions,
    pub environment: Environment,
    pub schedulers: Vec<SchedulerInfo>,
    pub workloads: Vec<WorkloadInfo>,
    /// What discovery or the plan left out, and why.
    pub skipped: Vec<Skipped>,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub quick: bool,
    pub reps: u32,
    pub runtime_s: f64,
    pub ramp_s: f64,
    pub allow_writes: bool,
    pub devices: Vec<String>,
    pub out: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub hostname: String,
    pub is_root: bool,
    pub kernel: KernelInfo,
    pub topology: CpuTopology,
    pub drives: Vec<Drive>,
    pub tools: Vec<Tool>,
    /// cpufreq governor of CPU 0 (peers measure with "performance").
    #[serde(default)]
    pub cpufreq_governor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub path: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchedulerInfo {
    /// "eevdf", "scx_storeland", "scx_bpfland"...
    pub name: String,
    pub path: Option<String>,
    pub version: Option<String>,
    pub args: Vec<String>,
}

impl SchedulerInfo {
    pub fn label(&self) -> String {
        label(&self.name)
    }
}

/// How a scheduler is shown: EEVDF in capitals, the others by binary name.
pub fn label(name: &str) -> String {
    if name == BASELINE {
        "EEVDF".into()
    } else {
        name.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadInfo {
    pub name: String,
    pub title: String,
    pub params: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub what: String,
    pub why: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Ok,
    Failed,
    Interrupted,
}

/// One workload run under one scheduler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub index: usize,
    pub rep: u32,
    pub scheduler: String,
    pub scheduler_version: Option<String>,
    pub workload: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub started: String,
    pub duration_s: f64,
    pub params: BTreeMap<String, Value>,
    pub commands: Vec<String>,
    pub sched_before: SchedState,
    pub sched_after: SchedState,
    /// Kernel and tool versions this run used.
    pub versions: BTreeMap<String, String>,
    /// The CPU topology, compactly ("4 CPUs in 2 L3 domain(s): ...").
    pub topology: String,
    pub metrics: BTreeMap<String, f64>,
    /// Per-drive and per-CCX numbers, raw tool summaries.
    pub details: Value,
}

/// How a metric is shown and which direction is better.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricInfo {
    pub label: String,
    pub unit: &'static str,
    pub higher_is_better: bool,
    /// Position in tables.
    pub order: u32,
}

/// Metric keys: "iops", "clat_p99_us", "hog_ops_per_s", "hog_cpus", "hog_sys_pct",
/// "cpu_us_per_io", "time_s", "wakeup_p99_us", "rps"...
pub fn metric_info(key: &str) -> MetricInfo {
    let pct = |k: &str| {
        match k {
            "p50" => "p50",
            "p99" => "p99",
            "p999" => "p99.9",
            "mean" => "mean",
            other => other,
        }
        .to_string()
    };
    let (label, unit, hib, order) = match key {
        "iops" => ("IOPS".to_string(), "", true, 0),
        "write_iops" => ("write IOPS".to_string(), "", true, 1),
        "hog_ops_per_s" => ("hog throughput".to_string(), "bogo-ops/s", true, 20),
        "hog_cpus" => ("hog CPUs held".to_string(), "CPUs", true, 21),
        "hog_ops_per_cpu_s" => ("hog work per CPU-second".to_string(), "bogo-ops", true, 22),
        "hog_sys_pct" => ("hog time in the kernel".to_string(), "%", false, 23),
        "cpu_us_per_io" => ("CPU time per I/O".to_string(), "µs", false, 24),
        "time_s" => ("wall time".to_string(), "s", false, 30),
        "rps" => ("requests/s".to_string(), "req/s", true, 40),
        k if k.starts_with("clat_") && k.ends_with("_us") => {
            let p = &k[5..k.len() - 3];
            let order = match p {
                "p50" => 2,
                "p99" => 3,
                "p999" => 4,
                _ => 5,
            };
            (format!("completion latency {}", pct(p)), "µs", false, order)
        }
        k if k.starts_with("lat_") && k.ends_with("_us") => {
            let p = &k[4..k.len() - 3];
            let order = match p {
                "p50" => 6,
                "p99" => 7,
                "p999" => 8,
                _ => 9,
            };
            (format!("total latency {}", pct(p)), "µs", false, order)
        }
        k if k.starts_with("wakeup_") && k.ends_with("_us") => {
            let p = &k[7..k.len() - 3];
            (format!("wake-up latency {}", pct(p)), "µs", false, 10)
        }
        k if k.starts_with("request_") && k.ends_with("_us") => {
            let p = &k[8..k.len() - 3];
            (format!("request latency {}", pct(p)), "µs", false, 15)
        }
        other => (other.to_string(), "", true, 99),
    };
    MetricInfo {
        label,
        unit,
        higher_is_better: hib,
        order,
    }
}

impl MetricInfo {
    /// "completion latency p99 (µs)", or just "IOPS".
    pub fn with_unit(&self) -> String {
        if self.unit.is_empty() {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, self.unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_directions() {
        assert!(metric_info("iops").higher_is_better);
        assert!(metric_info("hog_ops_per_s").higher_is_better);
        assert!(metric_info("hog_ops_per_s").order < metric_info("hog_cpus").order);
        assert!(!metric_info("cpu_us_per_io").higher_is_better);
        assert_eq!(metric_info("cpu_us_per_io").unit, "µs");
        assert!(!metric_info("clat_p99_us").higher_is_better);
        assert_eq!(
            metric_info("clat_p999_us").label,
            "completion latency p99.9"
        );
        assert!(!metric_info("time_s").higher_is_better);
        assert_eq!(metric_info("wakeup_p99_us").label, "wake-up latency p99");
        assert!(metric_info("clat_p50_us").order < metric_info("clat_p99_us").order);
        assert!(metric_info("clat_p999_us").order < metric_info("lat_p50_us").order);
        assert_eq!(metric_info("lat_p99_us").label, "total latency p99");
        assert!(!metric_info("lat_p999_us").higher_is_better);
    }

    #[test]
    fn eevdf_is_shown_in_capitals() {
        assert_eq!(label("eevdf"), "EEVDF");
        assert_eq!(label("scx_storeland"), "scx_storeland");
    }
}
