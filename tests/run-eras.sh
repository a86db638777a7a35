#!/usr/bin/env bash
# Every kernel era through the QEMU proof: Debian 11's 5.10 and Debian 12's 6.1 (the intel driver's
# attach check), Debian 13's 6.12 and trixie-backports' 7.3 (the IOMMU core's require_direct, IBT).
# For each: set the kernel up (tests/setup/kernel.sh), build the livepatch with relax-rmrr (in the kernel's
# own suite's chroot where its compiler differs from this machine's), and in QEMU, for every RMRR topology,
# prove that the attach is refused, allowed with the livepatch, refused again once disabled, and that the
# control (no livepatch) stays refused; plus the negative self-test and, on require_direct kernels, a VM holding
# the device across disable.
#
#   tests/run-eras.sh [KERNEL...]        default: debian-5.10 debian-6.1 debian-6.12 debian-7.3
#
# CI (tests/run-all.sh) runs 6.1 and 6.12 on every push; this runs all four (about 60 minutes on 2 cores with
# warm caches; the first run downloads about 2 GB and debootstraps bullseye and trixie chroots).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

kernels=("$@")
((${#kernels[@]})) || kernels=(debian-5.10 debian-6.1 debian-6.12 debian-7.3)

tests/setup/install-deps.sh
for k in "${kernels[@]}"; do tests/setup/kernel.sh "$k"; done

build_dir=${RELAX_RMRR_BUILD_DIR:-build-eras}
list=$(IFS=';'; echo "${kernels[*]}")
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAX_RMRR_E2E_KERNELS="$list" > /dev/null
ninja -C "$build_dir" relax-rmrr
cd "$build_dir"
# The proof's own tests, per kernel; the lifecycle, DKMS and verify tests stay with run-all.sh.
regex=$(printf 'e2e_(setup|build_module|proof|control|negative|hold)_(%s)(_|$)' "$(IFS='|'; echo "${kernels[*]}" | sed 's/\./\\./g')")
ctest -L e2e -R "$regex" --output-on-failure --timeout 1800
