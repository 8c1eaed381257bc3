#!/bin/sh
# End-to-end test of scx_storeland in a real sched_ext kernel (run inside the
# VM by scripts/vm/test): attach, schedule real workloads through user space,
# detach on SIGINT, fall back on SIGKILL, leave the kernel log clean.
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

SCHED=${SCHED:-/bin/scx_storeland}
SCX=/sys/kernel/sched_ext
LOG=/tmp/storeland.log
ncpu=$(nproc)
note "kernel $(uname -r), $ncpu CPUs"

# Start the scheduler in the background, logging counters every second.
start_scheduler() {
    "$SCHED" --stats 1 "$@" >"$LOG" 2>&1 &
    SCHED_PID=$!
}

# The last "counters:" line the scheduler logged, as "key=value ..." words.
last_counters() { grep 'counters: ' "$LOG" | tail -n 1 | sed 's/.*counters: //'; }
counter() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# Block until the scheduler logs a counters line newer than the one given.
next_counters() {
    local before="$1" n=0
    while [ "$n" -lt 100 ]; do
        [ "$(grep -c 'counters: ' "$LOG")" -gt "$before" ] && return 0
        sleep 0.1
        n=$((n + 1))
    done
    echo "no new counters line in 10 s"
    return 1
}

alive() { kill -0 "$SCHED_PID" 2>/dev/null || { echo "scheduler exited:"; tail -n 5 "$LOG"; return 1; }; }
still_enabled() { expect_eq "$(cat $SCX/state)" enabled && alive; }
ops_is_storeland() { case "$(cat $SCX/root/ops)" in storeland*) return 0 ;; esac; echo "root/ops is '$(cat $SCX/root/ops)'"; return 1; }

