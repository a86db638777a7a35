#!/usr/bin/env bash
# Seed corpora for the fuzz targets, one directory per target below OUT:
#   - synthetic inputs from the unit tests' generators (BUILD_DIR/tests/fuzz/fuzz_seeds: ELF, BTF, bzImages of
#     every compression, kallsyms, System.map, config, Module.symvers, intel-iommu source);
#   - the committed regression seeds of tests/fuzz/seeds/<target> (inputs that once found a bug);
#   - the real DMAR tables of tests/fixtures/dmar;
#   - real files of this machine when present, cut to a size the fuzzer mutates quickly: the Debian 6.1 kernel
#     of tests/setup/kernel.sh (vmlinuz head, kallsyms and config slices), the kallsyms tables of every Debian
#     image prepared (.rodata windows and a decodable head, fuzz_seeds --image), /sys/kernel/btf/vmlinux, kernel
#     modules (small real ELF objects with .BTF), the intel-iommu sources relax-rmrr extracted.
# Nothing here is committed: the big files stay where they are. Usage: make-seeds.sh BUILD_DIR OUT
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:?usage: make-seeds.sh BUILD_DIR OUT}
out=${2:?usage: make-seeds.sh BUILD_DIR OUT}
cache=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
kernel_dir=$cache/kernels/debian-6.1

rm -rf "$out"
mkdir -p "$out"/{dmar,kallsyms,image_kallsyms,system_map,bzimage,elf,btf,kconfig,kbuild,transform,devices}
"$build/tests/fuzz/fuzz_seeds" "$out"

# Committed seeds (small): inputs that once crashed a target or found a bug, kept as regression seeds.
for d in "$here"/seeds/*/; do
  [ -d "$d" ] && cp "$d"* "$out/$(basename "$d")/"
done

cp "$repo"/tests/fixtures/dmar/*.dat "$out/dmar/"
[ -r /sys/firmware/acpi/tables/DMAR ] && cp /sys/firmware/acpi/tables/DMAR "$out/dmar/this-host.dat" || true
[ -r "$kernel_dir/qemu-dmar.dat" ] && cp "$kernel_dir/qemu-dmar.dat" "$out/dmar/qemu.dat" || true

# kbuild's parser selector is the first byte (kbuild_fuzz.cpp): 0 Module.symvers, 1 banner, 2 compiler, 3 ftrace.
with_selector() { { printf "\\$(printf %03o "$1")"; head -c 60000; } > "$2"; }

if [ -r "$kernel_dir/kallsyms" ]; then
  # The head, the intel driver's neighbourhood and some module lines: real lines, under 64 KiB each.
  # (|| true: head closing the pipe early is not an error)
  head -n 1500 "$kernel_dir/kallsyms" > "$out/kallsyms/debian-6.1-head.txt"
  grep -m 1500 -C 20 -E 'intel_iommu|dmar_|rmrr' "$kernel_dir/kallsyms" | grep -v '^--$' | head -c 60000 \
    > "$out/kallsyms/debian-6.1-intel.txt" || true
  grep -m 800 $'\t\\[' "$kernel_dir/kallsyms" > "$out/kallsyms/debian-6.1-modules.txt" || true
  grep -v $'\t\\[' "$kernel_dir/kallsyms" | head -n 1500 > "$out/system_map/debian-6.1-head.map" || true
fi
for map in "$kernel_dir"/image/boot/System.map-*; do
  [ -r "$map" ] && cp "$map" "$out/system_map/debian-placeholder-real.map"
done
for config in "$kernel_dir"/image/boot/config-*; do
  [ -r "$config" ] || continue
  # 260 KiB: in four slices, each a run of whole lines.
  split -n l/4 -d "$config" "$out/kconfig/debian-6.1-config-"
  grep -m 1 '^CONFIG_CC_VERSION_TEXT=' "$config" | sed 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/' |
    with_selector 2 "$out/kbuild/debian-6.1-cc.txt" || true
done
headers=$(grep -s '^KBUILD=' "$kernel_dir/kernel.env" | cut -d= -f2- || true)
if [ -n "$headers" ] && [ -r "$headers/Module.symvers" ]; then
  grep -m 600 -E 'iommu|vmlinux' "$headers/Module.symvers" | with_selector 0 "$out/kbuild/debian-6.1-symvers.txt" || true
fi
for vmlinuz in "$kernel_dir"/image/boot/vmlinuz-*; do
  [ -r "$vmlinuz" ] || continue
  strings -n 20 "$vmlinuz" | grep -m 1 '^Linux version' | with_selector 1 "$out/kbuild/debian-6.1-banner.txt" || true
  # The real setup header and the start of the real payload (the rest is cut: a truncated stream).
  head -c 65536 "$vmlinuz" > "$out/bzimage/debian-6.1-vmlinuz-head.bin"
done

# The kallsyms tables of each prepared image's .rodata (the 6.1 one and every other era present): windows
# around the token table and the markers, and the tables cut to their first symbols (about 3 s per image).
for env in "$cache"/kernels/debian-*/kernel.env; do
  [ -r "$env" ] || continue
  vmlinuz=$(grep -s '^VMLINUZ=' "$env" | cut -d= -f2- || true)
  [ -n "$vmlinuz" ] && [ -r "$vmlinuz" ] || continue
  "$build/tests/fuzz/fuzz_seeds" --image "$vmlinuz" "$out/image_kallsyms" "$(basename "$(dirname "$env")")" ||
    echo "make-seeds: no image_kallsyms seeds from $vmlinuz" >&2
done

if [ -r /sys/kernel/btf/vmlinux ]; then
  # The whole running kernel's BTF (5 MiB: slow per run, but the only real one); the fuzzer mutates mostly the
  # small synthetic ones.
  cp /sys/kernel/btf/vmlinux "$out/btf/running-vmlinux.btf"
fi
# Real ELF objects: the smallest kernel modules of the Debian 6.1 image (relocatable, with .BTF and .modinfo).
modules=$(grep -s '^MODULES=' "$kernel_dir/kernel.env" | cut -d= -f2- || true)
if [ -n "$modules" ] && [ -d "$modules" ]; then
  find "$modules" -name '*.ko' -size -24k 2>/dev/null | sort | head -n 4 | while read -r ko; do
    cp "$ko" "$out/elf/module-$(basename "$ko")"
  done || true
fi
for obj in /usr/lib/x86_64-linux-gnu/crt1.o /usr/lib/x86_64-linux-gnu/crti.o; do
  [ -r "$obj" ] && cp "$obj" "$out/elf/" || true
done

# intel-iommu sources of several eras, as relax-rmrr's source cache holds them.
n=0
for c in "$cache"/source/*/drivers/iommu/intel/iommu.c; do
  [ -r "$c" ] || continue
  n=$((n + 1))
  cp "$c" "$out/transform/iommu-real-$n.c"
  [ "$n" -ge 4 ] && break
done

for d in "$out"/*/; do
  printf '%-14s %3d seeds %8d bytes\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)" "$(cat "$d"/* | wc -c)"
done
