#!/usr/bin/env bash
# README command 1, the main job: on a fresh Debian 12 machine, set up, build the relax-rmrr livepatch for
# Debian 12's kernel (6.1) with the generator, and show in QEMU, in one boot of that kernel, a PCI device
# that an RMRR locks: refused by VFIO, accepted once the livepatch is loaded, refused again once disabled.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '\n== %s\n' "$*"; }

say "Setting up (Debian packages, the Debian 6.1 kernel image, headers and source)"
tests/setup/install-deps.sh
tests/setup/kernel.sh debian-6.1 >/dev/null
# shellcheck source=/dev/null
source "${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/debian-6.1/kernel.env"

say "Building relax-rmrr"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build relax-rmrr >/dev/null
bin=build/generator/relax-rmrr
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "Building the livepatch for $RELEASE from its own source (no kernel rebuild)"
"$bin" build --kernel-release "$RELEASE" --image "$VMLINUZ" --config "$CONFIG" \
  --kbuild "$KBUILD" --source "$SOURCE_TARBALL" --output "$work/relax_rmrr.ko"

say "Booting $RELEASE in QEMU with an RMRR on the test device, and trying it"
if ! tests/e2e/run-proof.sh --kernel debian-6.1 --topology root-bus --module "$work/relax_rmrr.ko" >"$work/proof.log" 2>&1; then
  cat "$work/proof.log"
  echo "The demo failed: see the log above." >&2
  exit 1
fi
line() { grep -m1 "$1" "$work/proof.log" | sed 's/.*| //'; }
refusal=$(grep -m1 'ineligible for IOMMU domain attach' "$work/proof.log" | sed 's/.*\] //')
cat <<EOT

What happened, in one boot of the Debian 6.1 kernel:
  1. Before: the device 0000:00:03.0 has an RMRR. Giving it to VFIO (what a VM needs) is refused:
       $(line 'step1.attach')
       the kernel says: $refusal
       reserved region: $(line 'step1.resv' | grep -o 'types=[^ ]*')
  2. The relax-rmrr livepatch is loaded: $(line 'step2.transition')
  3. After: the same device attaches to VFIO:
       $(line 'step3.attach:')
       reserved region of the device probed again: $(line 'step3.resv' | grep -o 'types=[^ ]*')
  4. Disabled again (echo 0 > /sys/kernel/livepatch/relax_rmrr/enabled): refused as before:
       $(line 'step4.attach')
  $(grep '^SUMMARY' "$work/proof.log")
EOT
