#!/bin/bash
# Build the negative-control livepatch (noop_livepatch.c) for one e2e kernel, out of tree.
#   tests/e2e/selftest/build.sh KERNEL OUT.ko     (needs tests/setup/kernel.sh KERNEL first)
# Exit 77 (skip) when the kernel has no kbuild tree on this host.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 KERNEL OUT.ko" >&2; exit 2; }
ENV=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$1/kernel.env
[[ -f $ENV ]] || { echo "ERROR: $ENV missing: run tests/setup/kernel.sh $1 first" >&2; exit 1; }
# shellcheck source=/dev/null
source "$ENV"
if [[ -z $KBUILD ]]; then
  echo "SKIP: no kbuild tree for $1 on this host (KBUILD empty in $ENV)" >&2
  exit 77
fi
[[ -f $KBUILD/Makefile ]] || { echo "ERROR: kbuild tree $KBUILD missing" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-noop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/noop_livepatch.c" "$HERE/Kbuild" "$WORK/"
make -s -C "$KBUILD" M="$WORK" modules > "$WORK/build.log" 2>&1 || {
  cat "$WORK/build.log" >&2
  echo "ERROR: building the noop livepatch against $KBUILD failed" >&2
  exit 1
}
cp "$WORK/relax_rmrr_noop.ko" "$2"
