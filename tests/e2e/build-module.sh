#!/bin/bash
# Build the livepatch for one e2e kernel with the project's own generator (CLI contract of issue 4):
#   tests/e2e/build-module.sh KERNEL RELAX_RMRR_BINARY OUT.ko
# Inputs come from kernel.env (tests/setup/kernel.sh KERNEL). Extra generator arguments can be given in
# RELAX_RMRR_E2E_BUILD_ARGS (word-split), e.g. "--keep-tmp /tmp/klp".
# When kernel.env names a BUILD_CHROOT (a kernel built with another suite's compiler), relax-rmrr is built
# from this source tree inside that chroot and runs there, as it would on a host of that suite.
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 KERNEL RELAX_RMRR_BINARY OUT.ko" >&2; exit 2; }
KERNEL_NAME=$1 BIN=$2 OUT=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ENV=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$KERNEL_NAME/kernel.env
[[ -f $ENV ]] || { echo "ERROR: $ENV missing: run tests/setup/kernel.sh $KERNEL_NAME first" >&2; exit 1; }
BUILD_CHROOT=
# shellcheck source=/dev/null
source "$ENV"
[[ -n $KBUILD ]] || { echo "ERROR: no kbuild tree for $KERNEL_NAME on this host (KBUILD empty in $ENV)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"

if [[ -z $BUILD_CHROOT ]]; then
  [[ -x $BIN ]] || { echo "ERROR: relax-rmrr binary not found: $BIN" >&2; exit 1; }
  # shellcheck disable=SC2086 # extra arguments are meant to be split
  "$BIN" build --kbuild "$KBUILD" --source "$SOURCE_TARBALL" --kallsyms "$KALLSYMS" --config "$CONFIG" \
    --image "$VMLINUZ" --output "$OUT" ${RELAX_RMRR_E2E_BUILD_ARGS:-}
else
  suite=$(basename "$BUILD_CHROOT")
  in_chroot() { "$REPO/tests/setup/chroot.sh" --run "$suite" "$@"; }
  # This source tree, as git tracks it, goes into the chroot and is built there (incrementally).
  src=/src/relax-rmrr
  mkdir -p "$BUILD_CHROOT$src"
  (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | grep -zv '^build' | tar --null -T - -cf -) |
    tar -xf - -C "$BUILD_CHROOT$src"
  echo "building relax-rmrr inside the $suite chroot" >&2
  in_chroot bash -c "cmake -S $src -B $src/build -G Ninja -DRELAX_RMRR_TESTS=OFF >/dev/null && ninja -C $src/build relax-rmrr >/dev/null"
  inputs=/inputs/$KERNEL_NAME
  mkdir -p "$BUILD_CHROOT$inputs"
  for f in "$KALLSYMS" "$VMLINUZ" "$CONFIG" "$SOURCE_TARBALL"; do
    cmp -s "$f" "$BUILD_CHROOT$inputs/$(basename "$f")" || cp "$f" "$BUILD_CHROOT$inputs/"
  done
  rm -f "$BUILD_CHROOT$inputs/out.ko"
  # shellcheck disable=SC2086
  in_chroot "$src/build/generator/relax-rmrr" build --kernel-release "$RELEASE" --kbuild "$KBUILD" \
    --source "$inputs/$(basename "$SOURCE_TARBALL")" --kallsyms "$inputs/$(basename "$KALLSYMS")" \
    --config "$inputs/$(basename "$CONFIG")" --image "$inputs/$(basename "$VMLINUZ")" --output "$inputs/out.ko" \
    ${RELAX_RMRR_E2E_BUILD_ARGS:-}
  cp "$BUILD_CHROOT$inputs/out.ko" "$OUT"
fi
[[ -s $OUT ]] || { echo "ERROR: relax-rmrr build reported success but wrote no $OUT" >&2; exit 1; }
