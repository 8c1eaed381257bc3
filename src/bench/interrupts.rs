//! /proc/interrupts: which CPUs each NVMe queue's interrupts land on.

use std::collections::BTreeMap;

/// One numbered interrupt line.
#[derive(Debug, Clone, PartialEq)]
pub struct IrqLine {
    pub irq: u32,
    /// (CPU id, count) for every CPU column of the header.
    pub counts: Vec<(u32, u64)>,
    /// Everything after the counts: chip, hwirq, trigger and action names.
    pub desc: String,
}

impl IrqLine {
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&(_, c)| c).sum()
    }
}

/// One NVMe queue interrupt (`nvme<C>q<Q>`).
#[derive(Debug, Clone, PartialEq)]
pub struct NvmeQueueIrq {
    pub irq: u32,
    pub controller: String,
    pub queue: u32,
    pub counts: Vec<(u32, u64)>,
}

/// Parse the whole file. The header names the CPU columns ("CPU0 CPU1
/// CPU3" when CPU2 is offline); lines without a numeric IRQ (NMI, LOC...)
/// are skipped.
pub fn parse(text: &str) -> Result<Vec<IrqLine>, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("/proc/interrupts is empty")?;
    let cpus: Vec<u32> = header
        .split_whitespace()
        .map(|w| {
            w.strip_prefix("CPU")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("unexpected /proc/interrupts header word {w:?}"))
        })
        .collect::<Result<_, _>>()?;
    if cpus.is_empty() {
        return Err("/proc/interrupts header names no CPU".into());
    }
    let mut out = Vec::new();
    for line in lines {
        let mut rest = line.trim_start();
        let Some((label, after)) = rest.split_once(':') else {
            continue;
        };
        let Ok(irq) = label.trim().parse::<u32>() else {
            continue;
        };
        rest = after;
        let mut counts = Vec::with_capacity(cpus.len());
        for &cpu in &cpus {
            let r = rest.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            let Ok(n) = r[..end].parse::<u64>() else {
                break;
            };
            counts.push((cpu, n));
            rest = &r[end..];
        }
        out.push(IrqLine {
            irq,
            counts,
            desc: rest.trim().to_string(),
        });
    }
    Ok(out)
}

/// The NVMe queue interrupts, by controller name ("nvme0"), sorted by
/// queue. Queue 0 is the admin queue.
pub fn nvme_queues(lines: &[IrqLine]) -> BTreeMap<String, Vec<NvmeQueueIrq>> {
    let mut out: BTreeMap<String, Vec<NvmeQueueIrq>> = BTreeMap::new();
    for l in lines {
        for word in l.desc.split(|c: char| c.is_whitespace() || c == ',') {
            if let Some((ctrl, queue)) = nvme_queue_name(word) {
                out.entry(ctrl.clone()).or_default().push(NvmeQueueIrq {
                    irq: l.irq,
                    controller: ctrl,
                    queue,
                    counts: l.counts.clone(),
                });
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|q| q.queue);
    }
    out
}

/// "nvme12q3" -> ("nvme12", 3)
fn nvme_queue_name(word: &str) -> Option<(String, u32)> {
    let rest = word.strip_prefix("nvme")?;
    let (ctrl, queue) = rest.split_once('q')?;
    if ctrl.is_empty() || !ctrl.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let queue = queue.parse().ok()?;
    Some((format!("nvme{ctrl}"), queue))
}

/// Interrupt counts per CPU summed over the I/O queues (not the admin
/// queue) of one controller.
pub fn io_counts_per_cpu(queues: &[NvmeQueueIrq]) -> BTreeMap<u32, u64> {
    let mut out = BTreeMap::new();
    for q in queues.iter().filter(|q| q.queue > 0) {
        for &(cpu, n) in &q.counts {
            *out.entry(cpu).or_default() += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a 4-vCPU qemu guest with two NVMe drives shows it, plus an
    /// IR-PCI-MSIX line and a shared action as real servers have.
    const PROC: &str = "           CPU0       CPU1       CPU2       CPU3       
  1:          9          0          0          0  IO-APIC   1-edge      i8042
 24:          0          0          0          0  PCI-MSIX-0000:00:02.0   0-edge      nvme0q0
 25:        120          0          0          0  PCI-MSIX-0000:00:02.0   1-edge      nvme0q1
 26:          0         80          0          0  PCI-MSIX-0000:00:02.0   2-edge      nvme0q2
 27:          0          0        300          0  PCI-MSIX-0000:00:02.0   3-edge      nvme0q3
 28:          0          0          0          5  PCI-MSIX-0000:00:02.0   4-edge      nvme0q4
 29:          7          0          0          0  PCI-MSIX-0000:00:03.0   0-edge      nvme1q0
 30:          0          0       1000       2000  IR-PCI-MSIX-0000:c1:00.0   1-edge      nvme1q1, foo
 31:          1
NMI:          0          0          0          0   Non-maskable interrupts
LOC:       1000       2000       3000       4000   Local timer interrupts
ERR:          0
";

    #[test]
    fn parses_lines_and_skips_named_ones() {
        let lines = parse(PROC).unwrap();
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[0].irq, 1);
        assert_eq!(lines[0].counts, vec![(0, 9), (1, 0), (2, 0), (3, 0)]);
        assert_eq!(lines[0].desc, "IO-APIC   1-edge      i8042");
        let short = lines.iter().find(|l| l.irq == 31).unwrap();
        assert_eq!(
            short.counts,
            vec![(0, 1)],
            "a truncated line keeps what it has"
        );
        assert_eq!(short.total(), 1);
    }

    #[test]
    fn finds_nvme_queues_per_controller() {
        let q = nvme_queues(&parse(PROC).unwrap());
        assert_eq!(q.keys().collect::<Vec<_>>(), vec!["nvme0", "nvme1"]);
        assert_eq!(q["nvme0"].len(), 5);
        assert_eq!(q["nvme0"][0].queue, 0);
        assert_eq!(q["nvme1"][1].irq, 30);
        let c = io_counts_per_cpu(&q["nvme0"]);
        assert_eq!(
            c.values().copied().collect::<Vec<_>>(),
            vec![120, 80, 300, 5]
        );
        let c = io_counts_per_cpu(&q["nvme1"]);
        assert_eq!(
            (c[&2], c[&3], c[&0]),
            (1000, 2000, 0),
            "admin queue left out"
        );
    }

    #[test]
    fn offline_cpus_are_missing_columns() {
        let text = "      CPU0  CPU2\n 40:  5  6  PCI-MSIX  1-edge  nvme3q1\n";
        let q = nvme_queues(&parse(text).unwrap());
        assert_eq!(q["nvme3"][0].counts, vec![(0, 5), (2, 6)]);
    }

    #[test]
    fn names_that_only_look_like_nvme_are_ignored() {
        assert_eq!(nvme_queue_name("nvme0q12"), Some(("nvme0".into(), 12)));
        assert_eq!(nvme_queue_name("nvmeq1"), None);
        assert_eq!(nvme_queue_name("nvme0n1"), None);
        assert_eq!(nvme_queue_name("nvme0qx"), None);
        assert_eq!(nvme_queue_name("nvme-fc"), None);
    }

    #[test]
    fn bad_headers_are_errors() {
        assert!(parse("").is_err());
        assert!(parse("  foo bar\n").is_err());
        assert!(parse("   \n").is_err());
    }
}
