#!/usr/bin/env bash
# `understudy run --help` documents every option, and bad options are refused
# with a message and exit status 2, before anything is started.
set -u
understudy=$1
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

help=$("$understudy" run --help); status=$?
check "--help exits 0" '[ $status -eq 0 ]'
for opt in --name --kernel --mem --tap --no-net --ip --mac --port --disk --disk-size --dirty-rate --guest-arg --help; do
  check "--help documents $opt" 'grep -q -- "$opt" <<<"$help"'
done

refused() { # expected-message args...
  local expect=$1; shift
  out=$("$understudy" run "$@" 2>&1); status=$?
  check "run $* is refused (status 2)" '[ $status -eq 2 ]'
  check "run $* says: $expect" 'grep -qF -- "$expect" <<<"$out"'
}
refused "--mem 1: must be 4 to 16384" --mem 1
refused "not a dotted-quad" --ip 10.1.2
refused "prefix length" --ip 10.1.2.3/40
refused "six hex bytes" --mac 52:54:00
refused "multicast" --mac 01:00:5e:00:00:01
refused "--port 0: must be 1 to 65535" --port 0
refused "unrecognised option" --frobnicate
refused "--guest-arg: at most 127" --guest-arg "$(printf 'x%.0s' $(seq 200))"

out=$("$understudy" frobnicate 2>&1); status=$?
check "an unknown command is refused" '[ $status -eq 2 ] && grep -q "unknown command" <<<"$out"'
exit $fail
