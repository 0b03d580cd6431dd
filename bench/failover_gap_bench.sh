#!/usr/bin/env bash
# How long a client's TCP connection stalls across a failover: RUNS times each
# of two failures, each on a fresh protected pair in the lab (scripts/lab,
# scripts/pair-lib.sh) with a client asking the guest's counter every 100 ms
# over one connection: the primary's understudyd SIGKILLed (the backup
# detects it), and the primary's client-facing link set down (the primary
# hands over). Baseline from the same runs: the longest gap the same client
# saw in the 3 s before the failure.
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

gaps_kill=() gaps_cut=() steady=() consecutive=yes
one_run() { # kind run
  pair_up "$prefix" "$work" build/bin >&2 || { echo "run $2: the pair did not come up" >&2; exit 1; }
  sleep 3
  local failed=$EPOCHREALTIME
  if [ "$1" = kill ]; then pair_kill primary; else ip -n "${prefix}pri" link set up0 down; fi
  pair_wait 30 pair_backup_runs_guest || { echo "run $2 ($1): no takeover" >&2; exit 1; }
  sleep 4
  client_stop
  local before gap whole
  before=$(awk -v k="$failed" '$1 < k && $1 >= k - 3' "$work/client.log" |
           awk 'n++ { if ($1 - t > g) g = $1 - t } { t = $1 } END { printf "%.3f", g }')
  # The gap across the failure: from the last reply before it to the first after.
  gap=$(awk -v k="$failed" '$1 < k { t = $1 } $1 >= k && !d { printf "%.3f", $1 - t; d = 1 }' "$work/client.log")
  whole=$(client_report)
  case "$whole" in (*"skipped=0 out_of_order=0"*) ;; (*) consecutive=no ;; esac
  echo "run $2 ($1): gap ${gap} s (steady state ${before} s); $whole" >&2
  if [ "$1" = kill ]; then gaps_kill+=("$gap"); else gaps_cut+=("$gap"); fi
  steady+=("$before")
}
for run in $(seq "$runs"); do
  one_run kill "$run"
  one_run cut "$run"
done

pct() { printf '%s\n' "$@" | sort -n | awk -v p="$P" '{ v[NR] = $1 } END { i = int(p * NR + 0.999); if (i < 1) i = 1; print v[i] }'; }
P=0.5; k50=$(pct "${gaps_kill[@]}"); c50=$(pct "${gaps_cut[@]}"); s50=$(pct "${steady[@]}")
P=0.99; k99=$(pct "${gaps_kill[@]}"); c99=$(pct "${gaps_cut[@]}"); s99=$(pct "${steady[@]}")
P=1; kmax=$(pct "${gaps_kill[@]}"); cmax=$(pct "${gaps_cut[@]}")
json=$(cat <<JSON
{
  "benchmark": "failover_gap",
  "runs_per_failure": $runs,
  "heartbeat_interval_ms": 100,
  "heartbeat_timeout_ms": 1000,
  "client_request_interval_ms": 100,
  "gap_primary_killed_s_p50": $k50,
  "gap_primary_killed_s_p99": $k99,
  "gap_primary_killed_s_max": $kmax,
  "gap_client_link_cut_s_p50": $c50,
  "gap_client_link_cut_s_p99": $c99,
  "gap_client_link_cut_s_max": $cmax,
  "baseline_longest_gap_before_kill_s_p50": $s50,
  "baseline_longest_gap_before_kill_s_p99": $s99,
  "counter_consecutive_in_every_run": $([ $consecutive = yes ] && echo true || echo false),
  "target_gap_s": 1.0
}
JSON
)
echo "$json"
if [ -n "$out" ]; then mkdir -p "$out"; echo "$json" >"$out/failover_gap.json"; fi
