#!/bin/bash
# `relax-rmrr verify` on a running kernel, reading its code from /proc/kcore (label e2e). Two QEMU boots
# (TCG) of the real kernel, with the project's own binary inside the busybox guest:
#
#   tests/e2e/run-kcore-verify.sh --kernel debian-6.1 --binary build/generator/relax-rmrr [--keep DIR]
#
# On the host, `relax-rmrr verify` compiles the kernel's own source (objects kept) and must pass against the
# image. A copy of the original object gets one byte of the first replaced function changed (a byte no
# relocation or patch site covers). In the guest, `verify --objects` (a fleet host: no source, no compiler):
#   boot 1 (no lockdown):              kcore + true objects: exit 0, origin kcore
#                                      kcore + tampered: exit 4, the function and offset named
#                                      auto: exit 0, origin kcore (the running kernel is read live)
#   boot 2 (lockdown=confidentiality): kcore: exit 5, the message says locked down
#                                      auto: exit 0, origin image (/boot/vmlinuz-RELEASE), kcore refusal noted
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

KERNEL='' BINARY='' KEEP='' WORK='' FAILURES=0 PASSES=0 TIMEOUT=600

usage() {
  sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while (($#)); do
  case "$1" in
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --keep) KEEP=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n $KERNEL && -n $BINARY ]] || usage
[[ -x $BINARY ]] || die "relax-rmrr binary not found: $BINARY"
BINARY=$(realpath "$BINARY")
e2e_require_cmds qemu-system-x86_64 gcc cpio busybox readelf python3 ldd timeout
e2e_load_kernel_env "$KERNEL"
[[ -z $BUILD_CHROOT ]] || die "$KERNEL builds in a chroot ($BUILD_CHROOT): this test wants a kernel the host can build for"

e2e_work_dir kcore "$KEEP"
t0=$SECONDS

# 1. The objects, from the kernel's own source, checked on the host against the image.
rc=0
"$BINARY" verify -q --json --keep-tmp "$WORK/host" --kernel-release "$RELEASE" --kbuild "$KBUILD" --source "$SOURCE_TARBALL" \
  --kallsyms "$KALLSYMS" --config "$CONFIG" --image "$VMLINUZ" > "$WORK/host-verify.json" 2> "$WORK/host-verify.err" || rc=$?
((rc == 0)) || { cat "$WORK/host-verify.err" >&2; die "verify on the host failed (exit $rc): the objects cannot be trusted"; }
original=$(find "$WORK/host/compile/original" -maxdepth 1 -name '*.o' | head -n1)
patched=$(find "$WORK/host/compile/patched" -maxdepth 1 -name '*.o' | head -n1)
[[ -f $original && -f $patched ]] || die "verify --keep-tmp left no objects in $WORK/host/compile"
target=$(python3 -c 'import json,sys; print(next(f["name"] for f in json.load(sys.stdin)["functions"] if f["role"] == "replaced"))' \
  < "$WORK/host-verify.json")

# 2. tampered.o: one byte of `target` changed where no relocation (of its code or of a patch-site table) points.
python3 - "$original" "$WORK/tampered.o" "$target" <<'EOF' || die "cannot make the tampered object"
import re, subprocess, sys
src, dst, func = sys.argv[1:]
sect = ".text." + func
sections = subprocess.run(["readelf", "-SW", src], capture_output=True, text=True, check=True).stdout
m = re.search(r"\]\s+" + re.escape(sect) + r"\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", sections)
if not m:
    sys.exit(f"{sect} not in {src}")
offset, size = int(m.group(1), 16), int(m.group(2), 16)
covered = set()
current = None
for line in subprocess.run(["readelf", "-rW", src], capture_output=True, text=True, check=True).stdout.splitlines():
    h = re.match(r"Relocation section '\.rela(\S+)'", line)
    if h:
        current = h.group(1)
        continue
    r = re.match(r"([0-9a-f]+)\s+[0-9a-f]+\s+\S+\s+[0-9a-f]+\s+(\S+)\s*([+-])\s*([0-9a-f]+)", line)
    if not r:
        continue
    if current == sect:
        covered.update(range(int(r.group(1), 16) - 8, int(r.group(1), 16) + 8))
    elif r.group(2) == sect:  # a patch-site table entry pointing into the function
        a = int(r.group(4), 16) * (1 if r.group(3) == "+" else -1)
        covered.update(range(a - 8, a + 16))
