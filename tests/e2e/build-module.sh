#!/bin/bash
# Build the livepatch for one e2e kernel with the project's own generator (CLI contract of issue 4):
#   tests/e2e/build-module.sh KERNEL RELAX_RMRR_BINARY OUT.ko
# Inputs come from kernel.env (tests/setup/kernel.sh KERNEL). Extra generator arguments can be given in
# RELAX_RMRR_E2E_BUILD_ARGS (word-split), e.g. "--keep-tmp /tmp/klp".
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 KERNEL RELAX_RMRR_BINARY OUT.ko" >&2; exit 2; }
KERNEL_NAME=$1 BIN=$2 OUT=$3
ENV=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$KERNEL_NAME/kernel.env
[[ -f $ENV ]] || { echo "ERROR: $ENV missing: run tests/setup/kernel.sh $KERNEL_NAME first" >&2; exit 1; }
[[ -x $BIN ]] || { echo "ERROR: relax-rmrr binary not found: $BIN" >&2; exit 1; }
# shellcheck source=/dev/null
source "$ENV"
[[ -n $KBUILD ]] || { echo "ERROR: no kbuild tree for $KERNEL_NAME on this host (KBUILD empty in $ENV)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
# shellcheck disable=SC2086 # extra arguments are meant to be split
"$BIN" build --kbuild "$KBUILD" --source "$SOURCE_TARBALL" --kallsyms "$KALLSYMS" --config "$CONFIG" \
  --image "$VMLINUZ" --output "$OUT" ${RELAX_RMRR_E2E_BUILD_ARGS:-}
[[ -s $OUT ]] || { echo "ERROR: relax-rmrr build reported success but wrote no $OUT" >&2; exit 1; }
