#!/bin/bash
# The `devices` selection on a real kernel, in one QEMU boot under TCG (label e2e): relax-rmrr runs in the busybox
# guest (as in run-lifecycle.sh) on a machine with two RMRR devices and a control:
#
#   tests/e2e/run-devices.sh --kernel debian-6.1 --module relax_rmrr.ko --binary build/generator/relax-rmrr
#                            [--timeout SECONDS (600)] [--keep DIR]
#
#   A = edu at 00:03.0 (RMRR 1), B = edu at 00:04.0 (RMRR 2), C = edu at 00:05.0 (no RMRR: always attaches)
#   1 no patch: A, B refused                      2 load --devices A: A attaches, B refused; doctor agrees
#   3 devices add B: both attach                  4 malformed writes refused, A,B kept; devices remove A: A refused
#   5 disable: A and B refused again
# Adds a guest mode (MODE=devices in guest/init).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

A=0000:00:03.0 B=0000:00:04.0 C=0000:00:05.0
KERNEL='' MODULE=${RELAX_RMRR_E2E_MODULE:-} BINARY='' TIMEOUT=600 KEEP=''
WORK='' FAILURES=0 PASSES=0

usage() {
  sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --module) MODULE=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --keep) KEEP=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n $KERNEL && -n $MODULE && -n $BINARY ]] || usage
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
[[ -f $MODULE ]] || die "module not found: $MODULE"
[[ -x $BINARY ]] || die "relax-rmrr binary not found: $BINARY"
MODULE=$(realpath "$MODULE")
BINARY=$(realpath "$BINARY")

e2e_require_cmds qemu-system-x86_64 gcc objcopy cpio busybox base64 awk timeout ldd
e2e_load_kernel_env "$KERNEL"

e2e_work_dir devices "$KEEP"

t0=$SECONDS
# shellcheck disable=SC2054,SC2034 # commas belong to QEMU's -device syntax; lib.sh reads the array
E2E_QEMU_DEVICES=(-device edu,bus=pcie.0,addr=03.0 -device edu,bus=pcie.0,addr=04.0 -device edu,bus=pcie.0,addr=05.0)
e2e_build_tools "$WORK/tools"
# shellcheck disable=SC2153 # VMLINUZ, MODULES come from kernel.env
e2e_topology_dmar "$VMLINUZ" "$MODULES" "$WORK/tools" "$WORK" "$WORK/qemu-dmar.dat"
# Both regions sit in QEMU's E820-reserved ranges (the BIOS area, the top of low RAM with -m 1024).
"$WORK/tools/dmar-add-rmrr" "$WORK/qemu-dmar.dat" "$WORK/dmar.aml" \
  --rmrr "base=0xf0000,limit=0xfffff,endpoint=00:03.0" --rmrr "base=0x3ffe0000,limit=0x3fffffff,endpoint=00:04.0" \
  2> "$WORK/dmar-add-rmrr.log" || die "dmar-add-rmrr failed: $(cat "$WORK/dmar-add-rmrr.log")"
e2e_acpi_cpio "$WORK/dmar.aml" "$WORK/acpi.cpio"
LP_NAME=$(_e2e_modinfo name "$MODULE" | head -n1)
LP_NAME=${LP_NAME:-relax_rmrr}
printf '%s\n' "MODE=devices" "DEVICES='$A $B $C'" "LIVEPATCH=/relax.ko" "LP_NAME=$LP_NAME" > "$WORK/e2e.conf"
e2e_build_initramfs "$WORK/main.cpio" "$WORK/e2e.conf" "$MODULES" "$WORK/tools" "$MODULE"
e2e_binary_cpio "$BINARY" "$WORK/binary.cpio"
cat "$WORK/acpi.cpio" "$WORK/main.cpio" "$WORK/binary.cpio" > "$WORK/initrd"

log "kernel $KERNEL ($RELEASE), module $MODULE; booting (TCG, timeout ${TIMEOUT}s); work dir $WORK"
rc=0
e2e_qemu_run "$VMLINUZ" "$WORK/initrd" "$WORK/console.log" "$WORK/results.log" "$TIMEOUT" "" || rc=$?
log "boot finished in $((SECONDS - t0)) s (QEMU status $rc)"

e2e_result_lines "$WORK/results.log" > "$WORK/result-lines.txt"
e2e_extract_blob "$WORK/results.log" dmesg > "$WORK/dmesg.txt" || tr -d '\r' < "$WORK/console.log" > "$WORK/dmesg.txt" || true
e2e_extract_blob "$WORK/results.log" doctor > "$WORK/doctor.txt" || true

((rc == 0)) || e2e_fail "QEMU exited with status $rc$( ((rc == 124)) && echo ' (timeout)')"
e2e_expect 0 boot OK "guest booted, the three test devices found"
e2e_expect 0 binary OK "the relax-rmrr binary runs in the guest"
e2e_expect 0 vfio_modules OK "vfio modules loaded"
e2e_expect 1 attach_a FAIL "A (RMRR): refused before any livepatch"
e2e_expect 1 attach_b FAIL "B (RMRR): refused before any livepatch"
e2e_expect 1 attach_c OK "C (control, no RMRR): attaches"
e2e_expect 2 load 0 "relax-rmrr load --devices A exits 0"
e2e_expect 2 param OK "the module's devices parameter reads A back"
e2e_expect 2 attach_a OK "A, selected: attaches"
e2e_expect 2 attach_b FAIL "B, not selected: still refused"
e2e_expect 2 attach_c OK "C still attaches"
e2e_expect 2 doctor OK "doctor: A relaxed, B locked and not selected"
e2e_expect 3 add 0 "relax-rmrr devices add B exits 0"
e2e_expect 3 param OK "the parameter reads A,B (written at run time, normalised)"
e2e_expect 3 attach_a OK "A attaches"
e2e_expect 3 attach_b OK "B, added at run time: attaches without a reboot"
e2e_expect 3 attach_c OK "C attaches"
e2e_expect 4 write_syntax refused "a malformed list written to the parameter is refused (EINVAL)"
e2e_expect 4 write_range refused "an address no PCI device can have is refused (EINVAL)"
e2e_expect 4 tool_malformed 2 "relax-rmrr devices set with such an address exits 2 before writing"
e2e_expect 4 param_kept OK "after the refused writes the parameter still reads A,B"
e2e_expect 4 remove 0 "relax-rmrr devices remove A exits 0"
e2e_expect 4 param OK "the parameter reads B"
e2e_expect 4 attach_a FAIL "A, removed at run time: refused again"
e2e_expect 4 attach_b OK "B attaches"
e2e_expect 5 disable 0 "relax-rmrr disable exits 0"
e2e_expect 5 attach_a FAIL "after disable: A refused"
e2e_expect 5 attach_b FAIL "after disable: B refused"
e2e_expect 5 attach_c OK "after disable: C still attaches"
if grep -q "relax_rmrr.*devices: .*the selection in force is kept" "$WORK/dmesg.txt"; then
  e2e_pass "dmesg: the module said why it refused the malformed value"
else
  e2e_fail "dmesg: no message from the module about the refused value"
fi
e2e_expect_clean_end
((FAILURES == 0)) || { tail -n 40 "$WORK/dmesg.txt"; cat "$WORK/doctor.txt" 2> /dev/null || true; }
echo "SUMMARY devices kernel=$KERNEL module=$MODULE passed=$PASSES failed=$FAILURES seconds=$((SECONDS - t0))"
((FAILURES == 0))
