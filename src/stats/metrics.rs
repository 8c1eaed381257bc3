//! The published stats: what `--monitor`, `--monitor --json`, `top`,
//! scxtop's scheduler view and scx's OpenMetrics exporter see.
//!
//! Naming: rates end in `_per_sec`, shares in `_pct`, latencies in `_us`,
//! durations in `_s`. A number the running scheduler has no source for is
//! left out of the JSON (an `Option` that is `None`), never shown as 0.
//!
//! The scx_stats metadata (`stats_meta` requests, `--help-stats`) is built
//! from the tables below, not derived: scx_stats' derive cannot describe an
//! `Option`. A test checks that every table lists exactly the fields its
//! struct serializes, so the documentation cannot drift from the data.

use std::collections::BTreeMap;
use std::io::Write;

use scx_stats::{
    Meta, StatsData, StatsField, StatsFieldAttrs, StatsKind, StatsMeta, StatsStructAttrs,
};
use serde::{Deserialize, Serialize};

/// The value of [`StorelandStats::scheduler`]; clients use it to tell our
/// stats from another scheduler's on the shared socket path.
pub const SCHEDULER_NAME: &str = "scx_storeland";

/// Whole-scheduler stats: the `top` target of the stats server.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)] // recordings of older versions still replay
pub struct StorelandStats {
    pub scheduler: String,
    pub version: String,
    pub interval_s: f64,
    pub uptime_s: f64,
    pub restarts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart_reason: Option<String>,
    pub nr_cpus: u64,
    pub nr_llcs: u64,
    pub nr_numa_nodes: u64,
    pub smt_threads_per_core: u64,

    pub user_dispatches_per_sec: f64,
    pub fastpath_dispatches_per_sec: f64,
    pub fastpath_idle_per_sec: f64,
    pub fastpath_kthread_per_sec: f64,
    pub fastpath_self_per_sec: f64,
    pub fastpath_latcrit_per_sec: f64,
    pub fastpath_interactive_per_sec: f64,
    pub fastpath_requeue_per_sec: f64,
    pub fastpath_io_batch_per_sec: f64,
    pub requeued_per_sec: f64,
    pub queued_to_user_per_sec: f64,
    pub congestion_fallbacks_per_sec: f64,
    pub congested_ring_full_per_sec: f64,
    pub congested_late_per_sec: f64,
    pub stale_dropped_per_sec: f64,
    pub affinity_redirects_per_sec: f64,
    pub llc_steals_per_sec: f64,
    pub usersched_runs_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_dispatch_share_pct: Option<f64>,

    pub ring_queued_tasks: u64,
    pub ring_fill_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_drain_batch_avg: Option<f64>,
    pub ring_drain_batch_max: u64,
    pub decisions_pending: u64,
    pub decisions_deferred_per_sec: f64,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_llc_migrations_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wakeups_on_waker_llc_pct: Option<f64>,
    pub preemptions_per_sec: f64,
    pub irq_wakeups_per_sec: f64,
    pub hog_turns_cut_per_sec: f64,
    pub idle_core_picks_per_sec: f64,
    pub sync_wakeups_pulled_per_sec: f64,
    pub irq_wakeups_pulled_per_sec: f64,
    pub irq_idle_kept_per_sec: f64,
    pub hog_spreads_per_sec: f64,
    pub half_core_wakeups_per_sec: f64,
    pub held_cpu_kept_per_sec: f64,
    pub starvation_rescues_per_sec: f64,

    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_loop_cpu_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_cpu_pct: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemon_major_faults: Option<u64>,

    pub cpu_util_pct: f64,
    pub irq_pct: f64,
    pub iowait_pct: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme_irqs_per_sec: Option<f64>,

    #[serde(default)]
    pub llcs: BTreeMap<u32, LlcStats>,
    #[serde(default)]
    pub classes: BTreeMap<String, ClassStats>,
    #[serde(default)]
    pub nvme: BTreeMap<String, NvmeDriveStats>,
}

impl StorelandStats {
    /// Stats from scx_storeland, not from another scheduler on the same socket.
    pub fn is_ours(&self) -> bool {
        self.scheduler == SCHEDULER_NAME
    }
}

