#!/usr/bin/env bash
# Host-side check of dist/scx_storeland.service: systemd-analyze verify
# accepts it (with ExecStart pointed at the built binary), and it encodes the
# operator contract: restart on failure with a start limit, never after a
# usage error (2), an unsupported kernel (3) or sysrq-S (4); stop = SIGINT.
# Usage: tests/service/verify-unit.sh [BINARY] (default target/release/scx_storeland)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
unit=$repo/dist/scx_storeland.service
bin=$(realpath "${1:-$repo/target/release/scx_storeland}")
fail() { echo "verify-unit: FAIL: $*" >&2; exit 1; }

[ -x "$bin" ] || fail "no binary at $bin (build first)"
grep -q '^ExecStart=/usr/local/bin/scx_storeland ' "$unit" || fail "ExecStart is not /usr/local/bin/scx_storeland"
setting() { sed -n "s/^$1=//p" "$unit"; }
[ "$(setting Restart)" = on-failure ] || fail "Restart is not on-failure"
[ "$(setting KillSignal)" = SIGINT ] || fail "KillSignal is not SIGINT"
[ -n "$(setting StartLimitBurst)" ] && [ -n "$(setting StartLimitIntervalSec)" ] || fail "no start limit"
for code in 2 3 4; do
    setting RestartPreventExitStatus | tr ' ' '\n' | grep -qx "$code" || fail "RestartPreventExitStatus lacks $code"
done
# The codes the unit names are the ones the binary documents.
help=$("$bin" --help | tr -s ' \n' ' ')
for doc in "2 usage error" "3 this kernel cannot run sched_ext" "4 the operator disabled sched_ext with sysrq-S"; do
    grep -qF "$doc" <<<"$help" || fail "--help does not say '$doc'"
done

if command -v systemd-analyze >/dev/null; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    sed "s|^ExecStart=/usr/local/bin/scx_storeland|ExecStart=$bin|" "$unit" >"$tmp/scx_storeland.service"
    # Only messages about our unit count (the host's own units may warn).
    out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify ./scx_storeland.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    if grep -i 'scx_storeland' <<<"$out"; then fail "systemd-analyze verify complained"; fi
    echo "verify-unit: ok (systemd-analyze verify, restart policy, exit codes)"
else
    echo "verify-unit: ok (restart policy, exit codes; systemd-analyze not installed, verify skipped)"
fi
