# shellcheck shell=sh
# Guest-side test helpers, sourced by the VM guest scripts (busybox ash).
#   check NAME CMD [ARGS...]   run CMD; print "ok - NAME" or "not ok - NAME (details)"
#                              followed by its last output lines as "#" comments; returns CMD's status
#   expect_eq GOT WANT         succeed iff GOT = WANT, else say what differed (use with check)
#   wait_for_file_content FILE EXPECTED TIMEOUT_S
#                              poll until FILE's content is EXPECTED (at least one read)
#   dmesg_mark                 later dmesg_clean calls only look at newer kernel messages
#   dmesg_clean [NAME]         a check: no stall/BUG/WARNING/Oops/watchdog lines from
#                              sched_ext, and no kernel BUG/WARN()/Oops/lockup at all
#                              (VM_DMESG_IGNORE: extended regex of lines to ignore)
#   note TEXT                  print "# TEXT"
#   summary                    print "N passed, N failed"; non-zero if any failed
#   wait_for_line FILE PATTERN TIMEOUT_S
#                              poll (bounded) until FILE has a line matching PATTERN
# For the scheduler under test (the script sets SCHED_PID, LOG and SCX):
#   alive, still_enabled       the daemon runs / and sched_ext is enabled
#   reap_scheduler SECS        wait for the daemon to exit; sets SCHED_RC (124: killed)
#   last_counters              the last complete "counters:" line it logged, as "key=value ..."
#   counter LINE NAME          NAME's value in such a line
#   counters_delta BEFORE AFTER NAME
#                              how much NAME grew between two such lines
#   positive N                 a check: N is a number above 0
#   ship_report DIR            print a scripts/bench report as a base64 tarball between
#                              BENCH-OUT-BEGIN/END (scripts/vm/extract-report reads it)
# The guest:
#   guest_topology             set ncpu, llc_ranges (the L3 domains as sysfs lists them,
#                              "0-1 2-3 ...") and nllc, and note them
# Workloads:
#   fio_engine                 print io_uring where the guest allows it, else psync
#   fio_with_hogs ENGINE SECS [HOGS]
#                              fio 4k random reads at qd1 on every drive for SECS s next to
#                              HOGS CPU hogs (one per CPU by default); terse results in
#                              /tmp/fio.terse
#   fio_job_ok DRIVE           a check: fio_with_hogs read from DRIVE (nvme0n1, ...)
# Do not use 'set -e' in guest scripts: a failed check must not end the run.

VM_PASSED=0
VM_FAILED=0
VM_DMESG_SKIP=0

note() { echo "# $*"; }