pick = next((o for o in range(size // 2, size - 8) if o not in covered), None)
if pick is None:
    sys.exit(f"no byte of {func} free of relocations")
data = bytearray(open(src, "rb").read())
data[offset + pick] ^= 0x5a
open(dst, "wb").write(data)
print(f"tampered {func} at +{pick:#x}", file=sys.stderr)
EOF

# 3. Two boots.
e2e_build_tools "$WORK/tools"
printf '%s\n' "MODE=verify" > "$WORK/e2e.conf"
e2e_build_initramfs "$WORK/main.cpio" "$WORK/e2e.conf" "$MODULES" "$WORK/tools" ""
e2e_binary_cpio "$BINARY" "$WORK/binary.cpio" "$original=/verify/original.o" "$patched=/verify/patched.o" \
  "$WORK/tampered.o=/verify/tampered.o" "$VMLINUZ=/boot/vmlinuz-$RELEASE" "$CONFIG=/boot/config-$RELEASE"
cat "$WORK/main.cpio" "$WORK/binary.cpio" > "$WORK/initrd"

boot() { # NAME APPEND
  local rc=0
  log "boot $1 ($RELEASE${2:+, $2})"
  e2e_qemu_run "$VMLINUZ" "$WORK/initrd" "$WORK/$1.console" "$WORK/$1.results" "$TIMEOUT" "$2" || rc=$?
  ((rc == 0)) || e2e_fail "$1: QEMU exited with status $rc"
  e2e_result_lines "$WORK/$1.results" > "$WORK/$1.lines"
  grep -q '^step=0 check=binary result=OK' "$WORK/$1.lines" || e2e_fail "$1: relax-rmrr does not run in the guest"
  grep -q '^end$' "$WORK/$1.lines" || e2e_fail "$1: the guest did not finish"
}
line() { grep -m1 "^step=$2 check=$3 " "$WORK/$1.lines" || true; }
field() { sed -n "s/.*[[:space:]]$2=\\([^[:space:]]*\\).*/\\1/p" <<< " $1"; }
expect() { # BOOT STEP CHECK RESULT ORIGIN [MESSAGE-REGEX] DESCRIPTION
  local l
  l=$(line "$1" "$2" "$3")
  if [[ -n $l && $(field "$l" result) == "$4" && $(field "$l" origin) == "$5" ]] && [[ -z $6 || $l =~ $6 ]]; then
    e2e_pass "$1: $7 | $l"
  else
    e2e_fail "$1: $7: expected result=$4 origin=$5${6:+ message ~ /$6/} | ${l:-no result line}"
  fi
}

boot open ""
expect open 1 kcore 0 kcore "" "verify --text kcore: the running kernel's code matches the objects"
expect open 2 kcore_tampered 4 kcore "$target.*offset" "a tampered object is refused, naming $target and the offset"
expect open 3 auto 0 kcore "" "verify --text auto reads the running kernel through /proc/kcore"
boot locked "lockdown=confidentiality"
if grep -q 'lockdown=".*\[confidentiality\]' "$WORK/locked.lines"; then e2e_pass "locked: the kernel is locked down"; else
  e2e_fail "locked: lockdown=confidentiality did not take effect | $(line locked 0 boot)"; fi
expect locked 1 kcore 5 none "locked down" "verify --text kcore refuses under lockdown and says why"
expect locked 3 auto 0 image "" "verify --text auto falls back to the image in /boot under lockdown"
if e2e_extract_blob "$WORK/locked.results" verify-3 | grep -q 'locked down'; then
  e2e_pass "locked: the report notes why /proc/kcore was not used"
else
  e2e_fail "locked: the report does not say /proc/kcore was forbidden"
fi
for b in open locked; do
  if grep -qE 'Kernel panic|BUG: |Oops|WARNING: CPU' "$WORK/$b.console"; then e2e_fail "$b: the kernel logged a panic/BUG/Oops/WARNING"; fi
done
echo "SUMMARY kcore-verify kernel=$KERNEL function=$target passed=$PASSES failed=$FAILURES seconds=$((SECONDS - t0))"
((FAILURES == 0))
