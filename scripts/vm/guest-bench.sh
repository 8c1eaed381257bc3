#!/bin/sh
# Guest side of scripts/vm/bench: run scripts/bench with the arguments in
# /opt/storeland/bench.args (one per line) and print the report as a
# base64 tarball between BENCH-OUT-BEGIN/END for the host.
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

OUT=/tmp/bench
note "kernel $(uname -r), $(nproc) CPUs, drives: $(echo /dev/nvme*n1)"
set --
while IFS= read -r a; do set -- "$@" "$a"; done </opt/storeland/bench.args
note "scripts/bench $* --out $OUT"
/opt/storeland/scripts/bench "$@" --out "$OUT" 2>&1 | sed 's/^/bench| /'
check "the report was written" test -s "$OUT/report.md"
ship_report "$OUT"
summary
