#!/usr/bin/env bash
# The main job, end to end: a program in its own UTS and IPC namespaces is checkpointed, killed,
# and its namespaces are restored on their own, pinned, with the same names and limits.
set -euo pipefail
cd "$(dirname "$0")/.."
cr() { node cli/bin/run.js "$@"; }

work=$(mktemp -d /tmp/cr-demo.XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  [ -d "$work/pins" ] && cr unpin "$work/pins" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start a program in new UTS+IPC namespaces (hostname demo-box, msgmax 12345, shmmni 2048)"
unshare --uts --ipc sh -c 'hostname demo-box; domainname demo.example; echo 12345 > /proc/sys/kernel/msgmax; echo 2048 > /proc/sys/kernel/shmmni; exec sleep 600' &
pid=$!
sleep 0.3
echo "PID $pid: hostname $(nsenter -t "$pid" --uts hostname), msgmax $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/msgmax)"

step "cr checkpoint $pid -D $work/img"
cr checkpoint "$pid" -D "$work/img"

step "kill the program: its namespaces are gone"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""

step "cr inspect $work/img"
cr inspect "$work/img"

step "cr restore -D $work/img --pin-ns $work/pins"
cr restore -D "$work/img" --pin-ns "$work/pins"

step "look inside the restored namespaces"
host=$(nsenter --uts="$work/pins/uts" hostname)
dom=$(nsenter --uts="$work/pins/uts" domainname)
msgmax=$(nsenter --ipc="$work/pins/ipc" cat /proc/sys/kernel/msgmax)
shmmni=$(nsenter --ipc="$work/pins/ipc" cat /proc/sys/kernel/shmmni)
echo "hostname $host, domainname $dom, msgmax $msgmax, shmmni $shmmni"
if [ "$host/$dom/$msgmax/$shmmni" != "demo-box/demo.example/12345/2048" ]; then
  echo "demo FAILED: restored values differ from the saved ones" >&2
  exit 1
fi

step "cr unpin $work/pins"
cr unpin "$work/pins"
echo
echo "demo OK: the namespaces came back with the saved hostname, domainname and IPC limits"
