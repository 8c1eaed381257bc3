#!/bin/sh
# scx_storeland on a Genoa-shaped machine (scripts/test boots it with 48
# vCPUs: 12 L3 domains of 2 cores of 2 threads, one NUMA node, as Genoa's
# default NPS1 mode has): it reads that topology, spreads CPU hogs over the
# CCXs and whole cores as EEVDF does, keeps fio running next to hogs, and
# detaches cleanly. The 4-vCPU boots cannot show the spreading: with 2 L3s
# of one core each, hogs forked side by side already land on both.
. "${VM_TEST_DIR:-$(dirname "$0")}/lib.sh"

SCHED=${SCHED:-/bin/scx_storeland}
SCX=/sys/kernel/sched_ext
LOG=/tmp/storeland.log
guest_topology

# The L3 and the core of every CPU, as shell variables LLC_<cpu>, CORE_<cpu>.
cpu=0
while [ "$cpu" -lt "$ncpu" ]; do
    d=/sys/devices/system/cpu/cpu$cpu
    eval "LLC_$cpu=$(cat $d/cache/index3/id)"
    eval "CORE_$cpu=$(cat $d/cache/index3/id).$(cat $d/topology/core_id)"
    cpu=$((cpu + 1))
done
ncores=$(cat /sys/devices/system/cpu/cpu*/topology/core_cpus_list | sort -u | wc -l)

dmesg_mark
"$SCHED" --stats 1 >"$LOG" 2>&1 &
SCHED_PID=$!
check "state becomes enabled" wait_for_file_content $SCX/state enabled 60
check "log shows $ncpu CPUs in $nllc L3 domains" grep -q "topology: $ncpu CPUs in $nllc LLC" "$LOG"
check "log shows SMT on ($ncores cores of 2 threads)" grep -q 'topology: .*, SMT on (2 threads per core)' "$LOG"

# --- CPU hogs spread out ----------------------------------------------------
# The hogs stress-ng forks, as PIDs: the children of $PARENT.
children() {
    local st line
    for st in /proc/[0-9]*/stat; do
        read -r line <"$st" 2>/dev/null || continue
        set -- $line
        [ "$4" = "$PARENT" ] && echo "$1"
    done
}
# "state cpu" of PID $1: its scheduling state and the CPU it last ran on.
proc_state() {
    local line
    read -r line <"/proc/$1/stat" || return 1
    set -- $line
    echo "$3 ${39}"
}
# "cores llcs": how many distinct cores and L3s the hogs last ran on.
placement() {
    local p st cpus=""
    for p in $HOGS; do
        st=$(proc_state "$p") || continue
        cpus="$cpus ${st#* }"
    done
    echo "$(for c in $cpus; do eval echo "\$CORE_$c"; done | sort -u | wc -l)" \
        "$(for c in $cpus; do eval echo "\$LLC_$c"; done | sort -u | wc -l)"
}
# Start $1 hogs, let them settle, then sample where they run 7 times, a
# second apart, into /tmp/spread.$1 ("cores llcs" per line).
sample_hogs() {
    local n=0
    stress-ng --cpu "$1" --timeout 120 >/dev/null 2>&1 &
    PARENT=$!
    sleep 4
    HOGS=$(children)
    : >"/tmp/spread.$1"
    while [ "$n" -lt 7 ]; do
        placement >>"/tmp/spread.$1"
        sleep 1
        n=$((n + 1))
    done
    kill "$PARENT" 2>/dev/null
    wait "$PARENT" 2>/dev/null
    note "$1 hogs, distinct cores and L3s per sample: $(tr ' \n' '/ ' <"/tmp/spread.$1")"
}
# At least 5 of the 7 samples had $2 distinct cores and $3 distinct L3s: a
# sample can catch a hog that a passing task (the sampler itself) pushed
# next to another for a slice.
spread_in() {
    local good
    good=$(awk -v c="$2" -v l="$3" '$1 == c && $2 >= l { n++ } END { print n + 0 }' "$1")
    [ "$good" -ge 5 ] || { echo "only $good of 7 samples had $2 cores and $3 L3s: $(tr '\n' ' ' <"$1")"; return 1; }
}

check "the scheduler logs counters" wait_for_line "$LOG" 'counters: .*starvation_rescues=' 30
before=$(last_counters)
# Half as many hogs as L3s, forked side by side: the kernel's idle picker
# puts them on the idle cores nearest their parent, two to an L3. With one
# NUMA node each must end with an L3 and a core of its own, as under EEVDF
# (before the spread rule: 4-5 L3s for 6 hogs, at times two on one core).
half=$((nllc / 2))
sample_hogs "$half"
check "$half CPU hogs run in $half L3s, a core each" spread_in "/tmp/spread.$half" "$half" "$half"
sleep 1.5
after=$(last_counters)
spreads=$(counters_delta "$before" "$after" hog_spreads)
note "hog_spreads +$spreads, llc_steals +$(counters_delta "$before" "$after" llc_steals)"
check "the hogs were moved by the spread rule" positive "$spreads"
check "still attached after the hogs" still_enabled

# --- wake-ups stay in their CCX ----------------------------------------------
# A sleeping task on an idle thread of the last L3 is woken 10 times, not by
# an interrupt nor synchronously (SIGCONT from this shell, in another L3),
# each time from that thread, with spinning tasks on other threads there.
home_llc=$(eval echo "\$LLC_$((ncpu - 1))")
spin_cpus="" idle_threads="" other_cpus="" llc_cpus="" spin_cores=" "
cpu=0
while [ "$cpu" -lt "$ncpu" ]; do
    eval "l=\$LLC_$cpu c=\$CORE_$cpu"
    if [ "$l" != "$home_llc" ]; then
        other_cpus="$other_cpus${other_cpus:+,}$cpu"
    elif [ "${spin_cores#* $c }" != "$spin_cores" ]; then
        idle_threads="$idle_threads $cpu" llc_cpus="$llc_cpus${llc_cpus:+,}$cpu"
    else
        spin_cores="$spin_cores$c " spin_cpus="$spin_cpus $cpu" llc_cpus="$llc_cpus${llc_cpus:+,}$cpu"
    fi
    cpu=$((cpu + 1))
