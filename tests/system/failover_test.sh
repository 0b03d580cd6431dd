#!/usr/bin/env bash
# Failover in the three-host lab (scripts/lab): client, primary and backup in
# network namespaces, a client-facing switch and a separate replication link;
# understudyd on both hosts with heartbeats on both networks and the client's
# address as witness. A client keeps one TCP connection to the guest open and
# sends "inc" every 100 ms. Checks:
#  0. a capture on the client's link against the primary's checkpoint records:
#     no segment of the guest appears before its epoch was acked;
#  1. only the replication link is cut: the primary goes on unprotected, the
#     backup does not take over (one copy of the guest), the client is served;
#  2. the primary's client-facing link is cut: the primary hands the guest
#     over, the backup takes over, the client's connection carries on;
#  3. the primary daemon is SIGKILLed: the backup detects it and takes over,
#     the connection carries on; the old primary's daemon comes back, does
#     not start the guest, and becomes the backup on command (full resync);
#  4. `understudy drill` on the primary: it reports the takeover with the
#     invariant held; with reprotect = auto the old primary becomes the
#     backup by itself, and a drill the other way brings the guest back;
#  5. the backup dies (SIGKILL): the primary's clients wait at most about one
#     epoch longer, then the guest's output flows unbuffered;
#  6. the replication link fails, the primary runs on unprotected, then dies:
#     the outdated standby does not take over (the clients' counter would go
#     back), not even on `understudy takeover` without --force.
# In 2 and 3 the counter values the client received are consecutive (none
# lost, none repeated: no reply ever came from a state the backup lacked);
# the longest gap is printed. Needs root and KVM (exit 77 otherwise).
set -u
bin=$1
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/kvm ] || ! { exec 3<>/dev/kvm; } 2>/dev/null; then
  echo "SKIPPED: needs root and a usable /dev/kvm"
  exit 77
fi
exec 3>&-
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/scripts/pair-lib.sh"

prefix=us-f$$-
work=$(mktemp -d /tmp/understudy-failover.XXXXXX)
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAILED: $*"; fail=1; }
cleanup() {
  pair_cleanup
  "$here/scripts/lab" down "$prefix" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

field() { grep -o "\"$1\": *\"*[0-9a-z]*" | head -1 | sed 's/.*: *"*//'; }
last_value() { client_report | sed 's/.*last=\([0-9]*\).*/\1/'; }
standby_outdated() { pair_cli backup status --json | grep -q '"outdated": *true'; }
events_of() { pair_cli "$1" events 2>/dev/null; }


start_pair() { pair_up "$prefix" "$work" "$bin" || { bad "the pair did not come up"; exit 1; }; }

# The longest gap a client may see across a failover with default settings.
# Under full emulation (scripts/kvm-in-qemu sets UNDERSTUDY_EMULATED) every
# step is 10-30 times slower, so there the bound is loose and says so.
if [ -n "${UNDERSTUDY_EMULATED:-}" ]; then
  gap_limit=6
  capture_deadline=300
  echo "note: emulated VM: the 1 s gap bound is checked only on a real KVM host; here the bound is ${gap_limit} s"
else
  gap_limit=1
  capture_deadline=90
fi

check_continuity() { # label [failed-at]
  local r; r=$(client_report)
  echo "   client: $r"
  case "$r" in
    *"skipped=0 out_of_order=0"*) ok "$1: the client's counter values are consecutive across the failover" ;;
    *) bad "$1: the client saw values skipped or out of order" ;;
  esac
  [ -n "${2:-}" ] || return 0
  # From the last reply before the failure to the first one after it.
  local gap; gap=$(awk -v k="$2" '$1 < k { t = $1 } $1 >= k && !d { printf "%.3f", $1 - t; d = 1 }' "$work/client.log")
  if [ -n "$gap" ] && awk -v g="$gap" -v l="$gap_limit" 'BEGIN { exit !(g < l) }'; then
    ok "$1: the client's longest gap across the failover was ${gap} s (< ${gap_limit} s)"
  else
    bad "$1: the client's gap across the failover was '${gap}' s (limit ${gap_limit} s)"
  fi
}