check() {
    local name="$1" out rc last
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        VM_PASSED=$((VM_PASSED + 1))
        echo "ok - $name"
        [ -z "${VM_VERBOSE:-}" ] || [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'
    else
        VM_FAILED=$((VM_FAILED + 1))
        last=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)
        echo "not ok - $name (exit $rc${last:+: $last})"
        [ -z "$out" ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
    fi
    return "$rc"
}

expect_eq() {
    [ "$1" = "$2" ] && return 0
    echo "got '$1', want '$2'"
    return 1
}

# Centiseconds since boot: the deadline stays right however slow TCG is.
_vm_now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

wait_for_file_content() {
    local file="$1" want="$2" deadline got=""
    deadline=$(($(_vm_now_cs) + $(awk -v t="$3" 'BEGIN { printf "%d\n", t * 100 }')))
    while :; do
        if [ -e "$file" ]; then
            got=$(cat "$file" 2>/dev/null)
            [ "$got" = "$want" ] && return 0
        fi
        if [ "$(_vm_now_cs)" -ge "$deadline" ]; then
            if [ -e "$file" ]; then
                echo "$file is '$got', want '$want' (waited ${3}s)"
            else
                echo "$file does not exist (waited ${3}s)"
            fi
            return 1
        fi
        sleep 0.1
    done
}

dmesg_mark() { VM_DMESG_SKIP=$(dmesg | wc -l); }

_vm_dmesg_problems() {
    local bad
    bad=$(dmesg | tail -n +$((VM_DMESG_SKIP + 1)) | awk -v ign="${VM_DMESG_IGNORE:-}" '
        ign != "" && $0 ~ ign { next }
        tolower($0) ~ /sched_ext|scx/ && $0 ~ /[Ss]tall|BUG|WARNING|Oops|[Ww]atchdog/ { print; next }
        /BUG:|WARNING: CPU: [0-9]+ PID:|Oops|Kernel panic|soft lockup|hard LOCKUP|blocked for more than/ { print }')
    [ -z "$bad" ] && return 0
    printf '%s\n' "$bad" | head -n 20
    return 1
}

dmesg_clean() { check "${1:-dmesg clean}" _vm_dmesg_problems; }

summary() {
    echo "$VM_PASSED passed, $VM_FAILED failed"
    [ "$VM_FAILED" -eq 0 ]
}

wait_for_line() { # FILE PATTERN TIMEOUT_S
    local n=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        [ "$n" -le $(($3 * 10)) ] || { echo "no line matching '$2' in $1 after $3 s:"; tail -n 5 "$1"; return 1; }
        sleep 0.1
    done
}

alive() { kill -0 "$SCHED_PID" 2>/dev/null || { echo "scheduler exited:"; tail -n 5 "$LOG"; return 1; }; }
still_enabled() { expect_eq "$(cat "$SCX/state")" enabled && alive; }

# Reap the background scheduler within $1 seconds; sets SCHED_RC (124: it
# did not exit and was killed, after a SIGCONT in case it was stopped).
# Runs in the main shell: a check's subshell cannot wait.
reap_scheduler() {
    local n=0
    while kill -0 "$SCHED_PID" 2>/dev/null && [ "$n" -lt $(($1 * 10)) ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if kill -0 "$SCHED_PID" 2>/dev/null; then
        SCHED_RC=124
        kill -CONT "$SCHED_PID" 2>/dev/null
        kill -KILL "$SCHED_PID" 2>/dev/null
        wait "$SCHED_PID" 2>/dev/null
    else
        wait "$SCHED_PID"
        SCHED_RC=$?
    fi
}

guest_topology() {
    ncpu=$(nproc)
    llc_ranges=$(cat /sys/devices/system/cpu/cpu*/cache/index3/shared_cpu_list | sort -u -n | tr '\n' ' ')
    nllc=$(echo $llc_ranges | wc -w)
    note "kernel $(uname -r), $ncpu CPUs in $nllc L3 domains: $llc_ranges"
}

fio_engine() {
    if fio --enghelp 2>/dev/null | grep -qw io_uring &&
        [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ]; then
        echo io_uring
    else
        echo psync
    fi
}

fio_with_hogs() { # ENGINE SECS [HOGS]
    local jobs="" d rc hogs
    for d in /dev/nvme*n1; do jobs="$jobs --name=${d#/dev/} --filename=$d"; done
    stress-ng --cpu "${3:-$(nproc)}" --timeout $(($2 + 15)) >/dev/null 2>&1 &
    hogs=$!
    sleep 1
    # shellcheck disable=SC2086 # word splitting of $jobs is intended
    fio --output-format=terse --terse-version=3 --ioengine="$1" --direct=1 \
        --rw=randread --bs=4k --iodepth=1 --time_based --runtime="$2" $jobs >/tmp/fio.terse
    rc=$?
    kill "$hogs" 2>/dev/null
    wait "$hogs" 2>/dev/null
    return $rc
}

# terse v3: field 3 is the job name, field 8 the read IOPS.
fio_job_ok() { # DRIVE
    awk -F';' -v j="$1" '$3 == j { found = 1; iops = $8 }
        END { if (!found) { print "no fio result for " j; exit 1 }
              print j ": " iops " IOPS"; exit !(iops > 0) }' /tmp/fio.terse
}

# Complete lines only: starvation_rescues is the last key.
last_counters() { grep 'counters: .*starvation_rescues=' "$LOG" | tail -n 1 | sed 's/.*counters: //'; }
counter() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
counters_delta() { # BEFORE AFTER NAME
    echo $(($(counter "$2" "$3") - $(counter "$1" "$3")))
}
positive() { [ "$1" -gt 0 ] 2>/dev/null || { echo "$1 is not > 0"; return 1; }; }

ship_report() { # DIR
    (cd "$1" && tar -cf - results.json report.md ./*.svg logs | gzip -9) >/tmp/bench.tgz
    echo "BENCH-OUT-BEGIN $(wc -c </tmp/bench.tgz)"
    base64 /tmp/bench.tgz
    echo "BENCH-OUT-END"
}
