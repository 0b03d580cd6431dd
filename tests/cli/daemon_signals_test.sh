#!/usr/bin/env bash
# understudyd as systemd and an operator meet it: SIGHUP, SIGUSR1, SIGUSR2 and
# SIGPIPE never kill it (it logs what it did with each and still answers),
# it feeds systemd's watchdog (a NOTIFY_SOCKET of the test's own, read with
# nc) while its loops go round, locks its memory where allowed, and SIGTERM
# ends it with status 0.
set -u
understudyd=$1 understudy=$2
work=$(mktemp -d /tmp/understudy-signals.XXXXXX)
fail=0
pid= ncpid=
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  [ -n "$ncpid" ] && kill "$ncpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

(umask 077; printf '%064d\n' 7 >"$work/key")
cat >"$work/u.conf" <<CONF
[daemon]
node = signals
control_socket = $work/control.sock
state_dir = $work/state
[replication]
psk_file = $work/key
CONF
nc -lkuU "$work/notify.sock" >"$work/notify.log" 2>/dev/null &
ncpid=$!
for _ in $(seq 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=2000000 "$understudyd" --config "$work/u.conf" >"$work/log" 2>&1 &
pid=$!
ask() { UNDERSTUDY_SOCKET=$work/control.sock "$understudy" status >/dev/null 2>&1; }
for _ in $(seq 100); do ask && break; sleep 0.1; done
check "understudyd answers" ask

for s in HUP USR1 USR2 PIPE; do
  kill -s "$s" "$pid"
  sleep 0.3
  check "SIG$s does not kill it" 'kill -0 "$pid" 2>/dev/null && ask'
done
check "SIGHUP is logged with what it did" 'grep -q "SIGHUP: reloading the configuration is not supported yet" "$work/log"'
check "SIGUSR1 is logged as ignored" 'grep -q "SIGUSR1: ignored" "$work/log"'
check "it says whether its memory is locked" 'grep -Eq "memory locked|cannot lock memory" "$work/log"'

# Ready, then fed about every 100 ms while its loops go round.
for _ in $(seq 50); do [ "$(grep -o WATCHDOG=1 "$work/notify.log" | wc -l)" -ge 5 ] && break; sleep 0.1; done
check "it told systemd it is ready" 'grep -q READY=1 "$work/notify.log"'
check "it feeds the watchdog" '[ "$(grep -o WATCHDOG=1 "$work/notify.log" | wc -l)" -ge 5 ]'

kill -TERM "$pid"
wait "$pid"; status=$?
pid=
check "SIGTERM ends it with status 0" '[ $status -eq 0 ]'
[ $fail -ne 0 ] && { echo "--- log"; cat "$work/log"; }
exit $fail