# 0. Output commit, seen from the client's side of the wire.
start_pair
ip netns exec "${prefix}cli" tcpdump -i up0 -n -tt -S -l "tcp port 80" >"$work/capture.txt" 2>/dev/null &
tcpdump_pid=$!
# Until 30 segments from the guest acknowledging the client's data are
# captured (the checker needs 20), with a deadline: a busy machine or the
# emulated guest answers slower, so no fixed time would do.
guest_segments() { grep -c "IP 10.99.0.2.80 > .* ack " "$work/capture.txt" 2>/dev/null; }
pair_wait "$capture_deadline" eval '[ "$(guest_segments)" -ge 30 ]' ||
  echo "note: only $(guest_segments) guest segments within ${capture_deadline} s"
kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null
pair_cli primary events --epochs demo >"$work/epochs.txt"
if result=$(awk -v guest=10.99.0.2.80 -v min=20 -f "$here/tests/system/check_output_commit.awk" \
              "$work/epochs.txt" "$work/capture.txt"); then
  ok "capture: $result"
else
  bad "capture: $result"
fi

# 1. The replication link only: no split brain.
ip -n "${prefix}pri" link set rep0 down
pair_wait 30 eval '[ "$(pair_cli primary status demo --json | field state)" = unprotected ]'
pri_state=$(pair_cli primary status demo --json | field state)
# The backup still hears the primary on the client network: it must not take
# over (checked for three heartbeat timeouts), and since the primary's output
# flows unheld now, its standby is outdated.
pair_wait 15 standby_outdated && ok "the backup marked its standby outdated (the primary runs on without it)" ||
  bad "the backup's standby is not outdated: $(pair_cli backup status --json | tr -d '\n')"
sleep 3
bak_json=$(pair_cli backup status --json)
if [ "$pri_state" = unprotected ] && ! echo "$bak_json" | grep -q '"role": *"activated"'; then
  ok "replication link cut: the primary runs on unprotected and the backup did not take over"
else
  bad "replication link cut: primary state '$pri_state', backup: $bak_json"
fi
events_of backup | grep -q " takeover " && bad "the backup logged a takeover with the primary alive"
before=$(last_value)
pair_wait 10 eval '[ "$(last_value)" -gt "$before" ]' &&
  ok "the client is still served by the primary ($before, then $(last_value))" ||
  bad "the client is not served after the replication link was cut"
events_of primary | grep -q "backup_lost" && ok "the primary's events record the lost backup" ||
  bad "no backup_lost event on the primary"

# 2. The primary's client-facing link: a coordinated hand-over.
ip -n "${prefix}pri" link set rep0 up
pair_wait 60 pair_protected || bad "not re-protected after the replication link came back"
sleep 1
cut_at=$EPOCHREALTIME
ip -n "${prefix}pri" link set up0 down
if pair_wait 30 pair_backup_runs_guest; then
  ok "client side of the primary cut: the backup took the guest over"
else
  bad "client side cut: the backup did not take over"
fi
sleep 4
events_of primary | grep -q " relinquished " && ok "the primary handed the guest over (relinquished event)" ||
  bad "no relinquished event on the primary"
events_of backup | grep -q " announced " && ok "the backup announced the guest with gratuitous ARPs" ||
  bad "no announced event on the backup"
check_continuity "client-side cut" "$cut_at"
client_stop
echo "--- backup events"; events_of backup | tail -8

# 3. The primary dies.
start_pair
sleep 1
killed_at=$EPOCHREALTIME
pair_kill primary
if pair_wait 30 pair_backup_runs_guest; then
  ok "primary killed: the backup took over"
else
  bad "primary killed: no takeover"
fi
sleep 5
check_continuity "primary killed" "$killed_at"
events_of backup | grep -q "silent on every path" && ok "the takeover's reason names the silent primary" ||
  bad "the takeover event lacks its reason"
pair_start primary
sleep 3
events_of primary | grep -q "autostart_skipped" && ok "the old primary came back and did not start the guest" ||
  bad "no autostart_skipped event on the restarted primary"
pair_cli primary status --json | grep -q '"role": *"primary"' && bad "the restarted primary runs the guest"
pair_cli backup protect demo --peer 10.98.0.1 >/dev/null
if pair_wait 120 eval 'pair_cli backup status demo --json | grep -q "\"state\": *\"protected\""'; then
  ok "re-protection on command: the old primary is the backup now"
else
  bad "re-protection on command failed: $(pair_cli backup status demo --json | tr -d '\n')"
fi
client_stop

