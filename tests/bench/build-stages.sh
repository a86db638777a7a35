#!/bin/bash
# Times `relax-rmrr build` stage by stage for a prepared kernel (default debian-6.1: tests/setup/kernel.sh
# debian-6.1), next to ONE plain kbuild compile of the same drivers/iommu/intel/iommu.c measured in the same run,
# and prints the medians and the ratios whole build (source cached, and cold) / one compile (docs/performance.md).
#
#   tests/bench/build-stages.sh [--reps N] [--cold-reps N] [--kernel NAME] [--bin PATH] [--keep DIR]
#
# What "one compile" is: the honest cost of compiling that one file once, the way the kernel itself does: a
# copy of the source's drivers/iommu (so the driver's relative #includes resolve as in-tree), a Kbuild file
# with `obj-y := iommu.o` in its intel/ directory, and `make -C $KBUILD M=<that directory> CC=<the kernel's
# compiler> iommu.o`: kbuild's own flags for a built-in object, objtool included, nothing of ours
# (relax-rmrr adds -ffunction-sections -fdata-sections and a __FILE__ prefix map, and compiles twice). Like
# `relax-rmrr build` the first time for a kbuild tree, it pays kbuild's start-up: that is part of compiling a file
# through kbuild. Later builds for the same tree run kbuild's recorded command (compile/command_cache.h) and
# start the module's make alongside the compiles (klp/module.h): both are measured.
#
# The runs: --reps rounds of {one compile, one build with the source and kbuild's commands cached, one first
# build for the kbuild tree (the source cached, no recorded command), and in the first --cold-reps rounds
# (default: all) one cold build}, so that all see the same machine load. A cold build is what a DKMS build at
# `apt` time is: RELAX_RMRR_CACHE points at a fresh empty directory, so the source cache
# ($RELAX_RMRR_CACHE/source: no extracted entry, no remembered tarball hash) and kbuild's recorded commands
# are empty; `build` hashes the tarball, extracts drivers/iommu from it and compiles through make. (The
# tarball itself is in the page cache, as it is right after dpkg unpacked it.) Medians throughout; the
# per-round ratio is also given (its median is the headline: both halves of a round ran under the same load).
# Stage times come from `build --json` (timings, compile, source); "whole" is the wall time of the process.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
REPS=5 COLD_REPS= KERNEL_NAME=debian-6.1 BIN= KEEP=
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --cold-reps) COLD_REPS=$2; shift 2 ;;
    --kernel) KERNEL_NAME=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
COLD_REPS=${COLD_REPS:-$REPS}
for b in "$BIN" "$REPO/build-bench/generator/relax-rmrr" "$REPO/build/generator/relax-rmrr"; do
  [[ -n $b && -x $b ]] && { BIN=$b; break; }
done
[[ -x $BIN ]] || { echo "ERROR: no relax-rmrr binary: build it (ninja -C build) or pass --bin" >&2; exit 1; }
for t in jq bc /usr/bin/time; do command -v $t >/dev/null || { echo "ERROR: $t is needed (apt-get install jq bc time)" >&2; exit 1; }; done
ENV=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$KERNEL_NAME/kernel.env
[[ -f $ENV ]] || { echo "ERROR: $ENV missing: run tests/setup/kernel.sh $KERNEL_NAME first" >&2; exit 1; }
BUILD_CHROOT=
# shellcheck source=/dev/null
source "$ENV"
[[ -n $KBUILD && -z $BUILD_CHROOT ]] || { echo "ERROR: $KERNEL_NAME is built in a chroot here; this script times host builds" >&2; exit 1; }

