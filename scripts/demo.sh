#!/usr/bin/env bash
# The main job, end to end (`npm run demo`): a real program — a perl counter that keeps its state
# in variables and writes one line per tick to a file — runs in its own UTS and IPC namespaces,
# with a custom hostname and changed IPC limits. cr checkpoints it and kills it, the image is
# inspected, cr restores it, and the same PID carries on counting from where it stopped, with no
# gap and no repeat, in namespaces with the saved hostname and limits.
# Exits non-zero if any step fails or anything differs. Cleans up after itself, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST=demo-box DOMAIN=demo.example MSGMAX=12345 SHMMNI=2048
TICKS=8 # ticks to see before the checkpoint, and again after the restore

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }
die() { echo "demo FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run it as root (ptrace, namespaces and setns need it)"
for tool in perl unshare nsenter hostname domainname; do
  command -v "$tool" >/dev/null || die "$tool is missing (perl / util-linux / hostname packages)"
done
[ -x node_modules/.bin/cr ] && [ -f cli/dist/commands/checkpoint.js ] || die "cr is not built: run npm install first (it builds)"
cr() { node_modules/.bin/cr "$@"; }

work=$(mktemp -d /tmp/cr-demo.XXXXXX)
out=$work/ticks.txt
pid=""      # the program as first started: a child of this shell
restored="" # the PID a restore was started for: once restored, a child of PID 1
# Waits until no process has PID $1: a killed child of this shell is reaped at once, a restored
# program (a child of PID 1 once cr has exited) when PID 1 gets to it, which can take seconds.
await_gone() {
  for _ in $(seq 300); do [ -e "/proc/$1" ] || return 0; sleep 0.05; done
  return 1
}
cleanup() {
  local rc=$?
  for p in $pid $restored; do
    # Only the program: its PID may have been given to another process meanwhile.
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$work/counter.pl" || continue
    kill -9 "$p" 2>/dev/null || true
    await_gone "$p" || echo "demo: PID $p is still there after SIGKILL" >&2
  done
  rm -rf "$work" 2>/dev/null || echo "demo: could not remove $work" >&2
  [ "$rc" -eq 0 ] || echo "demo: cleaned up after failure (exit $rc)" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The program. Its state lives only in its variables: the tick number, a running sum and a hash
# with one key per tick. It sleeps 0.2 s between ticks (in select(2)).
cat >"$work/counter.pl" <<'PERL'
$| = 1;
my ($n, $sum, %seen) = (0, 0);
while (1) {
  $n++;
  $sum += $n;
  $seen{"tick$n"} = 1;
  printf "tick %d sum %d keys %d pid %d\n", $n, $sum, scalar(keys %seen), $$;
  select(undef, undef, undef, 0.2);
}
PERL

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
# Every line must be tick N with N = its line number, the sum 1+…+N, N hash keys, and the PID.
check_ticks() {
  awk -v pid="$1" '
    $0 != sprintf("tick %d sum %d keys %d pid %d", NR, NR * (NR + 1) / 2, NR, pid) {
      printf "line %d is \"%s\", expected \"tick %d sum %d keys %d pid %d\"\n", NR, $0, NR, NR * (NR + 1) / 2, NR, pid; bad = 1; exit
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
    echo $SHMMNI > /proc/sys/kernel/shmmni && exec perl \"\$0\"" "$work/counter.pl" </dev/null >"$out" 2>&1
) &
pid=$!
disown "$pid" # this shell still reaps it, without a "Killed" job report when cr kills it
await_ticks "$TICKS" "$pid"
[ "$(cat "/proc/$pid/comm")" = perl ] || die "PID $pid is $(cat "/proc/$pid/comm"), expected perl"
echo "PID $pid: hostname $(nsenter -t "$pid" --uts hostname), domainname $(nsenter -t "$pid" --uts domainname)," \
  "msgmax $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/msgmax), shmmni $(nsenter -t "$pid" --ipc cat /proc/sys/kernel/shmmni)"
echo "its descriptors: $(cd "/proc/$pid/fd" && for fd in *; do printf '%s -> %s, ' "$fd" "$(readlink "$fd")"; done | sed 's/, $//')"
fds=$(ls "/proc/$pid/fd" | tr '\n' ' ')
[ "$fds" = "0 1 2 " ] || die "the program holds descriptors $fds, expected only 0 1 2"
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
check_ticks "$pid_was"
sleep 0.5
[ "$(ticks)" -eq "$before" ] || die "$out grew after the program was killed"

step "cr inspect $work/img --no-records"
cr inspect "$work/img" --no-records

step "cr restore -D $work/img --detach"
restored=$pid_was
cr restore -D "$work/img" --detach
[ -e "/proc/$restored" ] || die "no process has PID $restored after cr restore"
[ "$(cat "/proc/$restored/comm")" = perl ] || die "PID $restored is $(cat "/proc/$restored/comm"), expected perl"
await_ticks $((before + TICKS)) "$restored"

step "the same PID carries on counting where it stopped"
echo "last line before the checkpoint, then the first lines after the restore:"
sed -n "${before},$((before + 3))p" "$out" | sed 's/^/  /'
check_ticks "$restored"
echo "all $(ticks) lines are one count, 1 to $(ticks), with no gap or repeat, from PID $restored"

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
echo "PID $restored is gone"
restored=""

echo
bold "demo OK: PID $pid_was came back, carried on counting with no gap or repeat, with the saved hostname, domainname and IPC limits"
