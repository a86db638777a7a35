#!/bin/bash
# Checks dmar-add-rmrr against two independent decoders: iasl -d (acpica-tools) and the project's own
# `relax-rmrr dmar --json`. Inputs: QEMU's DMAR from the e2e cache when present, and the real firmware
# tables in tests/fixtures/dmar (DRHD, RMRR, ATSR, RHSA, ANDD, SATC mixes).
#
#   tests/e2e/tools/test-dmar-add-rmrr.sh [RELAX_RMRR_BINARY]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES=$HERE/../../fixtures/dmar
RELAX_RMRR=${1:-$HERE/../../../build/generator/relax-rmrr}
CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}

for c in gcc iasl jq; do
  command -v "$c" > /dev/null || { echo "ERROR: $c missing (apt-get install gcc acpica-tools jq)" >&2; exit 1; }
done
[[ -x $RELAX_RMRR ]] || { echo "ERROR: relax-rmrr binary not found at $RELAX_RMRR (pass its path)" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-dmartest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
gcc -O2 -Wall -Wextra -Werror -o "$WORK/dmar-add-rmrr" "$HERE/dmar-add-rmrr.c"
TOOL=$WORK/dmar-add-rmrr
FAILED=0

ok() { echo "PASS $*"; }
ko() {
  echo "FAIL $*"
  FAILED=1
}

# Subtable types in table order, as iasl sees them ("0000 0001 ...").
iasl_types() {
  (cd "$WORK" && iasl -d -p iasl-out "$1" > "$WORK/iasl.log" 2>&1) || return 1
  grep -q -i 'error' "$WORK/iasl.log" && return 1
  grep -o 'Subtable Type : 000[0-9]' "$WORK/iasl-out.dsl" | awk '{ print $4 }' | tr '\n' ' '
}

# The expected order: RMRRs inserted after the last DRHD/RMRR that precedes the first other structure.
expected_types() { # "OLD TYPES" COUNT
  awk -v n="$2" '{
    done = 0
    for (i = 1; i <= NF; i++) {
      if (!done && $i + 0 > 1) { for (k = 0; k < n; k++) printf "0001 "; done = 1 }
      printf "%s ", $i
    }
    if (!done) for (k = 0; k < n; k++) printf "0001 "
  }' <<< "$1"
}

check_table() { # NAME INPUT
  local name=$1 in=$2 out=$WORK/out.aml old_types new_types want old_json new_json
  old_types=$(iasl_types "$in") || { ko "$name: iasl cannot decode the input"; return; }
  old_json=$("$RELAX_RMRR" dmar --json --ignore-checksum "$in")
  if ! "$TOOL" "$in" "$out" --rmrr base=0xf0000,limit=0xfffff,endpoint=00:06.0/00.0 \
    --rmrr base=0x7f000000,limit=0x7f7fffff,bridge=00:1c.0,endpoint=00:03.0 2> "$WORK/tool.log"; then
    ko "$name: dmar-add-rmrr failed: $(cat "$WORK/tool.log")"
    return
  fi
  new_types=$(iasl_types "$out") || { ko "$name: iasl -d reports an error on the output"; return; }
  want=$(expected_types "$old_types" 2)
  if [[ $new_types == "$want" ]]; then
    ok "$name: iasl decodes it, order $new_types"
  else
    ko "$name: iasl order '$new_types', want '$want'"
  fi
  grep -q 'Checksum : ' "$WORK/iasl-out.dsl" || ko "$name: iasl shows no checksum"

  new_json=$("$RELAX_RMRR" dmar --json "$out") || { ko "$name: relax-rmrr dmar rejects the output"; return; }
  local checks
  checks=$(jq -rn --argjson o "$old_json" --argjson n "$new_json" '[
      ($n.checksum_ok == true),
      ($n.oem_revision == $o.oem_revision + 1),
      ($n.oem_id == $o.oem_id and $n.oem_table_id == $o.oem_table_id),
      ($n.drhd == $o.drhd),
      ($n.rmrr[0:($o.rmrr | length)] | map(del(.offset)) ) == ($o.rmrr | map(del(.offset))),
      (($n.rmrr | length) == ($o.rmrr | length) + 2),
      ($n.rmrr[-2] | .base == 983040 and .limit == 1048575 and (.scopes | length) == 1
         and .scopes[0].type == "endpoint" and .scopes[0].start_bus == 0 and .scopes[0].path == [[6,0],[0,0]]),
      ($n.rmrr[-1] | .base == 2130706432 and .limit == 2139095039 and (.scopes | length) == 2
         and .scopes[0].type == "bridge" and .scopes[0].path == [[28,0]]
         and .scopes[1].type == "endpoint" and .scopes[1].path == [[3,0]])
    ] | map(if . then "1" else "0" end) | join("")')
  if [[ $checks == 11111111 ]]; then
    ok "$name: relax-rmrr dmar agrees (checksum, OEM revision +1, DRHDs and old RMRRs kept, new RMRRs exact)"
  else
    ko "$name: relax-rmrr dmar disagrees (checks $checks: checksum, oem_rev, ids, drhd, old rmrr, count, rmrr1, rmrr2)"
  fi
}

expect_error() { # DESCRIPTION ARGS...
  local desc=$1
  shift
  if "$TOOL" "$@" > /dev/null 2> "$WORK/err.log"; then
    ko "rejects $desc"
  else
    ok "rejects $desc: $(head -n1 "$WORK/err.log")"
  fi
}

shopt -s nullglob
inputs=("$FIXTURES"/*.dat "$CACHE_ROOT"/kernels/*/qemu-dmar.dat "$CACHE_ROOT"/qemu-dmar/*.dat)
((${#inputs[@]})) || { echo "ERROR: no DMAR inputs in $FIXTURES" >&2; exit 1; }
for f in "${inputs[@]}"; do
  name=${f#"$CACHE_ROOT"/}
  check_table "${name#"$FIXTURES"/}" "$f"
done

any=${inputs[0]}
expect_error "an unaligned base" "$any" "$WORK/x" --rmrr base=0xf0001,limit=0xfffff,endpoint=00:03.0
expect_error "an unaligned limit" "$any" "$WORK/x" --rmrr base=0xf0000,limit=0xffffe,endpoint=00:03.0
expect_error "limit below base" "$any" "$WORK/x" --rmrr base=0xf0000,limit=0xeffff,endpoint=00:03.0
expect_error "an RMRR without scope" "$any" "$WORK/x" --rmrr base=0xf0000,limit=0xfffff
expect_error "a bad device path" "$any" "$WORK/x" --rmrr base=0xf0000,limit=0xfffff,endpoint=00:20.0
expect_error "an unknown key" "$any" "$WORK/x" --rmrr base=0xf0000,limit=0xfffff,ioapic=00:03.0
expect_error "a table that is not DMAR" "$FIXTURES/SOURCES.md" "$WORK/x" --rmrr base=0xf0000,limit=0xfffff,endpoint=00:03.0
expect_error "no --rmrr" "$any" "$WORK/x"

exit "$FAILED"
