#!/bin/bash
# Harness self-test: the proof must FAIL, and fail exactly at step 3, with a livepatch that loads,
# transitions and disables fine but does not relax RMRRs (noop_livepatch.c).
#   tests/e2e/selftest/run-negative.sh --kernel KERNEL --topology TOPOLOGY
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 4 && $1 == --kernel && $3 == --topology ]] || { echo "usage: $0 --kernel KERNEL --topology TOPOLOGY" >&2; exit 2; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-negative.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
rc=0
"$HERE/build.sh" "$2" "$WORK/relax_rmrr_noop.ko" || rc=$?
((rc == 0)) || exit "$rc"   # 77: skipped, no kbuild tree for this kernel
rc=0
"$HERE/../run-proof.sh" --kernel "$2" --topology "$4" --module "$WORK/relax_rmrr_noop.ko" > "$WORK/out.txt" 2>&1 || rc=$?
grep -E '^(PASS|FAIL|SUMMARY)' "$WORK/out.txt" | cut -c1-160
failed=$(grep '^FAIL ' "$WORK/out.txt" | cut -d: -f1 | sort | tr '\n' ' ')
want="FAIL step3.attach FAIL step3.attach_reprobed FAIL step3.resv "
if [[ $rc -ne 0 && $failed == "$want" ]] && grep -q '^PASS step4.attach:' "$WORK/out.txt"; then
  echo "PASS negative control: a livepatch that does not relax RMRRs fails exactly step 3"
else
  echo "FAIL negative control: run-proof exit $rc, failed assertions: '${failed}', wanted '${want}'"
  cat "$WORK/out.txt"
  exit 1
fi
