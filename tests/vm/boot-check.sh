#!/bin/sh
# Proves the VM test infrastructure: a sched_ext kernel, a Genoa-like topology
# with two L3 domains, the NVMe drives, and the guest tools (fio, hackbench,
# stress-ng). Run: scripts/vm/build-initramfs X.cpio.zst --guest-script tests/vm/boot-check.sh
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

ncpu=$(nproc)
note "kernel $(uname -r), $ncpu CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"

check "sched_ext state file exists" test -f /sys/kernel/sched_ext/state
check "sched_ext state is disabled" wait_for_file_content /sys/kernel/sched_ext/state disabled 0
check "kernel config shipped for libbpf" test -s "/boot/config-$(uname -r)"

# Two dies = two L3 domains: the first half and the second half of the CPUs.
cpu_range() { if [ "$1" -eq "$2" ]; then echo "$1"; else echo "$1-$2"; fi; }
l3_domains() {
    for c in /sys/devices/system/cpu/cpu[0-9]*; do
        [ "$(cat "$c/cache/index3/level" 2>/dev/null)" = 3 ] || { echo "no L3 at $c/cache/index3"; return; }
        cat "$c/cache/index3/shared_cpu_list"
    done | sort -u | tr '\n' ' '
}
half=$((ncpu / 2))
check "2 L3 domains" expect_eq "$(l3_domains)" "$(cpu_range 0 $((half - 1))) $(cpu_range "$half" $((ncpu - 1))) "

drives=${VM_DRIVES:-4}
check "$drives NVMe namespaces" expect_eq "$(ls /dev/nvme*n1 2>/dev/null | wc -l)" "$drives"

# fio 4k random reads on all drives at once, one job per drive.
engine=psync
if fio --enghelp 2>/dev/null | grep -qw io_uring &&
    [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ]; then
    engine=io_uring
elif fio --enghelp 2>/dev/null | grep -qw libaio; then
    engine=libaio
fi
run_fio() {
    local jobs="" d
    for d in /dev/nvme*n1; do jobs="$jobs --name=${d#/dev/} --filename=$d"; done
    # shellcheck disable=SC2086 # word splitting of $jobs is intended
    fio --output-format=terse --terse-version=3 --ioengine="$engine" --direct=1 \
        --rw=randread --bs=4k --iodepth=16 --time_based --runtime=3 $jobs >/tmp/fio.terse
}
check "fio 4k randread ($engine) on all drives" run_fio
for d in /dev/nvme*n1; do
    check "fio ${d#/dev/} read IOPS > 0" fio_job_ok "${d#/dev/}"
done

check "hackbench -g 2 -l 200" hackbench -g 2 -l 200
check "stress-ng --cpu $ncpu -t 3" stress-ng --cpu "$ncpu" -t 3
dmesg_clean
summary
