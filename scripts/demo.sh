#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): a real program — a python3 process with a worker
# thread and a child process it talks to through two pipes, which keeps its state in variables
# and writes one line per tick to a file — runs in its own UTS and IPC namespaces, with a custom
# hostname and changed IPC limits. cr checkpoints the whole tree and kills it, the image is
# inspected, cr restores it, and the same PIDs and thread carry on counting from where they
# stopped, with no gap and no repeat, in namespaces with the saved hostname and limits.
# Exits non-zero if any step fails or anything differs. Cleans up after itself, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=demo-box DOMAIN=demo.example MSGMAX=12345 SHMMNI=2048
TICKS=8 # ticks to see before the checkpoint, and again after the restore

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
die() { echo "demo FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (ptrace, namespaces and setns need it)"
for tool in python3 unshare nsenter hostname domainname; do
  command -v "$tool" >/dev/null || die "$tool is missing (python3 / util-linux / hostname packages)"
done
[ -x node_modules/.bin/cr ] && [ -f cli/dist/commands/checkpoint.js ] || die "cr is not built: run npm install first (it builds)"
cr() { node_modules/.bin/cr "$@"; }

work=$(mktemp -d /tmp/cr-demo.XXXXXX)
out=$work/ticks.txt
pid=""      # the program as first started: a child of this shell
restored="" # the PID a restore was started for: once restored, a child of PID 1
child=""    # its child process
# Waits until no process has PID $1: a killed child of this shell is reaped at once, a restored
# program (a child of PID 1 once cr has exited) when PID 1 gets to it, which can take seconds.
await_gone() {
  for _ in $(seq 300); do [ -e "/proc/$1" ] || return 0; sleep 0.05; done
  return 1
}
cleanup() {
  local rc=$?
  for p in $pid $restored $child; do
    # Only the program: its PID may have been given to another process meanwhile.
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$work/counter.py" || continue
    kill -9 "$p" 2>/dev/null || true
    await_gone "$p" || echo "demo: PID $p is still there after SIGKILL" >&2
  done
  rm -rf "$work" 2>/dev/null || echo "demo: could not remove $work" >&2
  [ "$rc" -eq 0 ] || echo "demo: cleaned up after failure (exit $rc)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The program. Its state lives only in its variables: the tick number and a running sum. A worker
# thread does the ticks (the main thread waits for it in join); for each tick it sends N to a
# child process through one pipe and adds the N*N the child sends back through another.
cat >"$work/counter.py" <<'PY'
import os, sys, threading, time
from_parent, to_child = os.pipe()
from_child, to_parent = os.pipe()
child = os.fork()
if child == 0:
    os.close(to_child); os.close(from_child)
    while True:
        got = os.read(from_parent, 8)
        if not got:
            os._exit(0)
        os.write(to_parent, (int(got) ** 2).to_bytes(8, 'little'))
os.close(from_parent); os.close(to_parent)

def ticks():
    n, total = 0, 0
    while True:
        n += 1
        os.write(to_child, b'%8d' % n)
        total += int.from_bytes(os.read(from_child, 8), 'little')
        print(f'tick {n} sum {total} threads {threading.active_count()} pid {os.getpid()} child {child}', flush=True)
        time.sleep(0.2)

worker = threading.Thread(target=ticks)
worker.start()
worker.join()
PY

ticks() { if [ -f "$out" ]; then wc -l <"$out"; else echo 0; fi; }
# Waits until the file holds at least $1 lines, while the program is alive.
await_ticks() {
  for _ in $(seq 200); do
    [ "$(ticks)" -ge "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || die "the program (PID $2) is gone; its output: $(tail -3 "$out" 2>/dev/null)"
    sleep 0.05
  done
  die "the program (PID $2) wrote $(ticks) lines in 10 s, expected $1"
}
# Every line must be tick N with N = its line number, the sum of the squares 1+…+N*N, two threads, and the PIDs.
check_ticks() {
  awk -v pid="$1" -v child="$2" '
    $0 != sprintf("tick %d sum %d threads 2 pid %d child %d", NR, NR * (NR + 1) * (2 * NR + 1) / 6, pid, child) {
      printf "line %d is \"%s\", expected \"tick %d sum %d threads 2 pid %d child %d\"\n", NR, $0, NR, NR * (NR + 1) * (2 * NR + 1) / 6, pid, child; bad = 1; exit
    }
    END { exit bad }' "$out" || die "the ticks in $out are not one count with no gap or repeat"
}

step "host values, for comparison"
echo "hostname $(hostname), domainname $(domainname), msgmax $(cat /proc/sys/kernel/msgmax), shmmni $(cat /proc/sys/kernel/shmmni)"

step "start the program in new UTS+IPC namespaces (hostname $HOST, domainname $DOMAIN, msgmax $MSGMAX, shmmni $SHMMNI)"
(
  # Whatever descriptors this shell inherited above 2 must not reach the program: cr saves every
  # open descriptor, and refuses pipes and sockets beyond stdio.
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && eval "exec $fd>&-"
  done
  exec unshare --uts --ipc sh -c "hostname $HOST && domainname $DOMAIN && echo $MSGMAX > /proc/sys/kernel/msgmax &&
    echo $SHMMNI > /proc/sys/kernel/shmmni && exec python3 \"\$0\"" "$work/counter.py" </dev/null >"$out" 2>&1
) &
pid=$!
disown "$pid" # this shell still reaps it, without a "Killed" job report when cr kills it
await_ticks "$TICKS" "$pid"
[ "$(cat "/proc/$pid/comm")" = python3 ] || die "PID $pid is $(cat "/proc/$pid/comm"), expected python3"
child=$(cat "/proc/$pid/task/$pid/children" | tr -d ' ')
tids=$(ls "/proc/$pid/task" | tr '\n' ' ')
echo "PID $pid has threads $tids and a child process, PID $child"
echo "PID $pid: hostname $(nsenter -t "$pid" --uts hostname), domainname $(nsenter -t "$pid" --uts domainname)," \
  "msgmax $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/msgmax), shmmni $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/shmmni)"
echo "its descriptors: $(cd "/proc/$pid/fd" && for fd in *; do printf '%s -> %s, ' "$fd" "$(readlink "$fd")"; done | sed 's/, $//')"
echo "$out so far:"
tail -n 3 "$out" | sed 's/^/  /'

step "cr checkpoint $pid -D $work/img --kill"
cr checkpoint "$pid" -D "$work/img" --kill
pid_was=$pid
await_gone "$pid_was" || die "PID $pid_was is still there after cr checkpoint --kill"
pid=""
before=$(ticks)
last=$(tail -n 1 "$out")
echo "the program is gone; its last line: $last"
check_ticks "$pid_was" "$child"
sleep 0.5
[ "$(ticks)" -eq "$before" ] || die "$out grew after the program was killed"

step "cr inspect $work/img --no-records"
cr inspect "$work/img" --no-records

step "cr restore -D $work/img --detach"
restored=$pid_was
cr restore -D "$work/img" --detach
[ -e "/proc/$restored" ] || die "no process has PID $restored after cr restore"
[ "$(cat "/proc/$restored/comm")" = python3 ] || die "PID $restored is $(cat "/proc/$restored/comm"), expected python3"
[ "$(ls "/proc/$restored/task" | tr '\n' ' ')" = "$tids" ] || die "PID $restored has threads $(ls "/proc/$restored/task" | tr '\n' ' '), expected $tids"
[ "$(cat "/proc/$restored/task/$restored/children" | tr -d ' ')" = "$child" ] || die "PID $restored's children are not PID $child"
await_ticks $((before + TICKS)) "$restored"

step "the same PIDs and threads carry on counting where they stopped"
echo "last line before the checkpoint, then the first lines after the restore:"
sed -n "${before},$((before + 3))p" "$out" | sed 's/^/  /'
check_ticks "$restored" "$child"
echo "all $(ticks) lines are one count, 1 to $(ticks), with no gap or repeat, from PID $restored (threads $tids) and its child PID $child"

step "its namespaces, with nsenter -t $restored"
host=$(nsenter -t "$restored" --uts hostname)
dom=$(nsenter -t "$restored" --uts domainname)
msgmax=$(nsenter -t "$restored" --ipc cat /proc/sys/kernel/msgmax)
shmmni=$(nsenter -t "$restored" --ipc cat /proc/sys/kernel/shmmni)
printf '%-11s %-14s %s\n' WHAT SAVED RESTORED hostname "$HOST" "$host" domainname "$DOMAIN" "$dom" msgmax "$MSGMAX" "$msgmax" shmmni "$SHMMNI" "$shmmni"
[ "$host" = "$HOST" ] || die "hostname is '$host', expected '$HOST'"
[ "$dom" = "$DOMAIN" ] || die "domainname is '$dom', expected '$DOMAIN'"
[ "$msgmax" = "$MSGMAX" ] || die "msgmax is '$msgmax', expected '$MSGMAX'"
[ "$shmmni" = "$SHMMNI" ] || die "shmmni is '$shmmni', expected '$SHMMNI'"
[ "$(hostname)" != "$HOST" ] || die "the host's own hostname is $HOST, so the check proves nothing"
[ "$(readlink "/proc/$restored/ns/uts")" != "$(readlink /proc/self/ns/uts)" ] || die "the restored program is in the host's UTS namespace"

step "stop the restored program"
kill -9 "$restored"
await_gone "$restored" || die "PID $restored is still there after SIGKILL"
# The child reads the end of its pipe and exits.
await_gone "$child" || die "PID $child is still there after its parent was killed"
echo "PID $restored and its child PID $child are gone"
restored=""
child_was=$child
child=""

echo
bold "demo OK: PID $pid_was, its thread and its child PID $child_was came back, carried on counting with no gap or repeat, with the saved hostname, domainname and IPC limits"
