#!/bin/sh
# Demo run inside the VM (scripts/run): attach scx_storeland, show it
# scheduling a storage-server-like load, detach it.
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

SCX=/sys/kernel/sched_ext
ncpu=$(nproc)
args=$(cat /etc/storeland-args 2>/dev/null)
note "kernel $(uname -r), $ncpu CPUs, L3 domains: $(cat /sys/devices/system/cpu/cpu*/cache/index3/shared_cpu_list | sort -u | tr '\n' ' ')"
note "NVMe drives: $(ls /dev/nvme*n1 | tr '\n' ' ')"

# shellcheck disable=SC2086 # user options are words
/bin/scx_storeland --stats 2 $args 2>&1 | sed 's/^/scx_storeland| /' &
check "scheduler attached" wait_for_file_content $SCX/state enabled 60
note "sched_ext state: $(cat $SCX/state), ops: $(cat $SCX/root/ops 2>/dev/null)"

note "demo load: $ncpu CPU hogs + fio 4k randread qd1 on every drive for 8 s, then hackbench"
stress-ng --cpu "$ncpu" --timeout 12 >/dev/null 2>&1 &
hogs=$!
# The live view, one frame mid-load (scx_storeland top --once).
(sleep 4; /bin/scx_storeland top --once -i 2 --width 120 --height 40 | sed 's/^/top| /') &
topshot=$!
jobs=""
for d in /dev/nvme*n1; do jobs="$jobs --name=${d#/dev/} --filename=$d"; done
# shellcheck disable=SC2086
fio --ioengine=io_uring --direct=1 --rw=randread --bs=4k --iodepth=1 --time_based --runtime=8 \
    --group_reporting --output-format=terse --terse-version=3 $jobs |
    awk -F";" '{ p99 = $30; sub(/.*=/, "", p99); printf "# fio, all drives, under hogs: %d IOPS, completion latency p99 %s us\n", $8, p99 }'
wait "$hogs" "$topshot"
check "hackbench -g 2 -l 100" hackbench -g 2 -l 100
check "still attached" expect_eq "$(cat $SCX/state)" enabled

pid=$(pidof scx_storeland)
kill -INT "$pid"
check "detached on SIGINT" wait_for_file_content $SCX/state disabled 30
sleep 1
summary
