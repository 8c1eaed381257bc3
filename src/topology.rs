//! The machine as the scheduler sees it: CPUs grouped by last-level cache.
//!
//! On AMD EPYC Genoa every CCX (8 cores, 16 CPUs with SMT) has its own L3,
//! so one LLC here is one CCX. The BPF side keeps one queue per LLC, built
//! from this view; the policy uses it to keep tasks on their CCX. With SMT
//! on, an idle CPU whose sibling runs something is only half a core: the
//! BPF side then looks for a whole idle core first. In NPS2/NPS4 mode the
//! socket is 2 or 4 NUMA nodes of 6 or 3 CCXs: a CPU with nothing queued in
//! its CCX steals from the CCXs of its own node first.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::sync::Arc;

use crate::intf::{MAX_CPUS, MAX_LLCS, MAX_LLC_CPUS};

/// CPUs grouped by LLC (CCX), validated against the BPF side's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcxTopology {
    llcs: Vec<Vec<u32>>,
    cpu_llc: Vec<Option<usize>>,
    /// The core of each CPU id (an index; each CPU its own without SMT).
    cpu_core: Vec<u32>,
    /// Hardware threads of the largest core (1: no SMT; Genoa: 2).
    threads_per_core: u32,
    /// NUMA node of each LLC.
    llc_node: Vec<usize>,
    /// Distance between nodes (the kernel's SLIT: 10 is local).
    node_distance: Vec<Vec<u32>>,
}

