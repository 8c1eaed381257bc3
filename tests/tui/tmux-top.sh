#!/usr/bin/env bash
# `scx_storeland top` driven in tmux on the host, as a person would use it:
# it draws, the keys work, `q` quits, and the terminal comes back intact
# after q, SIGTERM and a panic; tiny terminals and a scheduler that is not
# running are handled. No scheduler needed: it replays a recording from the
# VM test (tests/data/vm-recording.jsonl) and watches a socket nobody serves.
#
# Usage: tests/tui/tmux-top.sh [BINARY]   (default target/release/scx_storeland)
# Every wait polls the screen with a bound; nothing depends on timing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=$(realpath "${1:-$repo/target/release/scx_storeland}")
rec=$repo/tests/data/vm-recording.jsonl
[ -x "$bin" ] || { echo "tmux-top: $bin not built" >&2; exit 2; }
command -v tmux >/dev/null || { echo "tmux-top: tmux not installed (scripts/install-deps)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tmux-top.XXXXXX")
server="storeland-tui-$$"
tm() { tmux -L "$server" -f /dev/null "$@"; }
trap 'tm kill-server 2>/dev/null || true; rm -rf "$work"' EXIT

passed=0 failed=0
session=""
screen() { tm capture-pane -p -t "$session"; }
# Poll the screen until it matches (or, with !, stops matching) PATTERN; bounded.
wait_screen() {
    local neg=0 i=0
    [ "$1" = "!" ] && { neg=1; shift; }
    while :; do
        if screen | grep -q -- "$1"; then [ $neg = 0 ] && return 0; else [ $neg = 1 ] && return 0; fi
        i=$((i + 1))
        [ $i -le $(($2 * 10)) ] || return 1
        sleep 0.1
    done
}
check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "not ok - $name"
        echo "# screen of $session:"
        screen 2>/dev/null | sed 's/^/#   /' || true
    fi
}

# Run top in a fresh tmux session of COLSxROWS through a wrapper that saves
# the tty settings before and after and reports top's exit status.
start() { # NAME COLS ROWS ENV TOP-ARGS...
    session=$1
    local cols=$2 rows=$3 env=$4
    shift 4
    cat >"$work/$session.sh" <<EOF
stty -g >"$work/$session.before"
env $env "$bin" top $*
echo "TOP-EXIT=\$?"
stty -g >"$work/$session.after"
echo "TOP-DONE"
exec tail -f /dev/null
EOF
    tm new-session -d -s "$session" -x "$cols" -y "$rows" "sh $work/$session.sh"
}
alt_screen_on() { [ "$(tm display-message -p -t "$session" '#{alternate_on}')" = 1 ]; }
alt_screen_off() { [ "$(tm display-message -p -t "$session" '#{alternate_on}')" = 0 ]; }
tty_restored() { cmp -s "$work/$session.before" "$work/$session.after"; }
exited_with() { wait_screen "TOP-EXIT=$1" 20 && wait_screen TOP-DONE 20; }
top_pid() { # the top process under the wrapper shell of the session's pane
    local shell
    shell=$(tm display-message -p -t "$session" '#{pane_pid}')
    ps -o pid= --ppid "$shell" | head -n 1 | tr -d ' '
}

# --- replay: draws, keys, q restores the terminal ---------------------------
start replay 120 50 "" --replay "$rec"
check "replay: the frame is drawn (header, both CCXs)" wait_screen "replay .*vm-recording.jsonl" 30
check "replay: heat strip row of CCX0" wait_screen "CCX0 " 10
check "replay: heat strip row of CCX1" wait_screen "CCX1 " 10
check "replay: the alternate screen is in use" alt_screen_on
tm send-keys -t "$session" '?'
check "? shows the help" wait_screen " Keys " 10
tm send-keys -t "$session" x
check "any key closes the help" wait_screen ! " Keys " 10
tm send-keys -t "$session" Space
check "space pauses" wait_screen "PAUSED" 10
tm resize-window -t "$session" -x 80 -y 24
check "80x24: the panels take turns" wait_screen "tab panel 1/4" 10
tm send-keys -t "$session" Tab
check "tab shows the next panel" wait_screen "tab panel 2/4" 10
check "tab: the scheduler panel" wait_screen "Scheduler: decisions" 10
tm send-keys -t "$session" q
check "q quits with exit 0" exited_with 0
check "q: the alternate screen is left" alt_screen_off
check "q: tty settings are restored (raw mode off)" tty_restored
check "q: the TUI is gone from the screen" wait_screen ! "CCX (LLC)" 5

# --- live, no scheduler: waits; tiny terminal; SIGTERM restores -------------
start live 100 30 "" --stats-socket "$work/nobody-serves-this"
check "live: says it waits for the scheduler" wait_screen "waiting for scx_storeland to start" 30
tm resize-window -t "$session" -x 30 -y 6
check "a tiny terminal gets a 'too small' note" wait_screen "too small" 10
tm resize-window -t "$session" -x 100 -y 30
check "back to full size after the resize" wait_screen "waiting for scx_storeland" 10
pid=$(top_pid)
check "found the top process" test -n "$pid"
[ -z "$pid" ] || kill -TERM "$pid"
check "SIGTERM exits 0" exited_with 0
check "SIGTERM: the alternate screen is left" alt_screen_off
check "SIGTERM: tty settings are restored" tty_restored

# --- a panic restores the terminal before its message ------------------------
start panic 100 30 "SCX_STORELAND_TOP_PANIC=1" --replay "$rec"
check "panic: exits 101" exited_with 101
check "panic: the message is readable on the normal screen" wait_screen "panicking after the first frame" 10
check "panic: the alternate screen is left" alt_screen_off
check "panic: tty settings are restored" tty_restored

# --- --once needs no terminal --------------------------------------------------
once() { "$bin" top --once --replay "$rec" --width 100 --height 40 </dev/null >"$work/once.txt" && grep -q "CCX1 " "$work/once.txt"; }
check "top --once --replay prints a frame without a tty" once

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
