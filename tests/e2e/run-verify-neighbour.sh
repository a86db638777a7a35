#!/bin/bash
# Safety on real "neighbouring stable release" pairs (label e2e). Each pair is a target kernel and the
# linux-source of another stable release of the same major version, same era and same compiler, so nothing but
# the code itself can tell them apart once the version number is out of the way:
#
#   tests/e2e/run-verify-neighbour.sh RELAX_RMRR_BINARY
#
# A. Debian 12's bookworm-backports kernel 6.12.95 (kernel debian-6.12-bpo: image, headers in a bookworm chroot,
#    kallsyms of a real boot) with the linux-source of Debian 13's 6.12.1xx, what a backports user finds under
#    "linux-source-6.12": the tarball's Makefile names another release than the kbuild tree: refused at once.
# B. The same, given only drivers/iommu (no Makefile, no version to compare): refused because the driver does
#    not compile against the target's headers, or because a compared function differs.
# C. Debian 13's 6.12.N with the source of 6.12.N-1 (its Makefile set to N, as a distribution update that keeps
#    the number): decided by the code alone, refused naming a function and offset or passed because every
#    compared function is byte-identical; the test reports which, and whether intel/iommu.c changed.
# In every refusal, build writes no module.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
[[ $# -eq 1 ]] || { echo "usage: $0 RELAX_RMRR_BINARY" >&2; exit 2; }
BIN=$(realpath "$1")
CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}

load_env() {  # load_env KERNEL: kernel.env's variables, prefixed with the given prefix
  local f=$CACHE_ROOT/kernels/$1/kernel.env
  [[ -f $f ]] || die "$f missing: run tests/setup/kernel.sh $1 first"
  # shellcheck source=/dev/null
  (source "$f" && declare -p RELEASE VERSION VMLINUZ CONFIG KBUILD BUILD_CHROOT SOURCE_TARBALL KALLSYMS)
}
eval "$(load_env debian-6.12 | sed 's/^declare -- /declare -- SRC_/')"
eval "$(load_env debian-6.12-bpo)"
[[ -n $BUILD_CHROOT && -n $KBUILD ]] || die "debian-6.12-bpo has no kbuild chroot (kernel.env)"
[[ -f $SRC_SOURCE_TARBALL ]] || die "debian-6.12 source tarball missing: tests/setup/kernel.sh debian-6.12"
log "target: $RELEASE ($VERSION); source: linux-source of $SRC_VERSION"
[[ ${SRC_VERSION%%-*} != "${VERSION%%-*}" ]] || die "the pair is not two releases: both are ${VERSION%%-*}"

suite=$(basename "$BUILD_CHROOT")
bin=$(e2e_chroot_relax_rmrr "$BUILD_CHROOT" "$BIN")
inputs=$(e2e_chroot_inputs "$BUILD_CHROOT" debian-6.12-bpo "$KALLSYMS" "$VMLINUZ" "$CONFIG" "$SRC_SOURCE_TARBALL")
args=(--kernel-release "$RELEASE" --kbuild "$KBUILD" --source "$inputs/$(basename "$SRC_SOURCE_TARBALL")"
  --kallsyms "$inputs/$(basename "$KALLSYMS")" --config "$inputs/$(basename "$CONFIG")"
  --image "$inputs/$(basename "$VMLINUZ")" -q --json)
work=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-neighbour.XXXXXX")
trap 'rm -rf "$work"' EXIT
in_chroot() { "$HERE/../setup/chroot.sh" --run "$suite" "$@"; }

failures=0
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then log "PASS $what"; else log "FAIL $what"; failures=$((failures + 1)); fi
}

# A. The tarball: its Makefile says 6.12.1xx, the kbuild tree 6.12.95. Refused before anything is compiled.
rc=0
in_chroot "$bin" verify "${args[@]}" > "$work/a.json" 2> "$work/a.err" || rc=$?
cat "$work/a.err" >&2
check "A: verify refuses the tarball of the neighbouring release (exit 4, got $rc)" test "$rc" -eq 4
check "A: the message names both versions" grep -q "${SRC_VERSION%%-*}.*${VERSION%%-*}" "$work/a.err"

