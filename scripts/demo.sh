#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): a program in its own UTS and IPC namespaces, with a
# custom hostname and changed IPC limits, is checkpointed and killed; its namespaces are restored
# on their own, pinned on files, and nsenter shows the saved names and limits back.
# Exits non-zero if any step fails or any restored value differs. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=demo-box DOMAIN=demo.example MSGMAX=12345 SHMMNI=2048

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
die() { echo "demo FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (namespaces, setns and bind mounts need it)"
for tool in unshare nsenter hostname domainname; do
  command -v "$tool" >/dev/null || die "$tool is missing (util-linux / hostname packages)"
done
[ -x node_modules/.bin/cr ] && [ -f cli/dist/commands/checkpoint.js ] || die "cr is not built: run npm install first (it builds)"
cr() { node_modules/.bin/cr "$@"; }

work=$(mktemp -d /tmp/cr-demo.XXXXXX)
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ -d "$work/pins" ]; then
    # cr unpin first; if that fails, unmount by hand so nothing stays pinned.
    cr unpin "$work/pins" >/dev/null 2>&1 || for f in "$work/pins"/*; do umount "$f" 2>/dev/null || true; done
  fi
  rm -rf "$work" 2>/dev/null || echo "demo: could not remove $work" >&2
  [ "$rc" -eq 0 ] || echo "demo: cleaned up after failure (exit $rc)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "host values, for comparison"
echo "hostname $(hostname), domainname $(domainname), msgmax $(cat /proc/sys/kernel/msgmax), shmmni $(cat /proc/sys/kernel/shmmni)"

step "start a program in new UTS+IPC namespaces (hostname $HOST, domainname $DOMAIN, msgmax $MSGMAX, shmmni $SHMMNI)"
unshare --uts --ipc sh -c "hostname $HOST; domainname $DOMAIN; echo $MSGMAX > /proc/sys/kernel/msgmax; echo $SHMMNI > /proc/sys/kernel/shmmni; exec sleep 600" &
pid=$!
# The setup is done once sh has exec'd sleep.
for _ in $(seq 100); do
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] && break
  kill -0 "$pid" 2>/dev/null || die "the sample program exited during its setup"
  sleep 0.05
done
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] || die "the sample program did not start"
echo "PID $pid: hostname $(nsenter -t "$pid" --uts hostname), domainname $(nsenter -t "$pid" --uts domainname)," \
  "msgmax $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/msgmax), shmmni $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/shmmni)"
echo "its namespaces: $(readlink "/proc/$pid/ns/uts") $(readlink "/proc/$pid/ns/ipc")"

step "cr checkpoint $pid -D $work/img"
cr checkpoint "$pid" -D "$work/img"

step "kill the program: its namespaces die with it"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=""
echo "killed; no process is left in those namespaces"

step "cr inspect $work/img"
cr inspect "$work/img"

step "cr restore -D $work/img --pin-ns $work/pins"
cr restore -D "$work/img" --pin-ns "$work/pins"

step "look inside the restored namespaces with nsenter"
host=$(nsenter --uts="$work/pins/uts" hostname)
dom=$(nsenter --uts="$work/pins/uts" domainname)
msgmax=$(nsenter --ipc="$work/pins/ipc" cat /proc/sys/kernel/msgmax)
shmmni=$(nsenter --ipc="$work/pins/ipc" cat /proc/sys/kernel/shmmni)
echo "restored namespaces (new ones): $(nsenter --uts="$work/pins/uts" --ipc="$work/pins/ipc" sh -c 'readlink /proc/self/ns/uts /proc/self/ns/ipc' | tr '\n' ' ')"
printf '%-11s %-14s %s\n' WHAT SAVED RESTORED hostname "$HOST" "$host" domainname "$DOMAIN" "$dom" msgmax "$MSGMAX" "$msgmax" shmmni "$SHMMNI" "$shmmni"
[ "$host" = "$HOST" ] || die "hostname is '$host', expected '$HOST'"
[ "$dom" = "$DOMAIN" ] || die "domainname is '$dom', expected '$DOMAIN'"
[ "$msgmax" = "$MSGMAX" ] || die "msgmax is '$msgmax', expected '$MSGMAX'"
[ "$shmmni" = "$SHMMNI" ] || die "shmmni is '$shmmni', expected '$SHMMNI'"
[ "$(hostname)" != "$HOST" ] || die "the host's own hostname is $HOST, so the check proves nothing"

step "cr unpin $work/pins"
cr unpin "$work/pins"
[ ! -e "$work/pins" ] || die "$work/pins is still there after cr unpin"

echo
bold "demo OK: the namespaces came back with the saved hostname, domainname and IPC limits"
