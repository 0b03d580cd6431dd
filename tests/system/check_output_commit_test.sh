#!/usr/bin/env bash
# The capture checker of the failover test (check_output_commit.awk) on
# made-up records: it passes output released after its epoch's ack, and it
# catches a segment that left before.
set -u
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat >"$work/epochs" <<'E'
10 100.000 100.010
11 100.025 100.040
12 100.050 100.060
E
# The client sends bytes up to 104 at 100.020; the guest answers acking 104.
cat >"$work/good" <<'C'
100.020000 IP 10.99.0.1.5000 > 10.99.0.2.80: Flags [P.], seq 100:104, ack 7, win 500, length 4: HTTP
100.041000 IP 10.99.0.2.80 > 10.99.0.1.5000: Flags [P.], seq 7:10, ack 104, win 2048, length 3: HTTP
C
# The same reply before epoch 11 (the first to pause after 100.020) was acked.
sed 's/^100.041000/100.030000/' "$work/good" >"$work/bad"
fail=0
if out=$(awk -v guest=10.99.0.2.80 -v min=1 -f "$here/check_output_commit.awk" "$work/epochs" "$work/good"); then
  echo "ok: a reply after its epoch's ack passes ($out)"
else
  echo "FAILED: a correct capture was refused: $out"; fail=1
fi
if out=$(awk -v guest=10.99.0.2.80 -v min=1 -f "$here/check_output_commit.awk" "$work/epochs" "$work/bad"); then
  echo "FAILED: a reply before its epoch's ack passed: $out"; fail=1
else
  echo "$out" | grep -q VIOLATION && echo "ok: a reply before its epoch's ack is caught" || { echo "FAILED: $out"; fail=1; }
fi
if awk -v guest=10.99.0.2.80 -v min=5 -f "$here/check_output_commit.awk" "$work/epochs" "$work/good" >/dev/null; then
  echo "FAILED: too few checked segments passed"; fail=1
else
  echo "ok: a capture with too few segments to judge fails"
fi
exit $fail
