#!/usr/bin/env bash
# README command 2: set up a fresh Debian 12 machine and run every test (unit, kernel, e2e in QEMU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tests/setup/install-deps.sh
tests/setup/kernel.sh debian-6.1
tests/setup/kernel.sh debian-6.12     # the kernel-label tests read its files too (IBT, another era's source)
tests/setup/kernel-patch-sources.sh   # one source tree per layout/era for the `relax-rmrr patch` tests

# The unit tests once more under AddressSanitizer and UndefinedBehaviorSanitizer: every parser of outside data
# (DMAR, ELF, bzImage, BTF, kallsyms, C source) runs there on real and broken inputs.
if [ "${RELAX_RMRR_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRELAX_RMRR_SANITIZE=ON -DRELAX_RMRR_WERROR=ON >/dev/null
  ninja -C build-sanitize unit_tests relax-rmrr
  (cd build-sanitize && ctest -L unit -j2 --output-on-failure)
fi

# The libFuzzer smoke run (tests/fuzz, docs/robustness.md): every parser of outside data for 60 s under ASan and
# UBSan from the seed corpora, two targets at a time (about 5 minutes on 2 cores, plus the build); any crash, leak
# or timeout fails the run. RELAX_RMRR_SKIP_FUZZ=1 skips it.
if [ "${RELAX_RMRR_SKIP_FUZZ:-0}" != 1 ]; then
  tests/fuzz/run-fuzzers.sh "${RELAX_RMRR_FUZZ_SECONDS:-60}"
fi

build_dir=${RELAX_RMRR_BUILD_DIR:-build-tests}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRELAX_RMRR_WERROR=ON >/dev/null
ninja -C "$build_dir"
cd "$build_dir"
# ctest's own summary line ends the output.
ctest --output-on-failure --timeout 1800 "$@"
