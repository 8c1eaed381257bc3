// Compiles the BPF side (src/bpf/main.bpf.c) and generates two Rust files in
// OUT_DIR: the libbpf-rs skeleton and the bindgen'd shared structs of intf.h.
fn main() {
    scx_cargo::BpfBuilder::new()
        .expect("BPF build setup failed (is clang >= 18 installed? set BPF_CLANG=clang-19)")
        .enable_intf("src/bpf/intf.h", "bpf_intf.rs")
        .enable_skel("src/bpf/main.bpf.c", "bpf")
        .build()
        .expect("BPF build failed");
}