done
home=${idle_threads# }
home=${home%% *}
first_spin=${spin_cpus# }
first_spin=${first_spin%% *}
# Wait up to 5 s for PID $1 to be in state $2 (T stopped, S sleeping).
wait_state() {
    local n=0 st
    while [ "$n" -lt 50 ]; do
        st=$(proc_state "$1") || return 1
        [ "${st% *}" = "$2" ] && return 0
        sleep 0.1
        n=$((n + 1))
    done
    echo "PID $1 not in state $2 after 5 s: $st"
    return 1
}
# Wake a task 10 times from CPU $home, allowed the CPUs $1 while it sleeps,
# with a spinning task on each of the CPUs $2; the CPU of each wake-up goes
# to /tmp/woke, one per line.
wake_rounds() {
    local line spinners="" c sleeper n=0 st
    # This shell (a subshell of check) runs outside the L3, as do its children.
    read -r line </proc/self/stat
    set -- "$1" "$2" $line
    taskset -p -c "$other_cpus" "$3" >/dev/null || return 1
    for c in $2; do
        taskset -c "$c" sh -c 'while :; do :; done' &
        spinners="$spinners $!"
    done
    taskset -c "$home" sleep 1000 &
    sleeper=$!
    sleep 1
    : >/tmp/woke
    while [ "$n" -lt 10 ]; do
        # Back to its home thread (the SIGSTOP wakes it there), then freed.
        taskset -p -c "$home" "$sleeper" >/dev/null &&
            kill -STOP "$sleeper" && wait_state "$sleeper" T &&
            taskset -p -c "$1" "$sleeper" >/dev/null &&
            kill -CONT "$sleeper" && wait_state "$sleeper" S || break
        st=$(proc_state "$sleeper")
        echo "${st#* }" >>/tmp/woke
        n=$((n + 1))
    done
    kill $spinners "$sleeper" 2>/dev/null
    wait $spinners "$sleeper" 2>/dev/null
    [ "$n" -eq 10 ]
}
# At least 8 of the 10 wake-ups landed where shell test $1 (on $cpu) holds.
woke_where() {
    local good=0 cpu
    for cpu in $(cat /tmp/woke); do
        eval "$1" && good=$((good + 1))
    done
    echo "$2: $good of 10 (CPUs $(tr '\n' ' ' </tmp/woke))" | tee /tmp/woke.note
    [ "$good" -ge 8 ]
}
# A spinning task on one thread of each core there: no core of the L3 is
# wholly idle, every other L3 has two. The task must wake in its L3, on its
# own idle CPU or the other idle thread, as under EEVDF; the kernel's idle
# picker takes a whole idle core of another L3 first.
before=$(last_counters)
check "a task is woken 10 times next to a spinner on each core of its CCX" \
    wake_rounds "0-$((ncpu - 1))" "$spin_cpus"
check "it stays in its CCX, on idle threads of busy cores" \
    woke_where '[ "$(eval echo \$LLC_$cpu)" = "$home_llc" ]' "woke in L3 $home_llc"
note "$(cat /tmp/woke.note)"
sleep 1.5
kept_delta=$(counters_delta "$before" "$(last_counters)" half_core_wakeups)
check "those wake-ups are counted in half_core_wakeups (+$kept_delta)" positive "$kept_delta"
# One spinning task, on the other thread of the task's core, and the task
# allowed only its L3 (a database pinned to a CCX): it wakes on its own idle
# CPU, as under EEVDF, where its caches and completions are; the kernel's
# idle picker moves it to the whole idle core of the L3.
check "a task pinned to its CCX is woken 10 times next to a spinner on its core" \
    wake_rounds "$llc_cpus" "$first_spin"
check "it wakes on its own idle CPU" \
    woke_where '[ "$cpu" = "$home" ]' "woke on CPU $home"
note "$(cat /tmp/woke.note)"

# --- fio next to hogs ---------------------------------------------------------
# As many hogs as L3s, not one per CPU: single-threaded TCG runs the vCPUs
# in turn, up to 100 ms each, so with all 48 busy a task could wait about
# 5 s for its vCPU, the watchdog's timeout (with 192 busy vCPUs the kernel
# ejected the scheduler: "watchdog failed to check in for 5.260s").
engine=$(fio_engine)
check "fio ($engine qd1) on every drive with $nllc CPU hogs completes" fio_with_hogs "$engine" 4 "$nllc"
for d in /dev/nvme*n1; do
    check "fio ${d#/dev/} read IOPS > 0" fio_job_ok "${d#/dev/}"
done
check "still attached after fio with hogs" still_enabled

# --- detach -------------------------------------------------------------------
kill -INT "$SCHED_PID"
reap_scheduler 30
check "SIGINT exits 0" expect_eq "$SCHED_RC" 0
check "state is disabled after SIGINT" wait_for_file_content $SCX/state disabled 30
dmesg_clean "dmesg: no stall, BUG or WARNING"
[ "$VM_FAILED" -eq 0 ] || { note "scheduler log tail:"; tail -n 20 "$LOG" | sed 's/^/#   /'; }
summary
