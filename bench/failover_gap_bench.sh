#!/usr/bin/env bash
# How long a client's TCP connection stalls when the primary dies: RUNS times,
# a fresh protected pair in the lab (scripts/lab, scripts/pair-lib.sh), a
# client asking the guest's counter every 100 ms over one connection, the
# primary's understudyd SIGKILLed, the backup takes over. Baseline from the
# same runs: the longest gap the same client saw in the 3 s before the kill.
# Prints JSON (p50/p99 of both; whether every run kept the counter values
# consecutive). Needs root and KVM; bench/run runs it in the nested VM.
#
# Usage: bench/failover_gap_bench.sh [RUNS] [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
out=${2:-}
. scripts/pair-lib.sh
prefix=us-gap-
work=$(mktemp -d /tmp/understudy-gap.XXXXXX)
trap 'pair_cleanup; scripts/lab down "$prefix" >/dev/null; rm -rf "$work"' EXIT

gaps=() steady=() consecutive=yes
for run in $(seq "$runs"); do
  pair_up "$prefix" "$work" build/bin >&2 || { echo "run $run: the pair did not come up" >&2; exit 1; }
  sleep 3
  killed=$EPOCHREALTIME
  pair_kill primary
  pair_wait 30 pair_backup_runs_guest || { echo "run $run: no takeover" >&2; exit 1; }
  sleep 4
  client_stop
  before=$(awk -v k="$killed" '$1 < k && $1 >= k - 3' "$work/client.log" |
           awk 'n++ { if ($1 - t > g) g = $1 - t } { t = $1 } END { printf "%.3f", g }')
  # The gap across the kill: from the last reply before it to the first after.
  gap=$(awk -v k="$killed" '$1 < k { t = $1 } $1 >= k && !d { printf "%.3f", $1 - t; d = 1 }' "$work/client.log")
  whole=$(client_report)
  case "$whole" in (*"skipped=0 out_of_order=0"*) ;; (*) consecutive=no ;; esac
  echo "run $run: gap ${gap} s (steady state ${before} s); $whole" >&2
  gaps+=("$gap") steady+=("$before")
done

pct() { printf '%s\n' "$@" | sort -n | awk -v p="$P" '{ v[NR] = $1 } END { i = int(p * NR + 0.999); if (i < 1) i = 1; print v[i] }'; }
P=0.5; g50=$(pct "${gaps[@]}"); s50=$(pct "${steady[@]}")
P=0.99; g99=$(pct "${gaps[@]}"); s99=$(pct "${steady[@]}")
json=$(cat <<JSON
{
  "benchmark": "failover_gap",
  "runs": $runs,
  "heartbeat_interval_ms": 100,
  "heartbeat_timeout_ms": 1000,
  "client_request_interval_ms": 100,
  "gap_across_failover_s_p50": $g50,
  "gap_across_failover_s_p99": $g99,
  "baseline_longest_gap_before_kill_s_p50": $s50,
  "baseline_longest_gap_before_kill_s_p99": $s99,
  "counter_consecutive_in_every_run": $([ $consecutive = yes ] && echo true || echo false),
  "target_gap_s": 1.0
}
JSON
)
echo "$json"
if [ -n "$out" ]; then mkdir -p "$out"; echo "$json" >"$out/failover_gap.json"; fi
