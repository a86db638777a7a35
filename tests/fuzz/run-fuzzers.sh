#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz, clang, ASan + UBSan) and runs each for SECONDS (default 60) from
# fresh seed corpora (make-seeds.sh). Fails on any crash, sanitizer report, leak, timeout or out-of-memory.
# Prints per target: executions, executions per second, coverage (libFuzzer's final cov:), features, corpus
# size, crashes; and the wall time.
#
#   tests/fuzz/run-fuzzers.sh [SECONDS] [TARGET...]
#
# Environment: RELAX_RMRR_FUZZ_JOBS (targets run at the same time, default 2), RELAX_RMRR_FUZZ_BUILD_DIR
# (default build-fuzz), RELAX_RMRR_FUZZ_KEEP_CORPUS=1 (start from the corpus a previous run left, not from the
# seeds), RELAX_RMRR_FUZZ_OUT (corpora, logs, artifacts; default BUILD_DIR/fuzz-out). Reproduce a crash:
# build-fuzz/tests/fuzz/<target>_fuzz build-fuzz/fuzz-out/artifacts/<file>.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${1:-60}
shift || true
all_targets=(dmar kallsyms image_kallsyms system_map bzimage elf btf kconfig kbuild transform devices)
[ $# -gt 0 ] && targets=("$@") || targets=("${all_targets[@]}")
jobs=${RELAX_RMRR_FUZZ_JOBS:-2}
build=${RELAX_RMRR_FUZZ_BUILD_DIR:-build-fuzz}
out=${RELAX_RMRR_FUZZ_OUT:-$build/fuzz-out}
started=$(date +%s)

cxx=${RELAX_RMRR_FUZZ_CXX:-$(command -v clang++ || command -v clang++-14 || true)}
cc=${RELAX_RMRR_FUZZ_CC:-$(command -v clang || command -v clang-14 || true)}
if [ -z "$cxx" ] || [ -z "$cc" ]; then
  echo "run-fuzzers: clang is needed (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 3
fi
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_C_COMPILER="$cc" -DRELAX_RMRR_FUZZ=ON -DRELAX_RMRR_TESTS=OFF >/dev/null
ninja -C "$build" fuzzers
built=$(date +%s)

tests/fuzz/make-seeds.sh "$build" "$out/seeds" >/dev/null
mkdir -p "$out/artifacts" "$out/logs"

# Largest input the fuzzer makes per target: text parsers get 64 KiB, binary ones what their seeds need.
max_len() {
  case $1 in
    dmar) echo 8192 ;;
    btf) echo 6291456 ;;          # the running kernel's BTF is a seed
    transform) echo 262144 ;;      # real intel-iommu.c files are 150-200 KiB
    bzimage | elf) echo 1048576 ;;
    *) echo 65536 ;;
  esac
}

run_one() {
  local t=$1
  local corpus=$out/corpus/$t
  if [ "${RELAX_RMRR_FUZZ_KEEP_CORPUS:-0}" != 1 ] || [ ! -d "$corpus" ]; then
    rm -rf "$corpus"
    mkdir -p "$corpus"
    cp "$out/seeds/$t"/* "$corpus/"
  fi
  rm -f "$out/artifacts/$t-"*
  # -timeout: one input taking 30 s is a hang; -rss_limit_mb: a unit using 2 GiB is a failure (decompression
  # bombs are capped at 32 MiB in bzimage_fuzz). Leak detection is on (ASan).
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/${t}_fuzz" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 \
    -max_len="$(max_len "$t")" -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" \
    "$corpus" >"$out/logs/$t.log" 2>&1
  echo $? >"$out/logs/$t.rc"
  set -e
}

running=0
for t in "${targets[@]}"; do
  if [ ! -x "$build/tests/fuzz/${t}_fuzz" ]; then
    echo "run-fuzzers: no target $t (known: ${all_targets[*]})" >&2
    exit 2
  fi
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true
finished=$(date +%s)

stat() { grep -m 1 "^stat::$2:" "$out/logs/$1.log" | awk '{print $2}'; }
failed=0
printf '%-14s %12s %9s %7s %7s %14s %8s  %s\n' target execs exec/s cov ft corpus crashes result
for t in "${targets[@]}"; do
  log=$out/logs/$t.log
  rc=$(cat "$out/logs/$t.rc")
  execs=$(stat "$t" number_of_executed_units)
  speed=$(stat "$t" average_exec_per_sec)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  files=$(find "$out/corpus/$t" -type f | wc -l)
  bytes=$(du -sb "$out/corpus/$t" | cut -f1)
  crashes=$(find "$out/artifacts" -name "$t-*" -type f | wc -l)
  result=ok
  if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
    result="FAILED (exit $rc; see $log)"
    failed=1
  fi
  printf '%-14s %12s %9s %7s %7s %6s/%-7s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" \
    "$files" "$((bytes / 1024))K" "$crashes" "$result"
done
echo "run-fuzzers: ${#targets[@]} targets x ${seconds}s, $jobs at a time: build $((built - started))s," \
  "fuzzing $((finished - built))s, wall $((finished - started))s ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
if [ "$failed" != 0 ]; then
  for t in "${targets[@]}"; do
    [ "$(cat "$out/logs/$t.rc")" = 0 ] && continue
    echo "---- $t ----"
    grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR' "$out/logs/$t.log" | head -n 60
  done
  exit 1
fi