/// One LLC (a CCX on EPYC): the `llcs` entries, keyed by LLC id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)] // recordings of older versions still replay
pub struct LlcStats {
    pub cpus: Vec<u32>,
    pub cpu_util_pct: Vec<f64>,
    pub util_pct: f64,
    pub irq_pct: f64,
    pub steals_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvme_irqs_per_sec: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runnable: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_p50_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_p99_us: Option<f64>,
}

/// One task class: the `classes` entries, keyed by class name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)] // recordings of older versions still replay
pub struct ClassStats {
    pub wakeups_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_to_run_p50_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_to_run_p99_us: Option<f64>,
}

/// One NVMe drive's interrupts: the `nvme` entries, keyed by drive name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)] // recordings of older versions still replay
pub struct NvmeDriveStats {
    pub queues: u64,
    pub irqs_per_sec: f64,
    pub cpus_serving: u64,
    pub llc_irqs_per_sec: Vec<f64>,
}

/// How a field is typed in the scx_stats metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    U64,
    F64,
    Str,
    ListU64,
    ListF64,
    /// A map from the key kind to the named struct.
    Map(Key, &'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    U64,
    Str,
}

/// One documented field.
#[derive(Clone, Copy, Debug)]
pub struct FieldDoc {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: &'static str,
    pub desc: &'static str,
    /// Present only once the BPF side has a source for it.
    pub optional: bool,
}

const fn f(name: &'static str, kind: Kind, unit: &'static str, desc: &'static str) -> FieldDoc {
    FieldDoc {
        name,
        kind,
        unit,
        desc,
        optional: false,
    }
}

const fn opt(name: &'static str, kind: Kind, unit: &'static str, desc: &'static str) -> FieldDoc {
    FieldDoc {
        name,
        kind,
        unit,
        desc,
        optional: true,
    }
}

use Kind::*;