/// The kernel's NUMA distance of a node to itself.
const LOCAL_DISTANCE: u32 = 10;
/// What a distance not reported counts as (the kernel's default remote one).
const REMOTE_DISTANCE: u32 = 20;

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
        let nr_llcs = llcs.len();
        Ok(Self {
            llcs,
            cpu_core: (0..nr_cpu_ids as u32).collect(),
            cpu_llc,
            threads_per_core: 1,
            llc_node: vec![0; nr_llcs],
            node_distance: vec![vec![LOCAL_DISTANCE]],
        })
    }

    /// The same CCXs spread over NUMA nodes: `llc_node[llc]` is the node of
    /// each LLC, `node_distance[a][b]` the distance between nodes.
    pub fn with_numa(mut self, llc_node: Vec<usize>, node_distance: Vec<Vec<u32>>) -> Result<Self> {
        if llc_node.len() != self.llcs.len() {
            bail!(
                "{} NUMA node ids for {} LLCs",
                llc_node.len(),
                self.llcs.len()
            );
        }
        if let Some(&node) = llc_node.iter().find(|&&n| n >= node_distance.len()) {
            bail!("NUMA node {node} has no distance row");
        }
        self.llc_node = llc_node;
        self.node_distance = node_distance;
        Ok(self)
    }

    /// The same CPUs grouped into cores, each a list of its hardware
    /// threads (SMT siblings, which share their LLC). CPUs in no list keep
    /// a core of their own.
    pub fn with_cores(mut self, cores: &[Vec<u32>]) -> Result<Self> {
        let first_free = self.cpu_core.len() as u32;
        for (core, cpus) in cores.iter().enumerate() {
            let core = first_free + core as u32;
            for &cpu in cpus {
                let Some(llc) = self.llc_of(cpu as i32) else {
                    bail!("core {core} lists CPU {cpu}, which is in no LLC");
                };
                if self.llc_of(cpus[0] as i32) != Some(llc) {
                    bail!("CPUs {} and {cpu} share a core but not an LLC", cpus[0]);
                }
                self.cpu_core[cpu as usize] = core;
            }
        }
        let largest = cores.iter().map(Vec::len).max().unwrap_or(1);
        self.threads_per_core = largest.max(1) as u32;
        Ok(self)
    }

    /// Read the running machine's topology (sysfs, through scx_utils).
    pub fn from_system() -> Result<Self> {
        let topo = scx_utils::Topology::new().context("reading the CPU topology from sysfs")?;
        let llcs = topo
            .all_llcs
            .values()
            .map(|llc| llc.all_cpus.keys().map(|&cpu| cpu as u32).collect())
            .collect();
        let llc_node: Vec<usize> = topo.all_llcs.values().map(|llc| llc.node_id).collect();
        let nr_nodes = llc_node.iter().max().map_or(1, |&n| n + 1);
        // sysfs lists each node's distances in node id order.
        let node_distance = (0..nr_nodes)
            .map(|a| {
                (0..nr_nodes)
                    .map(|b| {
                        let reported = topo.nodes.get(&a).and_then(|n| n.distance.get(b));
                        match reported {
                            Some(&d) => d as u32,
                            None if a == b => LOCAL_DISTANCE,
                            None => REMOTE_DISTANCE,
                        }
                    })
                    .collect()
            })
            .collect();
        let cores: Vec<Vec<u32>> = if topo.smt_enabled {
            let cpus = |c: &Arc<scx_utils::Core>| c.cpus.keys().map(|&cpu| cpu as u32).collect();
            topo.all_cores.values().map(cpus).collect()
        } else {
            Vec::new()
        };
        Self::new(llcs)?
            .with_cores(&cores)?
            .with_numa(llc_node, node_distance)
    }

    /// Whether some core runs more than one CPU (hardware threads).
    pub fn smt(&self) -> bool {
        self.threads_per_core > 1
    }

    pub fn threads_per_core(&self) -> u32 {
        self.threads_per_core
    }

    /// The core of `cpu` (an index shared by its SMT siblings), or None
    /// for an unknown CPU.
    pub fn core_of(&self, cpu: u32) -> Option<u32> {
        self.llc_of(cpu as i32).map(|_| self.cpu_core[cpu as usize])
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

    /// The NUMA nodes that hold at least one LLC, in id order.
    fn nodes(&self) -> Vec<usize> {
        let mut nodes = self.llc_node.clone();
        nodes.sort_unstable();
        nodes.dedup();
        nodes
    }

    pub fn nr_nodes(&self) -> usize {
        self.nodes().len()
    }

    /// The NUMA node of an LLC.
    pub fn node_of(&self, llc: usize) -> usize {
        self.llc_node[llc]
    }

    /// Whether two LLCs are in the same NUMA node.
    pub fn same_node(&self, a: usize, b: usize) -> bool {
        self.llc_node[a] == self.llc_node[b]
    }

    /// NUMA distance between the nodes of two LLCs.
    pub fn llc_distance(&self, a: usize, b: usize) -> u32 {
        let (na, nb) = (self.llc_node[a], self.llc_node[b]);
        self.node_distance[na]
            .get(nb)
            .copied()
            .unwrap_or(if na == nb {
                LOCAL_DISTANCE
            } else {
                REMOTE_DISTANCE
            })
    }

    /// The other LLCs, in the order a CPU of `llc` with nothing queued in its
    /// own steals from them: nearest NUMA node first, then round the ring
    /// from `llc` (so that the CCXs of a node do not all raid the same one).
    pub fn steal_order(&self, llc: usize) -> Vec<usize> {
        let n = self.llcs.len();
        let mut order: Vec<usize> = (1..n).map(|i| (llc + i) % n).collect();
        // Stable: ties keep the ring order.
        order.sort_by_key(|&other| self.llc_distance(llc, other));
        order
    }
}

