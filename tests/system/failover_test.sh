#!/usr/bin/env bash
# Failover in the three-host lab (scripts/lab): client, primary and backup in
# network namespaces, a client-facing switch and a separate replication link;
# understudyd on both hosts with heartbeats on both networks and the client's
# address as witness. A client keeps one TCP connection to the guest open and
# sends "inc" every 100 ms. Checks:
#  1. only the replication link is cut: the primary goes on unprotected, the
#     backup does not take over (one copy of the guest), the client is served;
#  2. the primary's client-facing link is cut: the primary hands the guest
#     over, the backup takes over, the client's connection carries on;
#  3. the primary daemon is SIGKILLed: the backup detects it and takes over,
#     the connection carries on.
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
events_of() { pair_cli "$1" events 2>/dev/null; }


start_pair() { pair_up "$prefix" "$work" "$bin" || { bad "the pair did not come up"; exit 1; }; }

check_continuity() { # label
  local r; r=$(client_report)
  echo "   client: $r"
  case "$r" in
    *"skipped=0 out_of_order=0"*) ok "$1: the client's counter values are consecutive across the failover" ;;
    *) bad "$1: the client saw values skipped or out of order" ;;
  esac
  local gap; gap=$(echo "$r" | sed 's/.*longest_gap_s=\([0-9.]*\).*/\1/')
  echo "   longest gap the client saw: ${gap} s"
  awk -v g="$gap" 'BEGIN { exit !(g < 30) }' || bad "$1: the connection stalled for ${gap} s"
}

# 1. The replication link only: no split brain.
start_pair
ip -n "${prefix}pri" link set rep0 down
sleep 6
pri_state=$(pair_cli primary status demo --json | field state)
bak_json=$(pair_cli backup status --json)
if [ "$pri_state" = unprotected ] && ! echo "$bak_json" | grep -q '"role": *"activated"'; then
  ok "replication link cut: the primary runs on unprotected and the backup did not take over"
else
  bad "replication link cut: primary state '$pri_state', backup: $bak_json"
fi
events_of backup | grep -q " takeover " && bad "the backup logged a takeover with the primary alive"
before=$(client_report | sed 's/.*last=\([0-9]*\).*/\1/')
sleep 1
after=$(client_report | sed 's/.*last=\([0-9]*\).*/\1/')
[ "$after" -gt "$before" ] && ok "the client is still served by the primary ($before, then $after)" ||
  bad "the client is not served after the replication link was cut"
events_of primary | grep -q "backup_lost" && ok "the primary's events record the lost backup" ||
  bad "no backup_lost event on the primary"

# 2. The primary's client-facing link: a coordinated hand-over.
ip -n "${prefix}pri" link set rep0 up
pair_wait 60 pair_protected || bad "not re-protected after the replication link came back"
sleep 1
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
check_continuity "client-side cut"
client_stop
echo "--- backup events"; events_of backup | tail -8

# 3. The primary dies.
start_pair
sleep 1
pair_kill primary
if pair_wait 30 pair_backup_runs_guest; then
  ok "primary killed: the backup took over"
else
  bad "primary killed: no takeover"
fi
sleep 5
check_continuity "primary killed"
events_of backup | grep -q "silent on every path" && ok "the takeover's reason names the silent primary" ||
  bad "the takeover event lacks its reason"
echo "--- backup events"; events_of backup | tail -8

if [ $fail -ne 0 ]; then
  echo "--- primary log"; tail -30 "$work/primary.log"; echo "--- backup log"; tail -30 "$work/backup.log"
fi
exit $fail