# 4. Drills, with automatic re-protection.
PAIR_REPROTECT=auto start_pair
drilled_at=$EPOCHREALTIME
drill=$(pair_cli primary drill demo)
rc=$?
echo "$drill" | sed 's/^/   /'
[ $rc -eq 0 ] && echo "$drill" | grep -q "^PASSED" && ok "drill: passed, the invariant held" ||
  bad "drill: exit $rc"
echo "$drill" | grep -Eq "detection +[1-9][0-9]* ms" && ok "drill: the report gives detection and activation times" ||
  bad "drill: no detection time in the report"
sleep 3
check_continuity "drill" "$drilled_at"
if pair_wait 120 eval 'pair_cli backup status demo --json | grep -q "\"state\": *\"protected\""'; then
  ok "reprotect = auto: the drilled primary became the backup by itself"
else
  bad "reprotect = auto did not re-protect: $(pair_cli backup status demo --json | tr -d '\n')"
fi
events_of backup | grep -q " reprotect " && ok "the re-protection is an event" || bad "no reprotect event"
sleep 2
back=$(pair_cli backup drill demo --json)
echo "   $back"
# (activated, or already "primary" again: reprotect = auto protects it at once)
echo "$back" | grep -q '"invariant_held": *true' && echo "$back" | grep -q '"detection_ms": *[1-9]' &&
  pair_wait 10 eval 'pair_cli primary status demo --json | grep -Eq "\"role\": *\"(activated|primary)\""' &&
  ok "a drill the other way brings the guest back to the first host" || bad "the drill back failed"
sleep 3
check_continuity "two drills"
echo "--- primary events"; events_of primary | tail -10
client_stop

# 5. The backup dies.
start_pair
sleep 2
died_at=$EPOCHREALTIME
pair_kill backup
sleep 2
gap=$(awk -v k="$died_at" '$1 < k { t = $1 } $1 >= k && !d { printf "%.3f", $1 - t; d = 1 }' "$work/client.log")
# A reply every 100 ms; one held epoch (25 ms) more is what output commit may add.
limit=$([ -n "${UNDERSTUDY_EMULATED:-}" ] && echo 2 || echo 0.3)
awk -v g="${gap:-99}" -v l="$limit" 'BEGIN { exit !(g < l) }' &&
  ok "backup killed: the client's gap was ${gap} s (< ${limit} s: no more than an epoch of extra delay)" ||
  bad "backup killed: the client's gap was '${gap}' s (limit ${limit} s)"
st=$(pair_cli primary status demo --json)
passed1=$(echo "$st" | field passed_frames)
sleep 1
passed2=$(pair_cli primary status demo --json | field passed_frames)
if echo "$st" | grep -q '"holding": *false' && [ "${passed2:-0}" -gt "${passed1:-0}" ]; then
  ok "backup killed: the primary's output is no longer held ($passed1, then $passed2 frames passed straight out)"
else
  bad "backup killed: output still held: $st"
fi
check_continuity "backup killed"
client_stop

# 6. The replication link fails, the primary runs on unprotected (its clients
#    see newer state than the standby has), then the primary dies: the
#    outdated standby must not take over, or the clients' counter would go
#    back. An operator can still force it.
start_pair
ip -n "${prefix}pri" link set rep0 down
pair_wait 30 standby_outdated || bad "the standby did not become outdated"
seen=$(last_value)
pair_wait 10 eval '[ "$(last_value)" -gt "$seen" ]'
pair_kill primary
sleep 4 # four heartbeat timeouts: a takeover would have happened by now
if pair_backup_runs_guest; then
  bad "the outdated standby took over after the primary died"
else
  ok "the primary died after running unprotected: the outdated standby did not take over"
fi
events_of backup | grep " takeover_refused " | grep -q "OUTDATED" &&
  ok "the refusal says why: $(events_of backup | grep -m1 ' takeover_refused ' | cut -c1-160)" ||
  bad "no takeover_refused event naming the outdated standby"
pair_cli backup takeover demo >/dev/null 2>&1 && bad "takeover without --force ran an outdated standby" ||
  ok "understudy takeover refuses the outdated standby without --force"
check_continuity "unprotected, then the primary died"
client_stop

if [ $fail -ne 0 ]; then
  echo "--- primary log"; tail -30 "$work/primary.log"; echo "--- backup log"; tail -30 "$work/backup.log"
fi
exit $fail