impl fmt::Display for CcxTopology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} CPUs in {} LLC(s):", self.nr_cpus(), self.nr_llcs())?;
        for (llc, cpus) in self.llcs.iter().enumerate() {
            write!(f, " {llc}=[{}]", cpu_list(cpus))?;
        }
        if self.smt() {
            write!(f, ", SMT on ({} threads per core)", self.threads_per_core)?;
        } else {
            write!(f, ", SMT off")?;
        }
        let nodes = self.nodes();
        if nodes.len() > 1 {
            write!(f, ", NUMA nodes:")?;
            for node in nodes {
                let llcs: Vec<u32> = (0..self.llcs.len())
                    .filter(|&l| self.llc_node[l] == node)
                    .map(|l| l as u32)
                    .collect();
                write!(f, " {node}=[LLC {}]", cpu_list(&llcs))?;
            }
        }
        Ok(())
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
        let cores: Vec<Vec<u32>> = (0..96).map(|c| vec![c, c + 96]).collect();
        CcxTopology::new(llcs).unwrap().with_cores(&cores).unwrap()
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
        assert_eq!(
            topo.core_of(0),
            topo.core_of(96),
            "SMT siblings share a core"
        );
        assert_ne!(topo.core_of(0), topo.core_of(1));
        assert_eq!(topo.threads_per_core(), 2);
    }

    #[test]
    fn cores_are_checked_against_the_llcs() {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
        assert_ne!(topo.core_of(0), topo.core_of(1), "no SMT: a core per CPU");
        assert_eq!(topo.core_of(4), None);
        let err = topo.clone().with_cores(&[vec![1, 2]]).unwrap_err();
        assert!(
            err.to_string().contains("share a core but not an LLC"),
            "{err}"
        );
        assert!(
            topo.clone().with_cores(&[vec![3, 4]]).is_err(),
            "CPU 4 is in no LLC"
        );
        let smt = topo.with_cores(&[vec![0, 1], vec![2, 3]]).unwrap();
        assert_eq!(smt.core_of(0), smt.core_of(1));
        assert_ne!(smt.core_of(1), smt.core_of(2));
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

    /// The same socket in NPS4: 4 nodes of 3 CCXs (distance 10 local, 12
    /// to the other nodes of the socket, as Genoa's firmware reports).
    fn genoa_nps4() -> CcxTopology {
        let llc_node = (0..12).map(|ccx| ccx / 3).collect();
        let dist = (0..4)
            .map(|a| (0..4).map(|b| if a == b { 10 } else { 12 }).collect())
            .collect();
        genoa().with_numa(llc_node, dist).unwrap()
    }

    #[test]
    fn steals_from_the_own_numa_node_first() {
        let one_node = genoa();
        assert_eq!(one_node.nr_nodes(), 1);
        assert_eq!(
            one_node.steal_order(10),
            vec![11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        );
        let nps4 = genoa_nps4();
        assert_eq!(nps4.nr_nodes(), 4);
        assert!(nps4.same_node(3, 5) && !nps4.same_node(2, 3));
        assert_eq!(nps4.llc_distance(0, 11), 12);
        assert_eq!(nps4.steal_order(0), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(nps4.steal_order(1), vec![2, 0, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(nps4.steal_order(5), vec![3, 4, 6, 7, 8, 9, 10, 11, 0, 1, 2]);
        for llc in 0..12 {
            let mut order = nps4.steal_order(llc);
            assert_eq!(order.len(), 11);
            assert!(order.iter().take(2).all(|&o| nps4.same_node(llc, o)));
            order.push(llc);
            order.sort_unstable();
            assert_eq!(order, (0..12).collect::<Vec<_>>(), "every other LLC once");
        }
    }

    #[test]
    fn farther_nodes_come_after_nearer_ones() {
        // Two sockets' worth of distances: 0-1 near (12), 0-2 far (32).
        let dist = vec![vec![10, 12, 32], vec![12, 10, 32], vec![32, 32, 10]];
        let topo = CcxTopology::new(vec![vec![0], vec![1], vec![2], vec![3]])
            .unwrap()
            .with_numa(vec![0, 2, 1, 0], dist)
            .unwrap();
        assert_eq!(topo.steal_order(0), vec![3, 2, 1]);
        assert_eq!(topo.steal_order(1), vec![2, 3, 0]);
    }

    #[test]
    fn rejects_numa_maps_that_do_not_fit() {
        let topo = || CcxTopology::new(vec![vec![0], vec![1]]).unwrap();
        assert!(topo().with_numa(vec![0], vec![vec![10]]).is_err());
        assert!(topo().with_numa(vec![0, 1], vec![vec![10]]).is_err());
        assert!(topo()
            .with_numa(vec![0, 1], vec![vec![10, 20], vec![20, 10]])
            .is_ok());
    }

    #[test]
    fn displays_compact_cpu_lists() {
        let topo = CcxTopology::new(vec![vec![0, 1], vec![2, 3]]).unwrap();
        assert_eq!(
            topo.to_string(),
            "4 CPUs in 2 LLC(s): 0=[0-1] 1=[2-3], SMT off"
        );
        assert!(genoa()
            .to_string()
            .ends_with(" 11=[88-95,184-191], SMT on (2 threads per core)"));
        assert!(genoa_nps4()
            .to_string()
            .ends_with(", SMT on (2 threads per core), NUMA nodes: 0=[LLC 0-2] 1=[LLC 3-5] 2=[LLC 6-8] 3=[LLC 9-11]"));
        assert_eq!(cpu_list(&[8, 0, 1, 2, 5]), "0-2,5,8");
    }
}
