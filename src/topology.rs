//! The machine as the scheduler sees it: CPUs grouped by last-level cache.
//!
//! On AMD EPYC Genoa every CCX (8 cores, 16 CPUs with SMT) has its own L3,
//! so one LLC here is one CCX. The BPF side keeps one queue per LLC, built
//! from this view; the policy uses it to keep tasks on their CCX. With SMT
//! on, an idle CPU whose sibling runs something is only half a core: the
//! BPF side then looks for a whole idle core first.

use anyhow::{bail, Context, Result};
use std::fmt;

use crate::intf::{MAX_CPUS, MAX_LLCS, MAX_LLC_CPUS};

/// CPUs grouped by LLC (CCX), validated against the BPF side's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcxTopology {
    llcs: Vec<Vec<u32>>,
    cpu_llc: Vec<Option<usize>>,
    smt: bool,
}

impl CcxTopology {
    /// Build from a list of LLCs, each a list of CPU ids.
    pub fn new(llcs: Vec<Vec<u32>>) -> Result<Self> {
        if llcs.is_empty() {
            bail!("no last-level cache found: cannot build per-LLC queues");
        }
        if llcs.len() > MAX_LLCS {
            bail!("{} LLCs found, at most {} supported", llcs.len(), MAX_LLCS);
        }
        let nr_cpu_ids = llcs.iter().flatten().max().map_or(0, |&c| c as usize + 1);
        if nr_cpu_ids > MAX_CPUS {
            bail!(
                "CPU id {} is beyond the supported {}",
                nr_cpu_ids - 1,
                MAX_CPUS
            );
        }
        let mut cpu_llc = vec![None; nr_cpu_ids];
        for (llc, cpus) in llcs.iter().enumerate() {
            if cpus.is_empty() {
                bail!("LLC {llc} has no online CPU");
            }
            if cpus.len() > MAX_LLC_CPUS {
                bail!(
                    "LLC {llc} has {} CPUs, at most {MAX_LLC_CPUS} supported",
                    cpus.len()
                );
            }
            for &cpu in cpus {
                if let Some(other) = cpu_llc[cpu as usize].replace(llc) {
                    bail!("CPU {cpu} appears in LLC {other} and LLC {llc}");
                }
            }
        }
        Ok(Self {
            llcs,
            cpu_llc,
            smt: false,
        })
    }

    /// The same CPUs, with SMT on (some core runs more than one CPU) or off.
    pub fn with_smt(mut self, smt: bool) -> Self {
        self.smt = smt;
        self
    }

    /// Read the running machine's topology (sysfs, through scx_utils).
    pub fn from_system() -> Result<Self> {
        let topo = scx_utils::Topology::new().context("reading the CPU topology from sysfs")?;
        let llcs = topo
            .all_llcs
            .values()
            .map(|llc| llc.all_cpus.keys().map(|&cpu| cpu as u32).collect())
            .collect();
        Ok(Self::new(llcs)?.with_smt(topo.smt_enabled))
    }

    /// Whether some core runs more than one CPU (hardware threads).
    pub fn smt(&self) -> bool {
        self.smt
    }

    pub fn nr_llcs(&self) -> usize {
        self.llcs.len()
    }

    /// One past the highest CPU id in the topology.
    pub fn nr_cpu_ids(&self) -> usize {
        self.cpu_llc.len()
    }

    pub fn nr_cpus(&self) -> usize {
        self.llcs.iter().map(Vec::len).sum()
    }

    /// The LLC of `cpu`, or None for an unknown or offline CPU.
    pub fn llc_of(&self, cpu: i32) -> Option<usize> {
        usize::try_from(cpu)
            .ok()
            .and_then(|cpu| self.cpu_llc.get(cpu).copied().flatten())
    }

    pub fn llc_cpus(&self, llc: usize) -> &[u32] {
        &self.llcs[llc]
    }
}

impl fmt::Display for CcxTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} CPUs in {} LLC(s):", self.nr_cpus(), self.nr_llcs())?;
        for (llc, cpus) in self.llcs.iter().enumerate() {
            write!(f, " {llc}=[{}]", cpu_list(cpus))?;
        }
        write!(f, ", SMT {}", if self.smt { "on" } else { "off" })
    }
}

/// Format CPU ids as a compact list ("0-3,8").
pub fn cpu_list(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Genoa 9654: 12 CCXs of 8 cores, SMT siblings numbered +96.
    fn genoa() -> CcxTopology {
        let llcs = (0..12u32)
            .map(|ccx| {
                let cores = ccx * 8..ccx * 8 + 8;
                cores.clone().chain(cores.map(|c| c + 96)).collect()
            })
            .collect();
        CcxTopology::new(llcs).unwrap().with_smt(true)
    }

    #[test]
    fn genoa_socket_maps_every_cpu_to_its_ccx() {
        let topo = genoa();
        assert_eq!(topo.nr_llcs(), 12);
        assert_eq!(topo.nr_cpus(), 192);
        assert_eq!(topo.nr_cpu_ids(), 192);
        assert_eq!(topo.llc_of(0), Some(0));
        assert_eq!(topo.llc_of(7), Some(0));
        assert_eq!(topo.llc_of(8), Some(1));
        assert_eq!(topo.llc_of(96), Some(0));
        assert_eq!(topo.llc_of(191), Some(11));
        assert_eq!(topo.llc_cpus(11).len(), 16);
    }

    #[test]
    fn unknown_cpus_have_no_llc() {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![3]]).unwrap();
        assert_eq!(topo.llc_of(-1), None);
        assert_eq!(topo.llc_of(2), None, "a hole in the CPU ids (offline CPU)");
        assert_eq!(topo.llc_of(4), None);
        assert_eq!(topo.nr_cpu_ids(), 4);
    }

    #[test]
    fn rejects_what_the_bpf_side_cannot_hold() {
        assert!(CcxTopology::new(vec![]).is_err());
        assert!(CcxTopology::new(vec![vec![0], vec![]]).is_err());
        assert!(CcxTopology::new(vec![vec![0, 1], vec![1]]).is_err());
        assert!(CcxTopology::new(vec![vec![MAX_CPUS as u32]]).is_err());
        assert!(CcxTopology::new((0..MAX_LLCS as u32 + 1).map(|c| vec![c]).collect()).is_err());
        assert!(CcxTopology::new(vec![(0..MAX_LLC_CPUS as u32 + 1).collect()]).is_err());
    }

    #[test]
    fn displays_compact_cpu_lists() {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
        assert_eq!(
            topo.to_string(),
            "4 CPUs in 2 LLC(s): 0=[0-1] 1=[2-3], SMT off"
        );
        assert!(genoa().to_string().ends_with(" 11=[88-95,184-191], SMT on"));
        assert_eq!(cpu_list(&[8, 0, 1, 2, 5]), "0-2,5,8");
    }
}
