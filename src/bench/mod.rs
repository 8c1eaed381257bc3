//! The benchmark harness's kernel-free parts (`storeland-bench`, run by
//! `scripts/bench`): parsers of the tools' outputs, statistics, the machine
//! description read from sysfs/procfs under configurable roots, the data
//! safety checks, the results file and the report. The process handling
//! (schedulers, workloads) lives in `src/bin/storeland-bench/`.

pub mod cpustat;
pub mod fio;
pub mod interrupts;
pub mod model;
pub mod msgbench;
pub mod pool;
pub mod report;
pub mod safety;
pub mod stats;
pub mod stressng;
pub mod svg;
pub mod sysinfo;
