#!/usr/bin/env bash
# Host side of the VM bench test: extract the report the guest printed on
# the console (tests/vm/bench.sh) into DIR and check it: results.json parses
# (storeland-bench renders the same report.md from it), the report compares
# EEVDF with scx_storeland, and the plots are SVG.
#
# Usage: tests/bench-vm-check.sh CONSOLE_LOG DIR [STORELAND_BENCH]
set -euo pipefail

log=${1:?console log}
dir=${2:?output dir}
bench=${3:-target/release/storeland-bench}

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $1"; }
notok() { failed=$((failed + 1)); echo "not ok - $1${2:+ ($2)}"; }
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "$(tail -n 1 <<<"$out")"; fi
}

if ! "$(dirname "$0")/../scripts/vm/extract-report" "$log" "$dir"; then
    notok "the guest's report reached the host" "no BENCH-OUT block in $log"
    echo "$passed passed, $failed failed"
    exit 1
fi
ok "the guest's report reached the host ($dir)"

has_svg() { for f in "$@"; do head -c 4 "$f" | grep -q '<svg' || { echo "$f is not SVG"; return 1; }; done; }
check "results.json, report.md and plots are there" \
    test -s "$dir/results.json" -a -s "$dir/report.md" -a -s "$dir/latency-qd1-hogs.svg" -a -s "$dir/iops.svg" -a -s "$dir/throughput.svg"
check "the plots are SVG" has_svg "$dir"/*.svg
check "results.json parses and renders the same report" sh -c "
    '$bench' --report-from '$dir' --out '$dir/regen' >/dev/null 2>&1 &&
    cmp '$dir/report.md' '$dir/regen/report.md' && cmp '$dir/iops.svg' '$dir/regen/iops.svg'"
rm -rf "$dir/regen"
# The same file twice: each repetition paired with EEVDF's, the two copies alike.
check "--pool pairs every repetition with EEVDF's" sh -c "
    '$bench' --pool '$dir,$dir' >'$dir/pool.md' &&
    grep -Eq '^\| qd1 \| IOPS \| scx_storeland \| ([0-9.]+) \| \1 \| ' '$dir/pool.md'"
rm -f "$dir/pool.md"
check "the main table has EEVDF and scx_storeland" \
    grep -q '^| workload | metric | EEVDF | scx_storeland | scx_storeland ×EEVDF |' "$dir/report.md"
check "both schedulers have successful runs of every workload" sh -c "
    for w in qd1 qd1-hogs qd32 qd32-hogs messaging mixed; do
        grep -q \"^| \$w | \" '$dir/report.md' || { echo \"no row for \$w\"; exit 1; }
    done
    ! grep -E '^\\| (qd|messaging|mixed)[^|]*\\|[^|]*\\| – \\|' '$dir/report.md'"
# A main-table row of WORKLOAD and METRIC with a value in every column.
has_row() {
    local line
    line=$(grep -F "| $1 | $2 " "$dir/report.md" | head -n 1)
    [ -n "$line" ] || { echo "no row for $1, $2"; return 1; }
    ! grep -qF '| – |' <<<"$line" || { echo "a value is missing: $line"; return 1; }
}
check "the hogs' CPU held is measured" has_row qd1-hogs 'hog CPUs held'
check "the hogs' work per CPU-second is measured" has_row qd1-hogs 'hog work per CPU-second'
check "the hogs' time in the kernel is measured" has_row qd1-hogs 'hog time in the kernel'
check "the CPU time per I/O is measured without hogs" has_row qd1 'CPU time per I/O'

echo
echo "main table of $dir/report.md:"
sed -n '/^## Main results/,/^## Runs/p' "$dir/report.md" | grep '^|'
grep -E '^[0-9]+ runs: ' "$dir/report.md" || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