TMP=$(mktemp -d /tmp/relax-rmrr-build-stages.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

# kbuild's compiler for this kernel, as relax-rmrr picks it (CONFIG_CC_VERSION_TEXT: "gcc-12 (Debian ...) 12.2.0").
CC_ARG=()
cc_text=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/\1/p' "$KBUILD/include/config/auto.conf" 2>/dev/null || true)
cc_prog=${cc_text%% *}
if [[ -n $cc_prog ]] && command -v "$cc_prog" >/dev/null && [[ $cc_prog != gcc ]]; then CC_ARG=("CC=$cc_prog"); fi

# timed OUT CMD...: runs CMD with GNU time writing "wall user+sys" (the process and all its children) to OUT.
timed() {
  local out=$1; shift
  local rc=0
  /usr/bin/time -f '%e %U %S' -o "$out.time" "$@" || rc=$?
  tail -1 "$out.time" | awk '{printf "%s %.2f\n", $1, $2 + $3}' >"$out"
  return $rc
}
build() {  # build OUT.json [env...]: one `relax-rmrr build --json`; OUT.json.t gets "wall cpu"
  local out=$1; shift
  timed "$out.t" env "$@" "$BIN" build --kbuild "$KBUILD" --source "$SOURCE_TARBALL" --kallsyms "$KALLSYMS" --config "$CONFIG" \
    --image "$VMLINUZ" --output "$TMP/out.ko" --json --quiet >"$out" 2>"$out.err" ||
    { echo "ERROR: relax-rmrr build failed:" >&2; tail -20 "$out.err" >&2; exit 1; }
  cut -d' ' -f1 "$out.t"
}

echo "kernel $KERNEL_NAME ($RELEASE), binary $BIN, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -a cold_whole=() cold_source=() cached_whole=() one_compile=() round_ratio=() one_compile_cpu=() cached_cpu=()
declare -a first_whole=() first_ratio=() cold_ratio=() cold_hash=() cold_extract=() cold_cpu=()

# The cache of the cached runs: filled once, here (not timed): the extracted source and kbuild's compile
# commands (compile/command_cache.h). The "first build for this kbuild tree" runs share the source but start
# each with no recorded command, so their compiles go through make.
WARM=$TMP/warm-cache
mkdir -p "$WARM"
build "$TMP/warm-fill.json" RELAX_RMRR_CACHE="$WARM" >/dev/null
first_cache() {  # first_cache DIR: a cache with the warm source and no kbuild commands
  rm -rf "$1"; mkdir -p "$1"; ln -s "$WARM/source" "$1/source"
}
SRC_ROOT=$(jq -r '.source.root' "$TMP/warm-fill.json")
DRIVER=$(jq -r '.source.driver' "$TMP/warm-fill.json")  # drivers/iommu/intel/iommu.c
[[ $DRIVER == drivers/iommu/intel/iommu.c ]] || { echo "ERROR: this script knows the 5.8+ layout only (got $DRIVER)" >&2; exit 1; }

# The plain compile's tree: a copy of drivers/iommu, Kbuild in intel/.
PLAIN=$TMP/plain
mkdir -p "$PLAIN"
cp -a "$SRC_ROOT/drivers/iommu" "$PLAIN/"
echo 'obj-y := iommu.o' >"$PLAIN/iommu/intel/Kbuild"
one_compile_run() {  # one_compile_run OUT: OUT gets "wall cpu"; prints the wall seconds
  local d=$PLAIN/iommu/intel
  rm -f "$d/iommu.o" "$d/.iommu.o.cmd"
  timed "$1" env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL LC_ALL=C make -C "$KBUILD" M="$d" "${CC_ARG[@]}" iommu.o >"$TMP/plain.log" 2>&1 ||
    { echo "ERROR: the plain kbuild compile failed:" >&2; tail -20 "$TMP/plain.log" >&2; exit 1; }
  [[ -s $d/iommu.o ]] || { echo "ERROR: the plain compile wrote no iommu.o" >&2; exit 1; }
  cut -d' ' -f1 "$1"
}
one_compile_run "$TMP/plain-warm.t" >/dev/null  # warms the page cache for the headers, like the fill build did for the build

for ((i = 1; i <= REPS; i++)); do
  c=$(one_compile_run "$TMP/plain-$i.t")
  w=$(build "$TMP/cached-$i.json" RELAX_RMRR_CACHE="$WARM")
  first_cache "$TMP/first-cache"
  f=$(build "$TMP/first-$i.json" RELAX_RMRR_CACHE="$TMP/first-cache")
  [[ $(jq -r '.compile.original.kbuild' "$TMP/cached-$i.json") == "recorded command" ]] ||
    { echo "ERROR: the cached build did not run the recorded kbuild command" >&2; exit 1; }
  [[ $(jq -r '.compile.original.kbuild' "$TMP/first-$i.json") == make ]] ||
    { echo "ERROR: the first build for the kbuild tree did not run make" >&2; exit 1; }
  first_whole+=("$f")
  first_ratio+=("$(echo "scale=4; $f / $c" | bc)")
  one_compile+=("$c")
  cached_whole+=("$w")
  one_compile_cpu+=("$(cut -d' ' -f2 "$TMP/plain-$i.t")")
  cached_cpu+=("$(cut -d' ' -f2 "$TMP/cached-$i.json.t")")
  round_ratio+=("$(echo "scale=4; $w / $c" | bc)")
  cold_msg=
  if ((i <= COLD_REPS)); then
    cache=$TMP/cold-cache-$i  # empty: no source entry, no remembered hash, no kbuild command
    rm -rf "$cache"; mkdir -p "$cache"
    k=$(build "$TMP/cold-$i.json" RELAX_RMRR_CACHE="$cache")
    [[ $(jq -r '.source.cache_hit' "$TMP/cold-$i.json") == false ]] ||
      { echo "ERROR: the cold run found a cached source: is RELAX_RMRR_CACHE honoured?" >&2; exit 1; }
    [[ $(jq -r '.compile.original.kbuild' "$TMP/cold-$i.json") == make ]] ||
      { echo "ERROR: the cold build found a recorded kbuild command" >&2; exit 1; }
    rm -rf "$cache"
    cold_whole+=("$k")
    cold_source+=("$(jq -r '.timings.source' "$TMP/cold-$i.json")")
    cold_hash+=("$(jq -r '.source.hash_seconds' "$TMP/cold-$i.json")")
    cold_extract+=("$(jq -r '.source.extract_seconds' "$TMP/cold-$i.json")")
    cold_ratio+=("$(echo "scale=4; $k / $c" | bc)")
    cold_cpu+=("$(cut -d' ' -f2 "$TMP/cold-$i.json.t")")
    cold_msg="; cold build ${k}s (source stage $(jq -r '.timings.source' "$TMP/cold-$i.json")s), ratio $(echo "scale=2; $k / $c" | bc)"
  fi
  echo "round $i: one compile ${c}s, build (source cached) ${w}s, ratio $(echo "scale=2; $w / $c" | bc);" \
    "first build for the kbuild tree ${f}s, ratio $(echo "scale=2; $f / $c" | bc)$cold_msg; load $(cut -d' ' -f1 /proc/loadavg)" >&2
done
[[ -n $KEEP ]] && { mkdir -p "$KEEP"; cp "$TMP"/*.json "$KEEP"/; }

median() { [[ $# -gt 0 ]] || { echo "-"; return; }; printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) printf "%.2f\n", v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'; }
stage() {  # stage JQ-EXPRESSION [RUN]: median over the cached runs (RUN: cached, first)
  local vals=()
  for ((i = 1; i <= REPS; i++)); do vals+=("$(jq -r "$1 // 0" "$TMP/${2:-cached}-$i.json")"); done
  median "${vals[@]}"
}

C=$(median "${one_compile[@]}")
W=$(median "${cached_whole[@]}")
echo
echo "relax-rmrr build, $KERNEL_NAME ($RELEASE): medians in seconds ($REPS cached rounds, $COLD_REPS cold runs), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-52s %8s %8s\n' "stage" "seconds" "x compile"
row() { if [[ $2 == - ]]; then printf '%-52s %8s %8s\n' "$1" - -; else printf '%-52s %8s %8.2f\n' "$1" "$2" "$(echo "scale=4; $2 / $C" | bc)"; fi; }
row "one plain kbuild compile of iommu.c (baseline)" "$C"
row "source, cold (empty cache): hash + extract" "$(median "${cold_source[@]}")"
row "  SHA-256 of the tarball" "$(median "${cold_hash[@]}")"
row "  extract drivers/iommu and the Makefile" "$(median "${cold_extract[@]}")"
row "whole build, cold (empty caches: what DKMS runs)" "$(median "${cold_whole[@]}")"
row "analyse, on the critical path (kbuild + config, wait)" "$(stage .timings.analyse)"
row "  analysis thread (kallsyms, vmlinuz, BTF; alongside)" "$(stage .timings.analyse_thread)"
row "source, cached (hash or remembered hash, transform)" "$(stage .timings.source)"
row "compile original + patched (in parallel, recorded command)" "$(stage .timings.compile)"
row "  original alone" "$(stage .compile.original.seconds)"
row "  patched alone" "$(stage .compile.patched.seconds)"
row "diff + plan" "$(stage .timings.diff)"
row "verify (text compare + layout probe)" "$(stage .timings.verify)"
row "klp object (alongside verify)" "$(stage .timings.klp_object)"
row "module link after the plan (gate -> .ko; alongside verify)" "$(stage .timings.module)"
row "whole build, source cached" "$W"
row "first build for the kbuild tree (source cached, make)" "$(median "${first_whole[@]}")"
row "  its compile stage (make, both variants)" "$(stage .timings.compile first)"
echo
echo "ratio whole build (source cached) / one compile: $(echo "scale=2; $W / $C" | bc) (medians);" \
  "median of per-round ratios: $(median "${round_ratio[@]}"); target <= 1.5"
echo "ratio first build for the kbuild tree (source cached, no recorded command) / one compile:" \
  "$(echo "scale=2; $(median "${first_whole[@]}") / $C" | bc) (medians); median of per-round ratios: $(median "${first_ratio[@]}")"
if ((COLD_REPS > 0)); then
  echo "ratio cold build (empty caches) / one compile: $(echo "scale=2; $(median "${cold_whole[@]}") / $C" | bc) (medians);" \
    "median of per-round ratios: $(median "${cold_ratio[@]}"); target <= 3"
  read_bytes=$(jq -r '.source.extract_stream_bytes // empty' "$TMP/cold-1.json")
  if [[ -n $read_bytes ]]; then
    echo "cold extraction read $read_bytes bytes of the tar stream (stopped early:" \
      "$(jq -r '.source.extract_stopped_early' "$TMP/cold-1.json"))"
  fi
fi
CC_CPU=$(median "${one_compile_cpu[@]}")
W_CPU=$(median "${cached_cpu[@]}")
echo "CPU time (user+sys, children included): one compile $CC_CPU s, whole build (source cached) $W_CPU s," \
  "ratio $(echo "scale=2; $W_CPU / $CC_CPU" | bc) (the work done, whatever the load; with $(nproc) CPUs to itself the" \
  "build's wall ratio cannot go below this divided by $(nproc))"
if ((COLD_REPS > 0)); then
  K_CPU=$(median "${cold_cpu[@]}")
  echo "CPU time of the cold build: $K_CPU s, ratio $(echo "scale=2; $K_CPU / $CC_CPU" | bc) to one compile"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
