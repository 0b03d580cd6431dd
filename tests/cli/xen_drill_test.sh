#!/usr/bin/env bash
# scripts/xen-drill as an operator meets it off a Xen host: --help says what
# it does, bad names are refused with status 2, and on a machine that is not
# a Xen Dom0 it stops with that reason before touching anything.
set -u
drill=$1
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

help=$("$drill" --help); status=$?
check "--help exits 0" '[ $status -eq 0 ]'
check "--help gives the usage" 'grep -q "scripts/xen-drill GUEST \[--json\]" <<<"$help"'
out=$("$drill" 2>&1); status=$?
check "no guest: status 2 and the usage" '[ $status -eq 2 ] && grep -q "xen-drill GUEST" <<<"$out"'
out=$("$drill" 'web01;reboot' 2>&1); status=$?
check "a name with ; is refused (status 2)" '[ $status -eq 2 ] && grep -q "is not a domain name" <<<"$out"'
out=$("$drill" "$(printf 'x%.0s' $(seq 80))" 2>&1); status=$?
check "a 80-character name is refused (status 2)" '[ $status -eq 2 ]'
if [ -e /proc/xen/capabilities ]; then
  echo "SKIPPED: the last check: this machine is a Xen host"
elif [ "$(id -u)" -ne 0 ]; then
  out=$("$drill" web01 2>&1); status=$?
  check "not root: refused with the reason" '[ $status -eq 1 ] && grep -q "run it as root" <<<"$out"'
else
  out=$("$drill" web01 2>&1); status=$?
  check "not a Dom0: refused with the reason" '[ $status -eq 1 ] && grep -q "this is not a Xen Dom0" <<<"$out"'
fi
exit $fail
