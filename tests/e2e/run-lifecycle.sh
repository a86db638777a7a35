#!/bin/bash
# The lifecycle commands on a real kernel, in one QEMU boot under TCG (label e2e): the project's own
# relax-rmrr binary runs inside the busybox guest (its shared libraries are copied in, in a third cpio
# appended to the initrd) and drives the livepatch through the kernel's real sysfs and syscalls:
#
#   tests/e2e/run-lifecycle.sh --kernel debian-6.1 --module relax_rmrr.ko --binary build/generator/relax-rmrr
#                              [--cycles N (100)] [--timeout SECONDS (1500)] [--keep DIR]
#
#   1 attach refused (RMRR at the edu device, topology root-bus)
#   2 relax-rmrr load: exit 0; relax-rmrr status: exit 0 (active); attach OK
#   3 N cycles of: relax-rmrr disable, attach refused, relax-rmrr enable (reloads the freed patch), attach OK
#   4 relax-rmrr load of the same file again: exit 0 (no-op)
#   5 relax-rmrr unload: exit 0, /sys/module/NAME gone, attach refused, relax-rmrr status: exit 1
# Adds a guest mode (MODE=lifecycle in guest/init); the proof scenario (run-proof.sh) is unchanged.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

EDU_ID=1234:11e8
KERNEL='' MODULE=${RELAX_RMRR_E2E_MODULE:-} BINARY='' CYCLES=100 TIMEOUT=1500 KEEP=''
WORK='' FAILURES=0 PASSES=0

usage() {
  sed -n '6,7p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case "$1" in
    --kernel) KERNEL=${2:?}; shift 2 ;;
    --module) MODULE=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --cycles) CYCLES=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --keep) KEEP=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n $KERNEL && -n $MODULE && -n $BINARY ]] || usage
[[ $CYCLES =~ ^[0-9]+$ && $TIMEOUT =~ ^[0-9]+$ ]] || die "--cycles and --timeout want numbers"
[[ -f $MODULE ]] || die "module not found: $MODULE"
[[ -x $BINARY ]] || die "relax-rmrr binary not found: $BINARY"
MODULE=$(realpath "$MODULE")
BINARY=$(realpath "$BINARY")

e2e_require_cmds qemu-system-x86_64 gcc objcopy cpio busybox base64 awk timeout ldd
e2e_load_kernel_env "$KERNEL"

e2e_work_dir lifecycle "$KEEP"

t0=$SECONDS
# shellcheck disable=SC2054,SC2034 # commas belong to QEMU's -device syntax; lib.sh reads the array
E2E_QEMU_DEVICES=(-device edu,bus=pcie.0,addr=03.0)
e2e_build_tools "$WORK/tools"
# shellcheck disable=SC2153 # VMLINUZ, MODULES come from kernel.env
e2e_topology_dmar "$VMLINUZ" "$MODULES" "$WORK/tools" "$WORK" "$WORK/qemu-dmar.dat"
"$WORK/tools/dmar-add-rmrr" "$WORK/qemu-dmar.dat" "$WORK/dmar.aml" --rmrr "base=0xf0000,limit=0xfffff,endpoint=00:03.0" \
  2> "$WORK/dmar-add-rmrr.log" || die "dmar-add-rmrr failed: $(cat "$WORK/dmar-add-rmrr.log")"
e2e_acpi_cpio "$WORK/dmar.aml" "$WORK/acpi.cpio"
LP_NAME=$(_e2e_modinfo name "$MODULE" | head -n1)
LP_NAME=${LP_NAME:-relax_rmrr}
printf '%s\n' "MODE=lifecycle" "DEVICE_ID=$EDU_ID" "RMRR_BASES='0xf0000'" "LIVEPATCH=/relax.ko" "LP_NAME=$LP_NAME" \
  "CYCLES=$CYCLES" > "$WORK/e2e.conf"
e2e_build_initramfs "$WORK/main.cpio" "$WORK/e2e.conf" "$MODULES" "$WORK/tools" "$MODULE"
e2e_binary_cpio "$BINARY" "$WORK/binary.cpio"
cat "$WORK/acpi.cpio" "$WORK/main.cpio" "$WORK/binary.cpio" > "$WORK/initrd"

log "kernel $KERNEL ($RELEASE), module $MODULE, $CYCLES cycles; booting (TCG, timeout ${TIMEOUT}s); work dir $WORK"
rc=0
e2e_qemu_run "$VMLINUZ" "$WORK/initrd" "$WORK/console.log" "$WORK/results.log" "$TIMEOUT" "" || rc=$?
log "boot finished in $((SECONDS - t0)) s (QEMU status $rc)"

e2e_result_lines "$WORK/results.log" > "$WORK/result-lines.txt"
e2e_extract_blob "$WORK/results.log" dmesg > "$WORK/dmesg.txt" || tr -d '\r' < "$WORK/console.log" > "$WORK/dmesg.txt" || true

((rc == 0)) || e2e_fail "QEMU exited with status $rc$( ((rc == 124)) && echo ' (timeout)')"
e2e_expect 0 boot OK "guest booted, test device found"
e2e_expect 0 binary OK "the relax-rmrr binary runs in the guest"
e2e_expect 0 vfio_modules OK "vfio modules loaded"
e2e_expect 1 bind OK "test device bound to vfio-pci"
e2e_expect 1 attach FAIL "RMRR-locked device: attach refused before any livepatch"
e2e_expect 2 load 0 "relax-rmrr load exits 0"
e2e_expect 2 status 0 "relax-rmrr status exits 0 (patch enabled, transition done)"
e2e_expect 2 mark OK "the module shows relax-rmrr's mark, /sys/module/NAME/parameters/relax_rmrr_version"
e2e_expect 2 status_unnamed 0 "relax-rmrr status without --name finds the livepatch by its mark"
e2e_expect 2 attach OK "attach succeeds with the livepatch"
e2e_expect 3 cycles OK "$CYCLES x (disable, attach refused, enable, attach OK), every one as expected"
l=$(e2e_line 3 cycles)
if [[ -n $l && $(e2e_field "$l" cycles) == "$CYCLES" && $(e2e_field "$l" attached) == "$CYCLES" && $(e2e_field "$l" refused) == "$CYCLES" ]]; then
  e2e_pass "all $CYCLES cycles ran: refused=$CYCLES attached=$CYCLES"
else
  e2e_fail "not all $CYCLES cycles ran as expected | $l"
fi
grep '^step=3 check=cycle_' "$WORK/result-lines.txt" | head -n 5 || true
e2e_expect 4 load_again 0 "loading the same module again exits 0"
l=$(e2e_line 4 load_again)
if [[ $(e2e_field "$l" action) == already-loaded ]]; then e2e_pass "step4: the second load is a no-op (action=already-loaded)"; else e2e_fail "step4: the second load is not a no-op | $l"; fi
e2e_expect 5 unload 0 "relax-rmrr unload exits 0"
e2e_expect 5 module_gone OK "the module is gone from /sys/module"
e2e_expect 5 attach FAIL "attach refused again after unload"
e2e_expect 5 status 1 "relax-rmrr status exits 1 once unloaded"
e2e_expect_clean_end
((FAILURES == 0)) || tail -n 40 "$WORK/dmesg.txt"
echo "SUMMARY lifecycle kernel=$KERNEL cycles=$CYCLES module=$MODULE passed=$PASSES failed=$FAILURES seconds=$((SECONDS - t0))"
((FAILURES == 0))
