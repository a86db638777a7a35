#!/bin/bash
# Build the livepatch for one e2e kernel with the project's own generator (the CLI contract that tests/CMakeLists.txt relies on):
#   tests/e2e/build-module.sh KERNEL RELAX_RMRR_BINARY OUT.ko
# Inputs come from kernel.env (tests/setup/kernel.sh KERNEL): the image, its config, the kbuild tree and the
# source, nothing taken from a running kernel. The symbols come from the image's own kallsyms tables, as for a
# kernel that is installed and has never booted (kernel.env's boot dump is the decoder's oracle, not an input
# here); the build's --json summary must say so. Extra generator arguments can be given in
# RELAX_RMRR_E2E_BUILD_ARGS (word-split), e.g. "--keep-tmp /tmp/klp".
# When kernel.env names a BUILD_CHROOT (a kernel built with another suite's compiler), relax-rmrr runs inside
# that chroot, as it would on a host of that suite (built there from this tree: e2e_chroot_relax_rmrr).
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
  "$BIN" build --kbuild "$KBUILD" --source "$SOURCE_TARBALL" --config "$CONFIG" \
    --image "$VMLINUZ" --output "$OUT" --json ${RELAX_RMRR_E2E_BUILD_ARGS:-} > "$OUT.json"
else
  suite=$(basename "$BUILD_CHROOT")
  # shellcheck source=lib.sh
  source "$HERE/lib.sh"
  bin=$(e2e_chroot_relax_rmrr "$BUILD_CHROOT" "$BIN")
  inputs=$(e2e_chroot_inputs "$BUILD_CHROOT" "$KERNEL_NAME" "$VMLINUZ" "$CONFIG" "$SOURCE_TARBALL")
  rm -f "$BUILD_CHROOT$inputs/out.ko"
  # shellcheck disable=SC2086
  "$REPO/tests/setup/chroot.sh" --run "$suite" "$bin" build --kernel-release "$RELEASE" --kbuild "$KBUILD" \
    --source "$inputs/$(basename "$SOURCE_TARBALL")" \
    --config "$inputs/$(basename "$CONFIG")" --image "$inputs/$(basename "$VMLINUZ")" --output "$inputs/out.ko" \
    --json ${RELAX_RMRR_E2E_BUILD_ARGS:-} > "$OUT.json"
  cp "$BUILD_CHROOT$inputs/out.ko" "$OUT"
fi
[[ -s $OUT ]] || { echo "ERROR: relax-rmrr build reported success but wrote no $OUT" >&2; exit 1; }
grep -q '"kind": "image kallsyms"' "$OUT.json" ||
  { echo "ERROR: the build did not take its symbols from the image's kallsyms tables ($OUT.json)" >&2; exit 1; }
echo "symbols: $(grep -o '"from": "[^"]*(.* layout)"' "$OUT.json" | head -n1)"