# B. Only its drivers/iommu (no Makefile, so no version to compare: like a distribution kernel whose stable
# updates keep the version number). Only the code itself can tell: verify compiles it against the target's
# headers and compares with the image.
iommu=$BUILD_CHROOT$inputs/iommu-only
if [[ ! -f $iommu/drivers/iommu/intel/iommu.c ]]; then
  rm -rf "$iommu" && mkdir -p "$iommu"
  tar -xf "$SRC_SOURCE_TARBALL" -C "$iommu" --strip-components=1 --wildcards '*/drivers/iommu/*' ||
    die "cannot extract drivers/iommu from $SRC_SOURCE_TARBALL"
fi
args_b=("${args[@]}")
args_b[5]=$inputs/iommu-only   # the value of --source
rc=0
in_chroot "$bin" verify "${args_b[@]}" > "$work/b.json" 2> "$work/b.err" || rc=$?
cat "$work/b.err" >&2
check "B: verify refuses drivers/iommu of the neighbouring release (exit 4, got $rc)" test "$rc" -eq 4
# Two honest ways to refuse: the driver does not even compile against the target's headers (what 6.12.95 vs
# 6.12.118 does: struct syscore and set_dev_pasid changed), or it compiles and a compared function differs.
if grep -q 'does not compile against the target' "$work/b.err"; then
  log "B: refused because the driver does not compile against $RELEASE's headers"
  check "B: the compiler's error is shown" grep -q 'error:' "$work/b.err"
else
  differ=$(python3 -c 'import json,sys; print(" ".join(f["name"] for f in json.load(sys.stdin)["functions"] if not f["equal"]))' \
    < "$work/b.json" 2> /dev/null || true)
  log "B: functions that differ: ${differ:-none}"
  check "B: at least one compared function differs" test -n "$differ"
  check "B: the message names the first of them and the offset" grep -Eq "${differ%% *} .*(at offset 0x[0-9a-f]+|size)" "$work/b.err"
fi

rm -f "$BUILD_CHROOT$inputs/out.ko"
rc=0
in_chroot "$bin" build "${args_b[@]}" --output "$inputs/out.ko" > "$work/build.json" 2> "$work/build.err" || rc=$?
check "B: build refuses too (exit 4, got $rc)" test "$rc" -eq 4
check "B: build wrote no module" test ! -e "$BUILD_CHROOT$inputs/out.ko"

# C. The nearest neighbour: Debian 13's own kernel (6.12.N, gcc-14, in the trixie chroot) with the linux-source
# of the stable release just before it (6.12.N-1, same suite, same compiler). Here the headers barely change, so
# the driver compiles and only the code comparison decides: refused with a function and offset when a compared
# function differs, or passed when every one is byte-identical (then the module built from it replaces them
# with the same code the kernel has, which is safe). Either way the verdict must agree with the report, and the
# test says which happened and whether intel/iommu.c itself changed between the two releases.
eval "$(load_env debian-6.12 | sed 's/^declare -- /declare -- C_/')"
apt_dir=$CACHE_ROOT/apt/debian-6.12
apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache")
src_pkg=$(basename "$C_SOURCE_TARBALL" .tar.xz)
prev=$(apt-cache "${apt_opts[@]}" madison "$src_pkg" | awk '{print $3}' | sort -uV |
  awk -v cur="$C_VERSION" '$0 == cur { print last; exit } { last = $0 }')
