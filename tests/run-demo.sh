#!/usr/bin/env bash
# README command 1: set up, build relax-rmrr, and show what it tells the admin of an HP ProLiant DL360 G7
# (its real DMAR table, bundled in tests/fixtures).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/setup/install-deps.sh >/dev/null
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build relax-rmrr >/dev/null
bin=build/generator/relax-rmrr

echo "== relax-rmrr dmar: the firmware table of an HP ProLiant DL360 G7 =="
"$bin" dmar tests/fixtures/dmar/hp-proliant-dl360-g7.dat
echo
echo "== relax-rmrr doctor on a host with that table and the IOMMU on =="
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/sys/firmware/acpi/tables" "$root/sys/class/iommu/dmar0" "$root/proc/sys/kernel"
cp tests/fixtures/dmar/hp-proliant-dl360-g7.dat "$root/sys/firmware/acpi/tables/DMAR"
echo "6.1.0-56-amd64" > "$root/proc/sys/kernel/osrelease"
echo "BOOT_IMAGE=/vmlinuz intel_iommu=on" > "$root/proc/cmdline"
"$bin" doctor --root "$root" || true
