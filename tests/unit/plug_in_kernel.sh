#!/bin/sh
# Runs the plug-qdisc tests (unit_tests "[plug]") where they can really run:
# a kernel with sch_plug and ifb (the nested VM of scripts/kvm-in-qemu has
# them). Elsewhere it reports itself skipped (exit 77) with the reason.
unit_tests=$1
out=$("$unit_tests" "[plug]" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 0 ] || exit $rc
if echo "$out" | grep -q "SKIPPED"; then
  echo "SKIPPED: plug qdisc tests: $(echo "$out" | grep -m1 -o 'SKIPPED: .*')"
  exit 77
fi
exit 0
