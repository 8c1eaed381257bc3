#!/bin/sh
# The benchmark harness inside the VM (scripts/test, "VM bench" step):
# scripts/bench --quick compares EEVDF and scx_storeland on the emulated
# NVMe drives and writes the full report; Ctrl-C in the middle of a run
# restores the default scheduler. The report leaves the guest on the
# console: a gzip'ed tar, base64, between BENCH-OUT-BEGIN/END lines, which
# tests/bench-vm-check.sh extracts and checks on the host.
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

BENCH=${BENCH:-/opt/storeland/scripts/bench}
SCX=/sys/kernel/sched_ext
OUT=/tmp/bench
note "kernel $(uname -r), $(nproc) CPUs, drives: $(echo /dev/nvme*n1)"
dmesg_mark

check "scripts/bench --help" sh -c "$BENCH --help | grep -q -- --allow-writes"
check "bad input: one line, exit 2" sh -c "
    out=\$($BENCH --reps 0 2>&1); rc=\$?
    [ \$rc = 2 ] && [ \$(printf '%s\n' \"\$out\" | wc -l) = 1 ] || { echo \"rc \$rc: \$out\"; exit 1; }"
check "--dry-run plans both schedulers and every drive" sh -c "
    $BENCH --quick --dry-run --schedulers eevdf,storeland 2>&1 | tee /tmp/dry.txt >/dev/null
    grep -q 'interleaved' /tmp/dry.txt && grep -q 'estimated time' /tmp/dry.txt &&
    grep -q 'EEVDF → scx_storeland' /tmp/dry.txt && grep -q 'devices: /dev/nvme0n1' /tmp/dry.txt"
check "--dry-run wrote nothing" sh -c "! ls -d storeland-bench-* /tmp/storeland-bench-* 2>/dev/null"
# The emulated drives read as zeros and nothing uses them: writes allowed.
check "--allow-writes --dry-run: the blank drives pass the safety check" sh -c "
    $BENCH --dry-run --allow-writes --workloads mixed --schedulers eevdf 2>&1 | grep -q 'is blank and unused'"

# --- the quick comparison ------------------------------------------------
note "scripts/bench --quick --schedulers eevdf,storeland --out $OUT"
start=$(awk '{ print int($1) }' /proc/uptime)
{
    "$BENCH" --quick --schedulers eevdf,storeland --out "$OUT"
    echo $? >/tmp/bench.rc
} 2>&1 | sed 's/^/bench| /'
note "bench took $(($(awk '{ print int($1) }' /proc/uptime) - start)) s of VM time"
check "scripts/bench --quick exits 0" expect_eq "$(cat /tmp/bench.rc)" 0
runs_line() { grep -E '^[0-9]+ runs: ' "$OUT/report.md"; }
check "results.json, report.md and the plots exist" sh -c "
    for f in results.json report.md latency-qd1-hogs.svg iops.svg throughput.svg messaging.svg; do
        [ -s $OUT/\$f ] || { echo \"missing \$f\"; exit 1; }
    done"
check "the report compares EEVDF and scx_storeland" \
    grep -q '| workload | metric | EEVDF | scx_storeland | scx_storeland ×EEVDF |' "$OUT/report.md"
check "every run succeeded (none ejected)" sh -c "runs_line() { grep -E '^[0-9]+ runs: ' $OUT/report.md; }
    runs_line | grep -q ', 0 failed, 0 interrupted' || { runs_line; grep -A8 '^| # |' $OUT/report.md; exit 1; }"
check "results.json says complete" grep -q '"status": "complete"' "$OUT/results.json"
check "EEVDF is back after the run" wait_for_file_content $SCX/state disabled 30
note "$(runs_line)"

# --- Ctrl-C in the middle of a run ----------------------------------------
"$BENCH" --schedulers storeland --workloads qd1 --reps 1 --runtime 60 --out /tmp/int >/tmp/int.log 2>&1 &
pid=$!
check "interrupt test: scx_storeland attached" wait_for_file_content $SCX/state enabled 120
sleep 3
kill -INT "$pid"
wait "$pid"
irc=$?
check "SIGINT: exit 130" expect_eq "$irc" 130
check "SIGINT: the default scheduler is restored" wait_for_file_content $SCX/state disabled 30
check "SIGINT: partial results say interrupted" grep -q '"status": "interrupted"' /tmp/int/results.json
check "SIGINT: no process left behind" sh -c "! pidof fio scx_storeland stress-ng"
[ "$VM_FAILED" -eq 0 ] || { note "interrupt test log:"; tail -n 15 /tmp/int.log | sed 's/^/#   /'; }

dmesg_clean "dmesg: no stall, BUG or WARNING"

# --- ship the report to the host ------------------------------------------
ship_report "$OUT"
summary