# Reap the background scheduler within $1 seconds; sets SCHED_RC (124 if it
# did not exit). Runs in the main shell: a check's subshell cannot wait.
reap_scheduler() {
    local n=0
    while kill -0 "$SCHED_PID" 2>/dev/null && [ "$n" -lt $(($1 * 10)) ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if kill -0 "$SCHED_PID" 2>/dev/null; then
        SCHED_RC=124
        kill -KILL "$SCHED_PID" 2>/dev/null
        wait "$SCHED_PID" 2>/dev/null
    else
        wait "$SCHED_PID"
        SCHED_RC=$?
    fi
}

dmesg_mark
check "sched_ext starts disabled" wait_for_file_content $SCX/state disabled 0
seq0=$(cat $SCX/enable_seq)

# --- attach -----------------------------------------------------------------
start_scheduler
check "state becomes enabled" wait_for_file_content $SCX/state enabled 60
check "root/ops names storeland" ops_is_storeland
check "enable_seq counted the attach" expect_eq "$(cat $SCX/enable_seq)" $((seq0 + 1))
check "log has the version banner" grep -q 'scx_storeland .* starting' "$LOG"
check "log shows both L3 domains" grep -q 'topology: .* in 2 LLC' "$LOG"

# A second instance must refuse, name the running one and leave it alone.
second_refuses() {
    local out rc
    out=$("$SCHED" 2>&1)
    rc=$?
    printf '%s\n' "$out" | tail -n 1
    [ "$rc" = 1 ] && printf '%s\n' "$out" | grep -q 'another sched_ext scheduler is running (storeland'
}
check "a second instance refuses (exit 1, names storeland)" second_refuses
check "the first instance is still attached" still_enabled

# --- workloads while attached -----------------------------------------------
check "hackbench -g 4 -l 100 completes" hackbench -g 4 -l 100
check "stress-ng --cpu $ncpu completes" stress-ng --cpu "$ncpu" --timeout 4
check "still attached after hackbench and stress-ng" still_enabled

engine=psync
if fio --enghelp 2>/dev/null | grep -qw io_uring &&
    [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ]; then
    engine=io_uring
fi
# fio 4k random reads on every drive at qd1 while a CPU hog runs on every CPU.
fio_with_hogs() {
    local jobs="" d rc
    for d in /dev/nvme*n1; do jobs="$jobs --name=${d#/dev/} --filename=$d"; done
    stress-ng --cpu "$ncpu" --timeout 20 >/dev/null 2>&1 &
    hogs=$!
    sleep 1
    # shellcheck disable=SC2086 # word splitting of $jobs is intended
    fio --output-format=terse --terse-version=3 --ioengine="$engine" --direct=1 \
        --rw=randread --bs=4k --iodepth=1 --time_based --runtime=5 $jobs >/tmp/fio.terse
    rc=$?
    kill "$hogs" 2>/dev/null
    wait "$hogs" 2>/dev/null
    return $rc
}
fio_job_ok() {
    awk -F';' -v j="$1" '$3 == j { found = 1; iops = $8 }
        END { if (!found) { print "no fio result for " j; exit 1 }
              print j ": " iops " IOPS"; exit !(iops > 0) }' /tmp/fio.terse
}
before_lines=$(grep -c 'counters: ' "$LOG")
before=$(last_counters)
check "fio ($engine qd1) on every drive with $ncpu CPU hogs completes" fio_with_hogs
for d in /dev/nvme*n1; do
    check "fio ${d#/dev/} read IOPS > 0" fio_job_ok "${d#/dev/}"
done
check "scheduler logged counters after the run" next_counters "$before_lines"
after=$(last_counters)
check "still attached after fio with hogs" still_enabled

delta() { echo $(($(counter "$after" "$1") - $(counter "$before" "$1"))); }
user_delta=$(delta user_dispatches)
fast_delta=$(delta fastpath_dispatches)
note "during fio+hogs: user_dispatches +$user_delta fastpath_dispatches +$fast_delta congestion_fallbacks +$(delta congestion_fallbacks) stale_dropped +$(delta stale_dropped)"
positive() { [ "$1" -gt 0 ] 2>/dev/null || { echo "$1 is not > 0"; return 1; }; }
check "tasks went through user space under load" positive "$user_delta"
check "the fast path placed tasks too" positive "$fast_delta"
note "during fio+hogs: fastpath_latcrit +$(delta fastpath_latcrit) preemptions +$(delta preemptions) fastpath_requeue +$(delta fastpath_requeue)"
check "I/O wake-ups preempted batch work" positive "$(delta preemptions)"
check "per-class wake-to-run latency is logged" grep -q 'wake-to-run: latency_critical n=' "$LOG"

# Affinity in the real kernel: a task pinned to one CPU never runs elsewhere,
# next to unpinned hogs on every CPU (the kernel would eject us otherwise).
pinned_stays() {
    local pid n=0 cpu bad=0
    taskset -c 1 sh -c 'while :; do :; done' &
    pid=$!
    stress-ng --cpu "$ncpu" --timeout 4 >/dev/null 2>&1 &
    while [ "$n" -lt 30 ]; do
        cpu=$(awk '{ print $39 }' /proc/$pid/stat)
        [ "$cpu" = 1 ] || bad=$((bad + 1))
        sleep 0.1
        n=$((n + 1))
    done
    kill "$pid"
    wait 2>/dev/null
    [ "$bad" = 0 ] || { echo "$bad of 30 samples off CPU 1"; return 1; }
}
check "a task pinned to CPU 1 stays there among hogs" pinned_stays
check "still attached after the affinity check" still_enabled

# --- CPU hotplug: the scheduler restarts itself with the new topology ------
restarts() { grep -c 'restarting at the kernel' "$LOG"; }
wait_restarts() {
    local n=0
    while [ "$(restarts)" -lt "$1" ] && [ "$n" -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
    expect_eq "$(restarts)" "$1"
}
last_cpu=$((ncpu - 1))
if [ -w /sys/devices/system/cpu/cpu$last_cpu/online ]; then
    echo 0 >/sys/devices/system/cpu/cpu$last_cpu/online
    check "CPU $last_cpu offline: the scheduler restarts in place" wait_restarts 1
    check "attached again without CPU $last_cpu" wait_for_file_content $SCX/state enabled 60
    check "the new topology lacks CPU $last_cpu" sh -c "grep 'topology: ' $LOG | tail -n 1 | grep -q '$((ncpu - 1)) CPUs'"
    echo 1 >/sys/devices/system/cpu/cpu$last_cpu/online
    check "CPU $last_cpu online: the scheduler restarts again" wait_restarts 2
    check "attached again with all CPUs" wait_for_file_content $SCX/state enabled 60
    check "hackbench after the hotplug restarts" hackbench -g 2 -l 50
    check "still the same process" alive
else
    note "CPU hotplug not available in this VM: skipped"
fi

# --- SIGINT: clean detach ---------------------------------------------------
kill -INT "$SCHED_PID"
reap_scheduler 30
check "SIGINT exits 0" expect_eq "$SCHED_RC" 0
check "state is disabled after SIGINT" wait_for_file_content $SCX/state disabled 30
check "log reports the kernel's exit reason" grep -q 'EXIT: unregistered from user space' "$LOG"
check "log has final counters" grep -q 'final counters: user_dispatches=' "$LOG"
note "$(grep "final counters" "$LOG" | tail -n 1 | sed "s/.*final counters: //")"

# --- SIGKILL: the kernel falls back on its own -----------------------------
start_scheduler
check "re-attach after a clean exit" wait_for_file_content $SCX/state enabled 60
check "hackbench while attached again" hackbench -g 2 -l 50
kill -KILL "$SCHED_PID"
reap_scheduler 10
check "SIGKILL: the kernel falls back to its default scheduler" wait_for_file_content $SCX/state disabled 30
check "the machine still schedules after the fallback" hackbench -g 2 -l 50
check "dmesg names the unregistration" sh -c "dmesg | grep -q 'sched_ext: BPF scheduler \"storeland.*disabled (unregistered from user space)'"

dmesg_clean "dmesg: no stall, BUG or WARNING"
[ "$VM_FAILED" -eq 0 ] || { note "scheduler log tail:"; tail -n 30 "$LOG" | sed 's/^/#   /'; }
summary
