#!/usr/bin/env bash
# Two hosts as network namespaces (primary, backup) joined by a veth
# replication link; understudyd on each; the demo guest on the primary with a
# page-dirtying workload and a disk, protected with `understudy protect` over
# TLS (pre-shared key). Checks, with the real daemons and CLI:
#  - at frozen epochs, memory, CPU, device state and disk of the primary
#    equal the backup's standby (`understudy debug checksum` on both sides);
#  - `understudy status --json` and the Prometheus endpoint report it;
#  - the primary daemon SIGKILLed mid-stream, several times: the backup's
#    standby stays consistent and only moves forward;
#  - the standby activated by hand runs the guest, whose UDP counter goes on
#    from the last acked value.
# Needs root and KVM (exit 77 otherwise).
set -u
bin=$1
understudy=$bin/understudy
understudyd=$bin/understudyd
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/kvm ] || ! { exec 3<>/dev/kvm; } 2>/dev/null; then
  echo "SKIPPED: needs root and a usable /dev/kvm"
  exit 77
fi
exec 3>&-

tag=$$
pri=us-pri-$tag bak=us-bak-$tag
work=$(mktemp -d /tmp/understudy-protect.XXXXXX)
fail=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$pri" 2>/dev/null
  ip netns del "$bak" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
ok() { echo "ok: $*"; }
bad() { echo "FAILED: $*"; fail=1; }
in_pri() { ip netns exec "$pri" "$@"; }
in_bak() { ip netns exec "$bak" "$@"; }

# Hosts, the replication link, and on each host a TAP for the guest whose
# host side is the client (10.99.0.1) talking to the guest (10.99.0.2).
ip netns add "$pri" && ip netns add "$bak"
ip link add rep-p-$tag type veth peer name rep-b-$tag
ip link set rep-p-$tag netns "$pri" && ip link set rep-b-$tag netns "$bak"
in_pri ip addr add 10.98.0.1/24 dev rep-p-$tag && in_pri ip link set rep-p-$tag up && in_pri ip link set lo up
in_bak ip addr add 10.98.0.2/24 dev rep-b-$tag && in_bak ip link set rep-b-$tag up && in_bak ip link set lo up
for ns in "$pri" "$bak"; do
  ip netns exec "$ns" ip tuntap add us-tap0 mode tap
  ip netns exec "$ns" ip addr add 10.99.0.1/24 dev us-tap0
  ip netns exec "$ns" ip link set us-tap0 up
done

(umask 077; openssl rand -hex 32 >"$work/pair.key")
# Under full emulation (scripts/kvm-in-qemu), ASan builds take seconds for
# what takes milliseconds on a KVM host: a longer ack timeout keeps a stopped
# backup from being declared lost while the test is still looking.
ack_timeout_ms=$([ -n "${UNDERSTUDY_EMULATED:-}" ] && echo 10000 || echo 3000)
write_config() { # name dir autostart
  cat >"$work/$1.conf" <<CONF
[daemon]
node = $1
control_socket = $work/$1/control.sock
state_dir = $work/$1/state
metrics = 127.0.0.1:9464
[replication]
listen = 0.0.0.0:7300
psk_file = $work/pair.key
interval_ms = 25
ack_timeout_ms = $ack_timeout_ms
compression = xor+lz4
[guest demo]
kernel = $bin/demo-guest.elf
memory_mib = 16
tap = us-tap0
disk = $work/$1/demo.img
disk_mib = 1
dirty_rate = 2000
autostart = $3
CONF
  mkdir -p "$work/$1"
}
write_config primary "$work/primary" yes
write_config backup "$work/backup" no

start_daemon() { # name ns
  ip netns exec "$2" "$understudyd" --config "$work/$1.conf" >>"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 300); do [ -S "$work/$1/control.sock" ] && return 0; sleep 0.1; done
  bad "understudyd $1 did not start"; cat "$work/$1.log"; exit 1
}
P() { UNDERSTUDY_SOCKET=$work/primary/control.sock in_pri "$understudy" "$@"; }
B() { UNDERSTUDY_SOCKET=$work/backup/control.sock in_bak "$understudy" "$@"; }
udp() { # ns request -> reply
  printf '%s' "$2" | ip netns exec "$1" nc -u -w3 -W1 10.99.0.2 7777 2>/dev/null | tr -d '\n'
}
udp_get() { # ns -> the counter; retried, since reading it changes nothing
  local v
  for _ in 1 2 3 4 5; do v=$(udp "$1" get); [ -n "$v" ] && break; done
  echo "$v"
}
wait_for() { # seconds description command...: by the clock (a command may itself be slow)
  local secs=$1 what=$2; shift 2
  local until=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$until" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  bad "$what (waited ${secs}s)"; return 1
}

start_daemon backup "$bak"
start_daemon primary "$pri"
wait_for 60 "the demo guest answers on the primary" bash -c "[ -n \"\$(printf get | ip netns exec $pri nc -u -w1 -W1 10.99.0.2 7777)\" ]"
for i in 1 2 3; do udp "$pri" inc >/dev/null; done

P protect demo --peer 10.98.0.2 && ok "understudy protect accepted" || bad "understudy protect"
is_protected() { P status demo --json | grep -q '"state": *"protected"'; }
wait_for 120 "the guest becomes protected" is_protected && ok "the guest is protected"