[[ -n $prev ]] || die "no $src_pkg older than $C_VERSION in $apt_dir (run tests/setup/kernel.sh debian-6.12)"
prev_dir=$CACHE_ROOT/kernels/debian-6.12/previous-source/$prev
if [[ ! -f $prev_dir/drivers/iommu/intel/iommu.c ]]; then
  mkdir -p "$prev_dir.deb" && rm -rf "$prev_dir" && mkdir -p "$prev_dir"
  log "downloading $src_pkg=$prev"
  (cd "$prev_dir.deb" && apt-get "${apt_opts[@]}" -o APT::Sandbox::User=root -q download "$src_pkg=$prev" >&2) ||
    die "apt-get download $src_pkg=$prev failed"
  dpkg-deb --fsys-tarfile "$prev_dir.deb/${src_pkg}_"*.deb | tar -xO "./usr/src/$src_pkg.tar.xz" |
    tar -xJ -C "$prev_dir" --strip-components=1 --wildcards '*/drivers/iommu/*' "$src_pkg/Makefile" ||
    die "cannot extract drivers/iommu and the Makefile of $src_pkg $prev"
  rm -rf "$prev_dir.deb"
fi
iommu_changed=changed
tar -xJOf "$C_SOURCE_TARBALL" "$src_pkg/drivers/iommu/intel/iommu.c" | cmp -s - "$prev_dir/drivers/iommu/intel/iommu.c" &&
  iommu_changed=unchanged
log "C: target $C_RELEASE ($C_VERSION), source $prev: intel/iommu.c $iommu_changed between them"
c_suite=$(basename "$C_BUILD_CHROOT")
c_bin=$(e2e_chroot_relax_rmrr "$C_BUILD_CHROOT" "$BIN")
c_inputs=$(e2e_chroot_inputs "$C_BUILD_CHROOT" debian-6.12 "$C_KALLSYMS" "$C_VMLINUZ" "$C_CONFIG")
rm -rf "$C_BUILD_CHROOT$c_inputs/previous" && mkdir -p "$C_BUILD_CHROOT$c_inputs/previous" &&
  cp -r "$prev_dir/." "$C_BUILD_CHROOT$c_inputs/previous/"
# The Makefile says the previous release: as A shows, that alone is refused. Say the target's version, as a
# distribution's stable update that keeps the number would, so that the code has to decide.
target_sublevel=$(cut -d. -f3 <<< "${C_VERSION%%-*}")
sed -i "s/^SUBLEVEL = .*/SUBLEVEL = $target_sublevel/" "$C_BUILD_CHROOT$c_inputs/previous/Makefile"
rc=0
"$HERE/../setup/chroot.sh" --run "$c_suite" "$c_bin" verify --kernel-release "$C_RELEASE" --kbuild "$C_KBUILD" \
  --source "$c_inputs/previous" --kallsyms "$c_inputs/$(basename "$C_KALLSYMS")" --config "$c_inputs/$(basename "$C_CONFIG")" \
  --image "$c_inputs/$(basename "$C_VMLINUZ")" -q --json > "$work/c.json" 2> "$work/c.err" || rc=$?
cat "$work/c.err" >&2
verdict=$(python3 -c '
import json, sys
r = json.load(sys.stdin)
fs = r["functions"]
print("ok" if r["ok"] else "differ", len(fs), " ".join(f["name"] for f in fs if not f["equal"]) or "-")' < "$work/c.json" 2> /dev/null ||
  echo "none 0 -")
read -r c_state c_count c_differ <<< "$verdict"
check "C: verify compared functions ($c_count)" test "$c_count" -gt 0
if ((rc == 0)); then
  log "C: PASSED: all $c_count compared functions are byte-identical in $prev and ${C_VERSION%%-*} (iommu.c $iommu_changed)"
  check "C: a pass means every compared function is equal" test "$c_state" = ok
else
  log "C: REFUSED: $c_differ differ (iommu.c $iommu_changed)"
  check "C: a refusal is exit 4 (got $rc)" test "$rc" -eq 4
  check "C: a refusal comes from a function that differs" test "$c_state" = differ -a "$c_differ" != -
  check "C: the message names it and the offset" grep -Eq "${c_differ%% *} .*(at offset 0x[0-9a-f]+|size)" "$work/c.err"
fi

if ((failures)); then
  log "verify report (C):"; cat "$work/c.json" >&2
  die "$failures check(s) failed"
fi
log "neighbouring stable releases: refused by version (A), by compilation (B), decided by the code (C)"
