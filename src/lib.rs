//! scx_storeland's kernel-free core: the records shared with the BPF side,
//! the machine's CCX topology, the scheduling policy and the counters.
//!
//! Nothing here touches the kernel, so all of it is tested on any host. The
//! binary (`src/main.rs`) adds the edges: loading the BPF program, the ring
//! buffers and the operator contract. `bench` holds the benchmark harness's
//! parsers, statistics and report (binary `storeland-bench`).

pub mod bench;
pub mod counters;
pub mod hoststate;
pub mod intf;
pub mod policy;
pub mod preflight;
pub mod sim;
pub mod stats;
pub mod top;
pub mod topology;
