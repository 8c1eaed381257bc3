#!/usr/bin/env bash
# The benchmark's data safety on real block devices (loop devices over
# files in a temporary directory; root). With --allow-writes it must refuse,
# naming the device and what it found, every device that carries a
# filesystem, partition table or swap signature, is mounted, or is open in
# another process, and leave its bytes unchanged; read-only runs must not
# change a byte either; a blank, unused device is accepted and written only
# outside its first and last MiB. Every loop device is detached and every
# mount undone on every path.
#
# Usage: tests/bench-safety.sh [STORELAND_BENCH]   (default target/release/storeland-bench)
set -euo pipefail

bench=$(realpath "${1:-target/release/storeland-bench}")
[ -x "$bench" ] || { echo "bench-safety: error: $bench not built" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "bench-safety: error: needs root (loop devices)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-safety.XXXXXX")
loops=() mounts=() holders=()
cleanup() {
    local m l p
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || true; done
    for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loop device over a new 64 MiB file of zeros, prepared by "$@" (with
# the image path as an argument); sets $dev.
new_loop() {
    img="$tmp/$1.img"
    truncate -s 64M "$img"
    shift
    [ $# -eq 0 ] || "$@"
    if ! dev=$(losetup -f --show "$img" 2>&1); then
        echo "bench-safety: skipped: this host cannot create loop devices ($dev)"
        exit 0
    fi
    loops+=("$dev")
}

# put FILE OFFSET BYTES: write BYTES (printf %b escapes) at OFFSET.
put() { printf '%b' "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

passed=0 failed=0
result() { # NAME STATUS DETAIL
    if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "ok - $1"; else
        failed=$((failed + 1)); echo "not ok - $1${3:+ ($3)}"; fi
}
sum() { sha256sum "$1" | cut -d' ' -f1; }

# expect_refusal NAME DEVICE PATTERN [extra bench args...]: a real run
# with --allow-writes exits 2 before anything runs, with one error line
# naming the device and matching PATTERN; the device's bytes are unchanged.
expect_refusal() {
    local name=$1 d=$2 pat=$3 before after out rc err
    shift 3
    before=$(sum "$d")
    rc=0
    out=$("$bench" --allow-writes --workloads mixed --schedulers eevdf --quick --reps 1 --runtime 1 \
        --devices "$d" --out "$tmp/out-$RANDOM" "$@" 2>&1) || rc=$?
    after=$(sum "$d")
    err=$(grep '^error: ' <<<"$out" || true)
    if [ "$rc" != 2 ]; then
        result "$name" 1 "exit $rc, want 2: $(tail -n 1 <<<"$out")"
    elif [ "$(wc -l <<<"$err")" != 1 ] || ! grep -q "^error: refusing to write to $d: .*$pat" <<<"$err"; then
        result "$name" 1 "message: $err"
    elif [ "$before" != "$after" ]; then
        result "$name" 1 "the device's bytes changed"
    elif grep -q '^\[ *1/' <<<"$out"; then
        result "$name" 1 "a run started"
    else
        result "$name: ${err#error: }" 0
    fi
}

# ext4, then the same checked by a dry run, then mounted.
new_loop ext4 mkfs.ext4 -q -F "$tmp/ext4.img"
ext4=$dev
expect_refusal "ext4 filesystem refused" "$ext4" "ext2/3/4 filesystem"
expect_refusal "ext4 filesystem refused in a dry run too" "$ext4" "ext2/3/4 filesystem" --dry-run
before=$(sum "$ext4")
rc=0
out=$("$bench" --workloads qd1,qd1-hogs --schedulers eevdf --quick --reps 1 --runtime 1 \
    --devices "$ext4" --out "$tmp/ro" 2>&1) || rc=$?
if [ "$rc" = 0 ] && [ "$(sum "$ext4")" = "$before" ] && grep -q '"status": "ok"' "$tmp/ro/results.json"; then
    result "read-only workloads on it run and change no byte" 0
else
    result "read-only workloads on it run and change no byte" 1 "exit $rc: $(tail -n 1 <<<"$out")"
fi
mkdir -p "$tmp/mnt"
if mount -o ro "$ext4" "$tmp/mnt" 2>/dev/null; then
    mounts+=("$tmp/mnt")
    expect_refusal "mounted filesystem refused" "$ext4" "mounted at $tmp/mnt"
    umount "$tmp/mnt" && mounts=()
else
    echo "# cannot mount ext4 here: mounted case skipped"
fi

new_loop mbr put "$tmp/mbr.img" 510 '\0125\0252'
expect_refusal "MBR partition table refused" "$dev" "MBR partition table"
new_loop gpt put "$tmp/gpt.img" 512 'EFI PART'
expect_refusal "GPT partition table refused" "$dev" "GPT partition table"
new_loop swap mkswap -q "$tmp/swap.img"
expect_refusal "swap signature refused" "$dev" "swap area"
new_loop junk put "$tmp/junk.img" 4096 'not blank'
expect_refusal "unrecognised data refused" "$dev" "unrecognised data in its first MiB"

# Blank but held open by another process.
new_loop held
# shellcheck disable=SC2217 # the redirection is the point: it holds the device open
sleep 600 <"$dev" &
holders+=("$!")
expect_refusal "a device open in another process is refused" "$dev" "open by pid $! (sleep)"
kill "$!" 2>/dev/null || true
wait "$!" 2>/dev/null || true
holders=()

# Blank and unused: accepted; the mixed run writes, but never the guard MiB.
new_loop blank
blank=$dev
out=$("$bench" --allow-writes --workloads mixed --schedulers eevdf --quick --reps 1 --runtime 1 \
    --devices "$blank" --out "$tmp/w" 2>&1) && rc=0 || rc=$?
head_tail_zero() {
    cmp -s -n 1048576 "$1" /dev/zero &&
        tail -c 1048576 "$1" | cmp -s -n 1048576 - /dev/zero
}
if [ "$rc" = 0 ] && grep -q "safety: $blank is blank and unused" <<<"$out" &&
    grep -q '"status": "ok"' "$tmp/w/results.json" && grep -q 'rwmixread' "$tmp/w/results.json"; then
    result "a blank, unused device is accepted and the mixed workload writes to it" 0
else
    result "a blank, unused device is accepted and the mixed workload writes to it" 1 "exit $rc: $(tail -n 1 <<<"$out")"
fi
if head_tail_zero "$blank" && ! cmp -s -n 67108864 "$blank" /dev/zero; then
    result "the writes left its first and last MiB blank" 0
else
    result "the writes left its first and last MiB blank" 1
fi
out=$("$bench" --allow-writes --dry-run --workloads mixed --schedulers eevdf --devices "$blank" 2>&1) && rc=0 || rc=$?
[ "$rc" = 0 ] && grep -q "is blank and unused" <<<"$out"
result "after the writes it still passes the check" $?

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
