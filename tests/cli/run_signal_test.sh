#!/usr/bin/env bash
# `understudy run` prints the guest console and stops cleanly (exit 0) on
# SIGTERM and on SIGINT. Needs root and KVM (exit 77 otherwise).
set -u
understudy=$1
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/kvm ] || ! { exec 3<>/dev/kvm; } 2>/dev/null; then
  echo "SKIPPED: needs root and a usable /dev/kvm"
  exit 77
fi
exec 3>&-
fail=0
log=$(mktemp)
for sig in TERM INT; do
  "$understudy" run --no-net >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 150); do grep -q "demo guest: ready" "$log" && break; sleep 0.1; done
  if grep -q "demo guest: ready" "$log"; then echo "ok: the guest console is printed"; else echo "FAILED: no guest console"; fail=1; fi
  kill -s "$sig" "$pid"
  wait "$pid"; status=$?
  if [ $status -eq 0 ] && grep -q "SIG$sig: stopping guest demo" "$log"; then
    echo "ok: SIG$sig stops the guest cleanly"
  else
    echo "FAILED: SIG$sig (status $status)"; cat "$log"; fail=1
  fi
done
rm -f "$log"
exit $fail