#[rustfmt::skip]
pub const TOP_FIELDS: &[FieldDoc] = &[
    f("scheduler", Str, "name", "always \"scx_storeland\""),
    f("version", Str, "text", "scheduler version"),
    f("interval_s", F64, "s", "the window the rates and shares cover (the first sample of a connection covers the time since attach)"),
    f("uptime_s", F64, "s", "time since the scheduler (re)attached"),
    f("restarts", U64, "count", "in-place restarts (CPU hotplug) since the process started"),
    opt("last_restart_reason", Str, "text", "the kernel's reason for the latest restart"),
    f("nr_cpus", U64, "CPUs", "CPUs scheduled"),
    f("nr_llcs", U64, "LLCs", "last-level caches (CCXs), one queue each"),
    f("nr_numa_nodes", U64, "nodes", "NUMA nodes holding those CCXs (NPS mode on Genoa: 1, 2 or 4)"),
    f("smt_threads_per_core", U64, "threads", "hardware threads per core (1: SMT off)"),
    f("user_dispatches_per_sec", F64, "1/s", "decisions made by the user-space policy and applied by BPF"),
    f("fastpath_dispatches_per_sec", F64, "1/s", "tasks BPF placed without asking user space (idle CPU, per-CPU kthread, own threads, cached classes)"),
    f("fastpath_idle_per_sec", F64, "1/s", "wake-ups sent straight to an idle CPU"),
    f("fastpath_kthread_per_sec", F64, "1/s", "per-CPU kernel threads kept on their CPU"),
    f("fastpath_self_per_sec", F64, "1/s", "the scheduler's own threads"),
    f("fastpath_latcrit_per_sec", F64, "1/s", "latency-critical wake-ups BPF placed itself"),
    f("fastpath_interactive_per_sec", F64, "1/s", "interactive wake-ups BPF placed itself"),
    f("fastpath_requeue_per_sec", F64, "1/s", "slice expiries BPF requeued itself from the cached class"),
    f("fastpath_io_batch_per_sec", F64, "1/s", "batch wake-ups from I/O (long per wake-up) BPF placed itself"),
    f("requeued_per_sec", F64, "1/s", "tasks preempted mid-slice, requeued by BPF with their last decision"),
    f("queued_to_user_per_sec", F64, "1/s", "tasks handed to the user-space policy through the ring"),
    f("congestion_fallbacks_per_sec", F64, "1/s", "tasks BPF queued itself because user space could not take them"),
    f("congested_ring_full_per_sec", F64, "1/s", "congestion fallbacks because the ring was full"),
    f("congested_late_per_sec", F64, "1/s", "congestion fallbacks because user space was late"),
    f("stale_dropped_per_sec", F64, "1/s", "decisions dropped because their task was re-enqueued or gone"),
    f("affinity_redirects_per_sec", F64, "1/s", "decisions naming a CPU or CCX the task may not use, redirected"),
    f("llc_steals_per_sec", F64, "1/s", "tasks a CPU took from another CCX's queue"),
    f("usersched_runs_per_sec", F64, "1/s", "times the policy loop was put on a CPU"),
    opt("user_dispatch_share_pct", F64, "%", "user-space decisions out of all placements (user + fast path + congestion)"),
    f("ring_queued_tasks", U64, "tasks", "tasks waiting in the kernel-to-user ring when sampled"),
    f("ring_fill_pct", F64, "%", "kernel-to-user ring occupancy when sampled"),
    opt("ring_drain_batch_avg", F64, "tasks", "tasks the loop drained per non-empty drain, in the window"),
    f("ring_drain_batch_max", U64, "tasks", "most tasks drained at once since attach"),
    f("decisions_pending", U64, "tasks", "decisions waiting for room in the user-to-kernel ring"),
    f("decisions_deferred_per_sec", F64, "1/s", "decision submissions that found the user-to-kernel ring full"),
    opt("cross_llc_migrations_per_sec", F64, "1/s", "tasks that started on another CCX than the one they last ran on"),
    opt("wakeups_on_waker_llc_pct", F64, "%", "wake-ups whose task ran on the waker's CCX"),
    f("preemptions_per_sec", F64, "1/s", "CPUs running batch work kicked for a waiting latency-critical or interactive task"),
    f("irq_wakeups_per_sec", F64, "1/s", "wake-ups from hard or soft IRQ context (NVMe completions)"),
    f("hog_turns_cut_per_sec", F64, "1/s", "CPU hogs that ended their turn early for other work: waiting in their CCX (at a tick) or woken on their CPU"),
    f("idle_core_picks_per_sec", F64, "1/s", "placements in a CCX that found a whole idle core (SMT on only)"),
    f("sync_wakeups_pulled_per_sec", F64, "1/s", "synchronous wake-ups (pipe, socket) brought from another CCX to the waker's CPU because no CPU was idle"),
    f("irq_wakeups_pulled_per_sec", F64, "1/s", "wake-ups from an interrupt brought to that CPU, whose CPU hog gave its turn up to them without an IPI"),
    f("irq_idle_kept_per_sec", F64, "1/s", "wake-ups from an interrupt kept on their own CPU, running its idle task, that the kernel's idle picker would have left because its idle bit was already clear"),
    f("hog_spreads_per_sec", F64, "1/s", "CPU hogs whose slice ended with nothing else waiting for their CPU, moved to a CCX with fewer hogs or, off a core another hog shared, to a whole idle core"),
    f("half_core_wakeups_per_sec", F64, "1/s", "wake-ups placed on an idle CPU of their own CCX whose core's other thread was busy, where the kernel's picker would take a whole idle core, of another CCX if need be (SMT on only)"),
    f("held_cpu_kept_per_sec", F64, "1/s", "tasks BPF kept in their CCX's queues instead of asking user space, because a higher class held their CPU or an RT task waited for it"),
    f("starvation_rescues_per_sec", F64, "1/s", "tasks BPF ran first because they had waited longer than a fifth of the watchdog timeout (should stay 0)"),
    opt("daemon_loop_cpu_pct", F64, "% of one CPU", "CPU time of the scheduling loop's thread"),
    opt("daemon_cpu_pct", F64, "% of one CPU", "CPU time of the whole scheduler process (loop and stats threads)"),
    opt("daemon_major_faults", U64, "count", "major page faults of the scheduler process since it started (should stay 0)"),
    f("cpu_util_pct", F64, "%", "busy time of all scheduled CPUs (user, system, irq, softirq, steal)"),
    f("irq_pct", F64, "%", "time all CPUs spent in hard and soft interrupts"),
    f("iowait_pct", F64, "%", "idle time with I/O outstanding, all CPUs"),
    opt("nvme_irqs_per_sec", F64, "1/s", "NVMe interrupts, all drives and CPUs (from /proc/interrupts)"),
    f("llcs", Map(Key::U64, "LlcStats"), "", "per LLC (CCX), keyed by LLC id"),
    f("classes", Map(Key::Str, "ClassStats"), "", "per task class (latency_critical, interactive, batch)"),
    f("nvme", Map(Key::Str, "NvmeDriveStats"), "", "per NVMe drive, keyed by name (nvme0, ...)"),
];

