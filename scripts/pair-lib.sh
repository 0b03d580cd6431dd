# A protected pair in the lab (scripts/lab), shared by scripts/demo and the
# failover tests: the daemons' configuration, starting and stopping them, and
# a TCP client that keeps asking the guest's counter and logs every reply.
# Source it, then call pair_init PREFIX WORKDIR BINDIR.

pair_init() { # prefix workdir bindir
  PAIR_PREFIX=$1 PAIR_WORK=$2 PAIR_BIN=$3
  PAIR_PRI=${1}pri PAIR_BAK=${1}bak PAIR_CLI=${1}cli
  PAIR_PIDS=()
  mkdir -p "$PAIR_WORK"
  [ -f "$PAIR_WORK/pair.key" ] || (umask 077; openssl rand -hex 32 >"$PAIR_WORK/pair.key")
  pair_config primary backup "10.98.0.2, 10.99.0.12" yes 10.98.0.2
  pair_config backup primary "10.98.0.1, 10.99.0.11" no 10.98.0.1
}

# PAIR_REPROTECT=auto: a host that took the guest over protects it again
# toward the other as soon as that one is back.
pair_config() { # node peer paths autostart peer-stream
  mkdir -p "$PAIR_WORK/$1"
  cat >"$PAIR_WORK/$1.conf" <<CONF
[daemon]
node = $1
control_socket = $PAIR_WORK/$1/control.sock
state_dir = $PAIR_WORK/$1/state
metrics = 127.0.0.1:9464
[replication]
listen = 0.0.0.0:7300
psk_file = $PAIR_WORK/pair.key
interval_ms = 25
compression = xor+lz4
[heartbeat]
peer_node = $2
paths = $3
interval_ms = 100
timeout_ms = 1000
witness = 10.99.0.1
track_interface = up0
reprotect = ${PAIR_REPROTECT:-manual}
peer_stream = $5
[guest demo]
kernel = $PAIR_BIN/demo-guest.elf
memory_mib = 16
tap = us-tap0
ip = 10.99.0.2/24
disk = $PAIR_WORK/$1/demo.img
disk_mib = 1
dirty_rate = 1000
autostart = $4
CONF
}

pair_ns() { [ "$1" = primary ] && echo "$PAIR_PRI" || echo "$PAIR_BAK"; }

pair_start() { # node
  local ns; ns=$(pair_ns "$1")
  rm -f "$PAIR_WORK/$1/control.sock"
  ip netns exec "$ns" "$PAIR_BIN/understudyd" --config "$PAIR_WORK/$1.conf" >>"$PAIR_WORK/$1.log" 2>&1 &
  eval "PAIR_PID_$1=$!"
  PAIR_PIDS+=($!)
  for _ in $(seq 300); do [ -S "$PAIR_WORK/$1/control.sock" ] && return 0; sleep 0.1; done
  echo "pair: understudyd $1 did not start:"; tail -20 "$PAIR_WORK/$1.log"; return 1
}

pair_kill() { # node: SIGKILL, as a power cut would
  local pid; eval "pid=\${PAIR_PID_$1:-}"
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  eval "PAIR_PID_$1="
  return 0
}

pair_cli() { # node args...: understudy against that node's daemon
  local node=$1; shift
  UNDERSTUDY_SOCKET=$PAIR_WORK/$node/control.sock ip netns exec "$(pair_ns "$node")" "$PAIR_BIN/understudy" "$@"
}

pair_wait() { # seconds command...: true once the command succeeds (by the clock: a command may be slow)
  local secs=$1; shift
  local until=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$until" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

pair_protected() { pair_cli primary status demo --json | grep -q '"state": *"protected"'; }
pair_guest_answers() { [ -n "$(printf get | ip netns exec "$PAIR_CLI" nc -u -w1 -W1 10.99.0.2 7777 2>/dev/null)" ]; }

# The client: one TCP connection to the guest's port 80, "inc" every 100 ms,
# every reply logged with the time it arrived (bash's own clock: no process
# per line, which would lag behind a burst of replies).
client_start() {
  cat >"$PAIR_WORK/client.sh" <<CLIENT
while :; do echo inc; sleep 0.1; done | ip netns exec $PAIR_CLI nc 10.99.0.2 80 |
  while IFS= read -r line; do printf '%s %s\n' "\$EPOCHREALTIME" "\$line"; done >"$PAIR_WORK/client.log"
CLIENT
  : >"$PAIR_WORK/client.log"
  setsid bash "$PAIR_WORK/client.sh" &
  PAIR_CLIENT=$!
}

client_stop() {
  if [ -n "${PAIR_CLIENT:-}" ]; then kill -- -"$PAIR_CLIENT" 2>/dev/null || true; fi
  PAIR_CLIENT=
  return 0
}

# Prints: replies, first, last, gaps in the sequence, values out of order, the
# longest time between two replies and when it began.
client_report() { # [after-unix-time]
  awk -v after="${1:-0}" '
    $1 >= after && $2 ~ /^[0-9]+$/ {
      if (n > 0) {
        if ($2 <= last) bad++
        else if ($2 != last + 1) skipped += $2 - last - 1
        if ($1 - t > gap) { gap = $1 - t; gap_at = t }
      } else first = $2
      last = $2; t = $1; n++
    }
    END { printf "replies=%d first=%s last=%s skipped=%d out_of_order=%d longest_gap_s=%.3f gap_began=%.3f\n",
                 n, first, last, skipped + 0, bad + 0, gap, gap_at }' "$PAIR_WORK/client.log"
}

pair_cleanup() {
  client_stop
  for p in "${PAIR_PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  return 0
}

# A fresh lab, both daemons, the guest protected, the client connected and
# served. Prints what failed and returns 1 if any of it does.
pair_up() { # prefix workdir bindir
  pair_cleanup
  local here; here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  "$here/lab" up "$1" >/dev/null || { echo "pair: lab up failed"; return 1; }
  rm -rf "$2/primary" "$2/backup"
  pair_init "$1" "$2" "$3"
  pair_start backup && pair_start primary || return 1
  pair_wait 60 pair_guest_answers || { echo "pair: the guest does not answer on the primary"; return 1; }
  pair_cli primary protect demo --peer 10.98.0.2 >/dev/null
  pair_wait 120 pair_protected || { echo "pair: not protected"; tail -20 "$2/primary.log"; return 1; }
  pair_wait 10 pair_backup_hears_primary || { echo "pair: the backup does not hear the primary's heartbeat"; return 1; }
  client_start
  # An emulated guest (UNDERSTUDY_EMULATED) may take a while to answer.
  pair_wait "$([ -n "${UNDERSTUDY_EMULATED:-}" ] && echo 90 || echo 30)" pair_client_served || {
    echo "pair: the client gets no replies ($(client_report))"
    pair_cli primary status 2>&1 | head -8
    tail -15 "$2/primary.log"
    return 1
  }
}

pair_backup_hears_primary() { pair_cli backup status | grep -q 'peer alive'; }
pair_backup_runs_guest() { pair_cli backup status --json | grep -q '"role": *"activated"'; }
pair_client_served() { [ "$(client_report | sed 's/.*replies=\([0-9]*\).*/\1/')" -gt 5 ]; }