compare() { # label
  P debug freeze demo >/dev/null || { bad "freeze ($1)"; return; }
  local a b
  a=$(P debug checksum demo) b=$(B debug checksum demo)
  P debug thaw demo >/dev/null
  if [ -n "$a" ] && [ "$a" = "$b" ]; then
    ok "$1: primary and standby are identical ($(echo "$a" | grep epoch))"
  else
    bad "$1: primary and standby differ"; echo "primary:"; echo "$a"; echo "backup:"; echo "$b"
  fi
}
compare "after protection"
for i in 1 2 3 4 5; do udp "$pri" inc >/dev/null; done
sleep 1
compare "after UDP requests and 1 s of dirtying"
sleep 1
compare "after another second"

json=$(P status --json)
for field in role state peer acked_epoch last_ack_age_s pause_p50_us pause_p99_us dirty_pages_last bytes_sent \
             compression_ratio link; do
  echo "$json" | grep -q "\"$field\"" || bad "status --json lacks $field"
done
echo "$json" | grep -q '"role": *"primary"' && ok "status --json shows the primary role and its figures"
B status | grep -q "consistent" && ok "the backup's status table shows a consistent standby" ||
  bad "the backup's status table shows no consistent standby"
metrics=$(in_pri curl -sf --max-time 30 http://127.0.0.1:9464/metrics)
if echo "$metrics" | grep -q '^understudy_guest_protected{guest="demo",role="primary"} 1$' &&
   echo "$metrics" | grep -q '^# TYPE understudy_checkpoints_total counter$'; then
  ok "curl of the metrics port returns Prometheus text"
else
  bad "metrics"; echo "$metrics" | head -20
fi

# Output commit: while the backup cannot ack, the guest's replies are held
# on the primary; once acks flow again they go out.
field() { grep -o "\"$1\": *\"*[0-9]*" | head -1 | grep -o '[0-9]*$'; }
counter_before=$(udp_get "$pri")
released_before=$(P status demo --json | field released_frames)
kill -STOP "${pids[0]}" # the backup daemon: no more acks, the link stays up
held_reply=$(printf inc | in_pri nc -u -w1 -W1 10.99.0.2 7777 2>/dev/null | tr -d '\n')
# The guest may answer only after nc gave up (slow emulation): the reply is held either way.
held() { [ "$(P status demo --json | field held_frames)" -ge 1 ]; }
for _ in $(seq 50); do held && break; sleep 0.1; done
held_frames=$(P status demo --json | field held_frames)
kill -CONT "${pids[0]}"
if [ -z "$held_reply" ] && [ "${held_frames:-0}" -ge 1 ]; then
  ok "no reply leaves while the backup does not ack ($held_frames frames held)"
else
  bad "output commit: reply '$held_reply' while the backup was stopped, held frames '$held_frames'"
fi
released_more() { [ "$(P status demo --json | field released_frames)" -gt "${released_before:-0}" ]; }
wait_for 10 "held frames released after the backup acks again" released_more &&
  ok "held frames were released once the backup acked again"
counter_after=$(udp_get "$pri")
[ "$counter_after" = "$((counter_before + 1))" ] &&
  ok "the request whose reply was held was served once ($counter_before, then $counter_after)" ||
  bad "counter '$counter_before' then '$counter_after' around the held request"
in_pri curl -sf --max-time 30 http://127.0.0.1:9464/metrics | grep -q '^understudy_output_released_frames_total{guest="demo"' &&
  ok "metrics show the output buffer" || bad "metrics lack understudy_output_released_frames_total"

# Kill the primary daemon mid-stream a few times; restart it and re-protect.
last_epoch=0
for round in 1 2 3; do
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null; unset 'pids[-1]'
  sleep 0.5
  st=$(B status demo --json)
  epoch=$(echo "$st" | grep -o '"epoch": *"*[0-9]*' | grep -o '[0-9]*$')
  if echo "$st" | grep -q '"consistent": *true' && B debug checksum demo >/dev/null; then
    ok "primary killed (round $round): the standby is consistent at epoch $epoch"
  else
    bad "primary killed (round $round): standby not consistent"; echo "$st"
  fi
  [ "$round" -lt 3 ] || break
  rm -f "$work/primary/control.sock"
  start_daemon primary "$pri"
  wait_for 60 "the guest answers after the primary restarted" bash -c "[ -n \"\$(printf get | ip netns exec $pri nc -u -w1 -W1 10.99.0.2 7777)\" ]"
  P protect demo --peer 10.98.0.2 >/dev/null
  wait_for 120 "re-protected after restart" is_protected
done

# Activation: the backup runs the guest from the last committed checkpoint.
# Round 3 left no primary; its last acked state is the standby.
start_daemon primary "$pri"
wait_for 60 "the guest answers" bash -c "[ -n \"\$(printf get | ip netns exec $pri nc -u -w1 -W1 10.99.0.2 7777)\" ]"
P protect demo --peer 10.98.0.2 >/dev/null
wait_for 120 "protected before activation" is_protected
udp "$pri" inc >/dev/null
before=$(udp_get "$pri")
P debug freeze demo >/dev/null
kill -9 "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null; unset 'pids[-1]'
B debug activate demo && ok "the standby was activated on the backup" || bad "activate"
after=$(udp_get "$bak")
next=$(udp "$bak" inc)
if [ -n "$before" ] && [ "$after" = "$before" ] && [ "$next" = "$((before + 1))" ]; then
  ok "the activated guest's counter goes on from the last acked value ($before, then $next)"
else
  bad "counter after activation: acked '$before', activated guest '$after', next increment '$next'"
fi

if [ $fail -ne 0 ]; then
  echo "--- primary log"; tail -40 "$work/primary.log"; echo "--- backup log"; tail -40 "$work/backup.log"
fi
exit $fail