#[rustfmt::skip]
pub const LLC_FIELDS: &[FieldDoc] = &[
    f("cpus", ListU64, "CPU ids", "the CPUs of this LLC"),
    f(
        "cpu_util_pct",
        ListF64,
        "%",
        "busy time of each CPU, in the order of cpus",
    ),
    f("util_pct", F64, "%", "busy time of the LLC's CPUs"),
    f(
        "irq_pct",
        F64,
        "%",
        "time the LLC's CPUs spent in hard and soft interrupts",
    ),
    f(
        "steals_per_sec",
        F64,
        "1/s",
        "tasks this LLC's CPUs took from other LLCs' queues",
    ),
    opt(
        "nvme_irqs_per_sec",
        F64,
        "1/s",
        "NVMe interrupts handled by this LLC's CPUs",
    ),
    opt(
        "runnable",
        U64,
        "tasks",
        "tasks waiting in this LLC's queue when sampled",
    ),
    opt(
        "queue_wait_p50_us",
        F64,
        "us",
        "median time a task waited in this LLC's queue",
    ),
    opt(
        "queue_wait_p99_us",
        F64,
        "us",
        "99th percentile of the wait in this LLC's queue",
    ),
];

#[rustfmt::skip]
pub const CLASS_FIELDS: &[FieldDoc] = &[
    f("wakeups_per_sec", F64, "1/s", "wake-ups of tasks of this class that got a CPU (the latency samples)"),
    opt("wake_to_run_p50_us", F64, "us", "median time from wake-up to running (upper end of its log2 bucket; absent without wake-ups)"),
    opt("wake_to_run_p99_us", F64, "us", "99th percentile of the time from wake-up to running (upper end of its log2 bucket)"),
];

#[rustfmt::skip]
pub const NVME_FIELDS: &[FieldDoc] = &[
    f(
        "queues",
        U64,
        "count",
        "interrupt vectors (queues) of the drive",
    ),
    f(
        "irqs_per_sec",
        F64,
        "1/s",
        "interrupts of the drive, all CPUs",
    ),
    f(
        "cpus_serving",
        U64,
        "CPUs",
        "CPUs that handled at least one of its interrupts in the window",
    ),
    f(
        "llc_irqs_per_sec",
        ListF64,
        "1/s",
        "its interrupts per LLC, index = LLC id",
    ),
];

struct StructDoc {
    name: &'static str,
    desc: &'static str,
    top: bool,
    /// (key, value) user attributes for scx's OpenMetrics exporter.
    user: &'static [(&'static str, &'static str)],
    fields: &'static [FieldDoc],
}

const TOP: StructDoc = StructDoc {
    name: "StorelandStats",
    desc: "scx_storeland scheduler stats",
    top: true,
    user: &[],
    fields: TOP_FIELDS,
};
const LLC: StructDoc = StructDoc {
    name: "LlcStats",
    desc: "one last-level cache (CCX)",
    top: false,
    user: &[("_om_prefix", "llc_"), ("_om_label", "llc")],
    fields: LLC_FIELDS,
};
const CLASS: StructDoc = StructDoc {
    name: "ClassStats",
    desc: "one task class",
    top: false,
    user: &[("_om_prefix", "class_"), ("_om_label", "class")],
    fields: CLASS_FIELDS,
};
const NVME: StructDoc = StructDoc {
    name: "NvmeDriveStats",
    desc: "one NVMe drive's interrupts",
    top: false,
    user: &[("_om_prefix", "nvme_drive_"), ("_om_label", "drive")],
    fields: NVME_FIELDS,
};

fn kind_of(k: Kind) -> StatsData {
    let key = |k: Key| match k {
        Key::U64 => StatsKind::U64,
        Key::Str => StatsKind::String,
    };
    match k {
        U64 => StatsData::Datum(StatsKind::U64),
        F64 => StatsData::Datum(StatsKind::Float),
        Str => StatsData::Datum(StatsKind::String),
        ListU64 => StatsData::Array(StatsKind::U64),
        ListF64 => StatsData::Array(StatsKind::Float),
        Map(k, s) => StatsData::Dict {
            key: key(k),
            datum: StatsKind::Struct(s.to_string()),
        },
    }
}

