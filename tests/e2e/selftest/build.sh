#!/bin/bash
# Build the negative-control livepatch (noop_livepatch.c) for one e2e kernel, out of tree.
#   tests/e2e/selftest/build.sh KERNEL OUT.ko     (needs tests/setup/kernel.sh KERNEL first)
# Exit 77 (skip) when the kernel has no kbuild tree on this host.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -eq 2 ]] || { echo "usage: $0 KERNEL OUT.ko" >&2; exit 2; }
ENV=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$1/kernel.env
[[ -f $ENV ]] || { echo "ERROR: $ENV missing: run tests/setup/kernel.sh $1 first" >&2; exit 1; }
BUILD_CHROOT=
# shellcheck source=/dev/null
source "$ENV"
if [[ -z $KBUILD ]]; then
  echo "SKIP: no kbuild tree for $1 on this host (KBUILD empty in $ENV)" >&2
  exit 77
fi
[[ -f $BUILD_CHROOT$KBUILD/Makefile ]] || { echo "ERROR: kbuild tree $BUILD_CHROOT$KBUILD missing" >&2; exit 1; }
# A kernel built with another suite's compiler is built against inside that suite's chroot.
WORK=$(mktemp -d "$BUILD_CHROOT${TMPDIR:-/tmp}/relax-rmrr-noop.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/noop_livepatch.c" "$HERE/Kbuild" "$WORK/"
make_in() {
  if [[ -n $BUILD_CHROOT ]]; then
    "$HERE/../../setup/chroot.sh" --run "$(basename "$BUILD_CHROOT")" make "$@"
  else
    make "$@"
  fi
}
make_in -s -C "$KBUILD" M="${WORK#"$BUILD_CHROOT"}" modules > "$WORK/build.log" 2>&1 || {
  cat "$WORK/build.log" >&2
  echo "ERROR: building the noop livepatch against $KBUILD failed" >&2
  exit 1
}
cp "$WORK/relax_rmrr_noop.ko" "$2"