fn meta_of(doc: &StructDoc) -> StatsMeta {
    let fields = doc
        .fields
        .iter()
        .map(|fd| {
            let mut user = BTreeMap::new();
            if matches!(fd.kind, ListU64 | ListF64 | Str) {
                // Not a number: nothing for the OpenMetrics exporter.
                user.insert("_om_skip".to_string(), "true".to_string());
            }
            let desc = if fd.unit.is_empty() {
                fd.desc.to_string()
            } else {
                format!("{} [{}]", fd.desc, fd.unit)
            };
            (
                fd.name.to_string(),
                StatsField {
                    data: kind_of(fd.kind),
                    attrs: StatsFieldAttrs {
                        desc: Some(desc),
                        user,
                    },
                },
            )
        })
        .collect();
    StatsMeta {
        name: doc.name.to_string(),
        attrs: StatsStructAttrs {
            top: doc.top.then(|| "true".to_string()),
            desc: Some(doc.desc.to_string()),
            user: doc
                .user
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
        fields,
    }
}

impl Meta for StorelandStats {
    fn meta() -> StatsMeta {
        meta_of(&TOP)
    }
}
impl Meta for LlcStats {
    fn meta() -> StatsMeta {
        meta_of(&LLC)
    }
}
impl Meta for ClassStats {
    fn meta() -> StatsMeta {
        meta_of(&CLASS)
    }
}
impl Meta for NvmeDriveStats {
    fn meta() -> StatsMeta {
        meta_of(&NVME)
    }
}

/// Every struct's metadata, top first (for the server's `stats_meta`).
pub fn all_meta() -> Vec<StatsMeta> {
    vec![
        StorelandStats::meta(),
        LlcStats::meta(),
        ClassStats::meta(),
        NvmeDriveStats::meta(),
    ]
}

/// `--help-stats`: every metric, one line each, with its unit.
pub fn write_help<W: Write>(w: &mut W) -> std::io::Result<()> {
    writeln!(
        w,
        "scx_storeland stats (scx_stats target \"top\"; JSON field paths as in --monitor --json).\n\
         Rates are per second over the sample's interval_s. Fields marked [optional] are left\n\
         out while the running scheduler has no source for them."
    )?;
    let sections: [(&str, &StructDoc); 4] = [
        ("", &TOP),
        ("llcs.<llc>.", &LLC),
        ("classes.<class>.", &CLASS),
        ("nvme.<drive>.", &NVME),
    ];
    let width = sections
        .iter()
        .flat_map(|(p, d)| d.fields.iter().map(move |f| p.len() + f.name.len()))
        .max()
        .unwrap_or(0);
    let uwidth = sections
        .iter()
        .flat_map(|(_, d)| d.fields.iter().map(|f| f.unit.len()))
        .max()
        .unwrap_or(0)
        + 2;
    for (prefix, doc) in sections {
        for fd in doc.fields {
            if matches!(fd.kind, Map(..)) {
                continue; // the entries' own lines follow
            }
            let name = format!("{prefix}{}", fd.name);
            let unit = format!("[{}]", fd.unit);
            writeln!(
                w,
                "{name:width$}  {unit:uwidth$}  {}{}",
                fd.desc,
                if fd.optional { " [optional]" } else { "" }
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn doc_names(fields: &[FieldDoc]) -> Vec<String> {
        let mut k: Vec<String> = fields.iter().map(|f| f.name.to_string()).collect();
        k.sort();
        k
    }

    /// Every field filled, every Option Some.
    pub(crate) fn full() -> StorelandStats {
        let llc = LlcStats {
            cpus: vec![0, 1],
            cpu_util_pct: vec![50.0, 60.0],
            util_pct: 55.0,
            irq_pct: 1.0,
            steals_per_sec: 2.0,
            nvme_irqs_per_sec: Some(3.0),
            runnable: Some(4),
            queue_wait_p50_us: Some(5.0),
            queue_wait_p99_us: Some(6.0),
        };
        let class = ClassStats {
            wakeups_per_sec: 1.0,
            wake_to_run_p50_us: Some(2.0),
            wake_to_run_p99_us: Some(3.0),
        };
        let drive = NvmeDriveStats {
            queues: 5,
            irqs_per_sec: 100.0,
            cpus_serving: 2,
            llc_irqs_per_sec: vec![60.0, 40.0],
        };
        StorelandStats {
            scheduler: SCHEDULER_NAME.into(),
            last_restart_reason: Some("hotplug".into()),
            user_dispatch_share_pct: Some(1.0),
            ring_drain_batch_avg: Some(1.0),
            cross_llc_migrations_per_sec: Some(1.0),
            wakeups_on_waker_llc_pct: Some(1.0),
            daemon_loop_cpu_pct: Some(1.0),
            daemon_cpu_pct: Some(1.0),
            daemon_major_faults: Some(0),
            nvme_irqs_per_sec: Some(1.0),
            llcs: [(0, llc)].into(),
            classes: [("batch".to_string(), class)].into(),
            nvme: [("nvme0".to_string(), drive)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_tables_document_exactly_the_serialized_fields() {
        let v = serde_json::to_value(full()).unwrap();
        assert_eq!(keys(&v), doc_names(TOP_FIELDS));
        assert_eq!(keys(&v["llcs"]["0"]), doc_names(LLC_FIELDS));
        assert_eq!(keys(&v["classes"]["batch"]), doc_names(CLASS_FIELDS));
        assert_eq!(keys(&v["nvme"]["nvme0"]), doc_names(NVME_FIELDS));
    }

    #[test]
    fn optional_fields_are_absent_not_zero() {
        let v = serde_json::to_value(StorelandStats::default()).unwrap();
        let present = keys(&v);
        for fd in TOP_FIELDS {
            assert_eq!(
                present.contains(&fd.name.to_string()),
                !fd.optional,
                "{}",
                fd.name
            );
        }
        let llc = serde_json::to_value(LlcStats::default()).unwrap();
        for fd in LLC_FIELDS {
            assert_eq!(llc.get(fd.name).is_some(), !fd.optional, "{}", fd.name);
        }
    }

    #[test]
    fn json_round_trips() {
        let s = full();
        let line = serde_json::to_string(&s).unwrap();
        assert!(!line.contains('\n'));
        let back: StorelandStats = serde_json::from_str(&line).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn another_schedulers_stats_are_not_taken_for_ours() {
        let rustland = r#"{"nr_running":1,"nr_cpus":4,"nr_user_dispatches":5}"#;
        let s: StorelandStats = serde_json::from_str(rustland).unwrap();
        assert!(!s.is_ours());
        let older = r#"{"scheduler":"scx_storeland","nr_cpus":4}"#;
        let s: StorelandStats = serde_json::from_str(older).unwrap();
        assert!(
            s.is_ours(),
            "a recording missing newer fields still replays"
        );
    }

    #[test]
    fn metadata_is_consistent_for_generic_clients() {
        let metas = all_meta();
        assert_eq!(metas[0].attrs.top.as_deref(), Some("true"));
        let names: Vec<&str> = metas.iter().map(|m| m.name.as_str()).collect();
        for m in &metas {
            for (fname, field) in &m.fields {
                assert!(field.attrs.desc.is_some(), "{fname}");
                if let StatsData::Dict {
                    datum: StatsKind::Struct(s),
                    ..
                } = &field.data
                {
                    assert!(names.contains(&s.as_str()), "{s}");
                }
            }
        }
        // scx's OpenMetrics exporter needs a label on every struct in a dict.
        for m in &metas[1..] {
            assert!(m.attrs.user.contains_key("_om_label"), "{}", m.name);
        }
    }

    #[test]
    fn help_has_one_line_per_metric_with_its_unit() {
        let mut out = Vec::new();
        write_help(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for (prefix, fields) in [
            ("", TOP_FIELDS),
            ("llcs.<llc>.", LLC_FIELDS),
            ("classes.<class>.", CLASS_FIELDS),
            ("nvme.<drive>.", NVME_FIELDS),
        ] {
            for fd in fields.iter().filter(|f| !matches!(f.kind, Map(..))) {
                let name = format!("{prefix}{}", fd.name);
                let line = text
                    .lines()
                    .find(|l| l.split_whitespace().next() == Some(name.as_str()))
                    .unwrap_or_else(|| panic!("no line for {name}"));
                assert!(line.contains(&format!("[{}]", fd.unit)), "{line}");
            }
        }
    }
}
