#!/bin/bash
# The relax-rmrr proof (refused, allowed, refused) in one QEMU boot under TCG.
#
#   tests/e2e/run-proof.sh --kernel debian-6.1 --topology root-bus|root-port-path|root-port-bridge|multi-rmrr
#                          [--module FILE.ko] [--control] [--hold-during-disable] [--timeout SECONDS] [--keep DIR]
#
# --control boots the same machine without the RMRR override and asserts the attach succeeds: proves the
# VFIO client and the machine are sound, so a refusal in the real run is the RMRR lock and nothing else.
# Needs tests/setup/kernel.sh KERNEL to have run (its kernel.env). Without --module (or the environment
# variable RELAX_RMRR_E2E_MODULE) only step 1 runs: the RMRR lock is reproduced. With a module, all four:
#   1 attach refused, reserved_regions says direct       2 livepatch loaded, transition 0
#   3 attach OK; the device removed and rescanned (probed after the patch) reads direct-relaxable and
#     attaches too                                      4 enabled=0, transition 0, attach refused, direct
# --hold-during-disable: a VFIO user (as a running VM would) holds the device while the patch is disabled;
#   it keeps its domain and can still map DMA; once it lets go the veto applies again. Exits 77 (skipped) on
#   a kernel whose kernel.env says ERA=attach-check.
# Prints PASS/FAIL per assertion, the guest's dmesg on failure; exits 0 only if all passed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"

CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
EDU_ID=1234:11e8
# RMRR regions inside QEMU's E820-reserved ranges (the kernel warns about RMRRs outside reserved memory):
# the BIOS area, and the 128 KiB SeaBIOS keeps at the top of the low RAM with -m 1024.
RMRR1="base=0xf0000,limit=0xfffff"
RMRR2="base=0x3ffe0000,limit=0x3fffffff"
KERNEL='' MODULE=${RELAX_RMRR_E2E_MODULE:-} TOPOLOGY='' TIMEOUT=180 KEEP='' CONTROL=0 HOLD=0
WORK='' FAILURES=0 PASSES=0 DMESG_FROM_CONSOLE=0

usage() {
  sed -n '3,6p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

parse_args() {
  while (($#)); do
    case "$1" in
      --kernel) KERNEL=${2:?--kernel needs a value}; shift 2 ;;
      --module) MODULE=${2:?--module needs a file}; shift 2 ;;
      --topology) TOPOLOGY=${2:?--topology needs a value}; shift 2 ;;
      --control) CONTROL=1; shift ;;
      --hold-during-disable) HOLD=1; shift ;;
      --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
      --keep) KEEP=${2:?--keep needs a directory}; shift 2 ;;
      -h | --help) usage ;;
      *) echo "unknown argument: $1" >&2; usage ;;
    esac
  done
  [[ -n $KERNEL && -n $TOPOLOGY ]] || usage
  [[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout wants seconds, got '$TIMEOUT'"
  if ((CONTROL)); then
    MODULE=   # the control run is about the machine, not the livepatch
  fi
  if [[ -n $MODULE ]]; then
    [[ -f $MODULE ]] || die "livepatch module not found: $MODULE"
    MODULE=$(realpath "$MODULE")
  fi
}

# Sets E2E_QEMU_DEVICES (used by lib.sh) and RMRR_SPECS (dmar-add-rmrr --rmrr values) for the topology.
# shellcheck disable=SC2054,SC2034 # commas belong to QEMU's -device syntax
setup_topology() {
  local root_port=(-device pcie-root-port,id=rp1,bus=pcie.0,addr=06.0,chassis=1,slot=1 -device edu,bus=rp1,addr=00.0)
  case "$TOPOLOGY" in
    root-bus)
      # edu on the root bus (pcie.0), RMRR with an endpoint scope naming it.
      E2E_QEMU_DEVICES=(-device edu,bus=pcie.0,addr=03.0)
      RMRR_SPECS=("$RMRR1,endpoint=00:03.0")
      ;;
    root-port-path)
      # edu behind a PCIe root port at 00:06.0; endpoint scope with the two-hop path 06.0 -> 00.0.
      E2E_QEMU_DEVICES=("${root_port[@]}")
      RMRR_SPECS=("$RMRR1,endpoint=00:06.0/00.0")
      ;;
    root-port-bridge)
      # same machine, RMRR with a bridge (sub-hierarchy) scope naming the root port.
      E2E_QEMU_DEVICES=("${root_port[@]}")
      RMRR_SPECS=("$RMRR1,bridge=00:06.0")
      ;;
    multi-rmrr)
      # same machine, two RMRRs reaching the device: one by path, one through the bridge.
      E2E_QEMU_DEVICES=("${root_port[@]}")
      RMRR_SPECS=("$RMRR1,endpoint=00:06.0/00.0" "$RMRR2,bridge=00:06.0")
      ;;
    *) die "unknown topology '$TOPOLOGY' (root-bus, root-port-path, root-port-bridge, multi-rmrr)" ;;
  esac
  local spec
  RMRR_BASES=()
  for spec in "${RMRR_SPECS[@]}"; do
    spec=${spec#base=}
    RMRR_BASES+=("${spec%%,*}")
  done
}

load_kernel_env() {
  local env=$CACHE_ROOT/kernels/$KERNEL/kernel.env
  [[ -f $env ]] || die "$env missing: run tests/setup/kernel.sh $KERNEL first"
  # shellcheck source=/dev/null
  source "$env"
  local f
  # shellcheck disable=SC2153 # VMLINUZ, MODULES come from kernel.env
  for f in "$VMLINUZ" "$MODULES"; do
    [[ -e $f ]] || die "$f (from $env) missing: rerun tests/setup/kernel.sh $KERNEL"
  done
}

cleanup() {
  e2e_qemu_kill
  if [[ -n $WORK && -z $KEEP && $FAILURES -eq 0 ]]; then
    rm -rf "$WORK"
  elif [[ -n $WORK ]]; then
    echo "logs kept in $WORK" >&2
  fi
}

# The livepatch's name as /sys/kernel/livepatch shows it: the module name from .modinfo.
livepatch_name() {
  local name
  name=$(_e2e_modinfo name "$1" | head -n1) || true
  if [[ -z $name ]]; then
    name=$(basename "$1")
    name=${name%%.ko*}
  fi
  echo "${name//-/_}"
}

build_guest() {
  e2e_build_tools "$WORK/tools"
  e2e_topology_dmar "$VMLINUZ" "$MODULES" "$WORK/tools" "$WORK" "$WORK/qemu-dmar.dat"
  local args=() spec
  for spec in "${RMRR_SPECS[@]}"; do args+=(--rmrr "$spec"); done
  "$WORK/tools/dmar-add-rmrr" "$WORK/qemu-dmar.dat" "$WORK/dmar.aml" "${args[@]}" 2> "$WORK/dmar-add-rmrr.log" ||
    die "dmar-add-rmrr failed: $(cat "$WORK/dmar-add-rmrr.log")"
  e2e_acpi_cpio "$WORK/dmar.aml" "$WORK/acpi.cpio"
  if ((CONTROL)); then
    : > "$WORK/acpi.cpio"   # QEMU's own DMAR, no RMRR
  fi
  {
    echo "MODE=proof"
    echo "DEVICE_ID=$EDU_ID"
    echo "RMRR_BASES='${RMRR_BASES[*]}'"
    if [[ -n $MODULE ]]; then
      echo "LIVEPATCH=/relax.ko"
      echo "LP_NAME=$(livepatch_name "$MODULE")"
      echo "HOLD_DURING_DISABLE=$HOLD"
    fi
  } > "$WORK/e2e.conf"
  e2e_build_initramfs "$WORK/main.cpio" "$WORK/e2e.conf" "$MODULES" "$WORK/tools" "$MODULE"
  cat "$WORK/acpi.cpio" "$WORK/main.cpio" > "$WORK/initrd"
}

# ---------------------------------------------------------------------------------------------------
# Assertions on the guest's lines "step=N check=NAME result=VALUE key=value ...".
pass() {
  PASSES=$((PASSES + 1))
  printf 'PASS %s\n' "$*"
}
fail() {
  FAILURES=$((FAILURES + 1))
  printf 'FAIL %s\n' "$*"
}

# line STEP CHECK: the guest's line for that step and check (empty if none).
line() { grep -m1 "^step=$1 check=$2 " "$WORK/result-lines.txt" || true; }
# field LINE KEY: the value of KEY= in LINE.
field() { sed -n "s/.*[[:space:]]$2=\\([^[:space:]]*\\).*/\\1/p" <<< " $1"; }

# expect STEP CHECK EXPECTED_RESULT DESCRIPTION [errno]
expect() {
  local step=$1 check=$2 want=$3 desc=$4 want_errno=${5:-} l got errno
  l=$(line "$step" "$check")
  if [[ -z $l ]]; then
    fail "step$step.$check: $desc (no result line from the guest)"
    return
  fi
  got=$(field "$l" result)
  if [[ "|$want|" != *"|$got|"* ]]; then   # want may list alternatives: "0|gone"
    fail "step$step.$check: $desc: expected result=$want | $l"
    return
  fi
  if [[ -n $want_errno ]]; then
    errno=$(field "$l" errno)
    if [[ ${errno%%(*} != "$want_errno" ]]; then
      fail "step$step.$check: $desc: expected errno=$want_errno | $l"
      return
    fi
  fi
  pass "step$step.$check: $desc | $l"
}

expect_dmesg() { # PATTERN DESCRIPTION
  if grep -qF -- "$1" "$WORK/dmesg.txt"; then
    pass "dmesg: $2 | $(grep -m1 -F -- "$1" "$WORK/dmesg.txt")"
  else
    fail "dmesg: $2 (no line containing '$1')"
  fi
}

assert_results() {
  e2e_result_lines "$WORK/results.log" > "$WORK/result-lines.txt"
  if ! e2e_extract_blob "$WORK/results.log" dmesg > "$WORK/dmesg.txt"; then
    # no dmesg from the guest (timeout, panic): the console carries the kernel log up to that point
    tr -d '\r' < "$WORK/console.log" > "$WORK/dmesg.txt" || : > "$WORK/dmesg.txt"
    DMESG_FROM_CONSOLE=1
  fi

  expect 0 boot OK "guest booted, test device found"
  if ((CONTROL)); then
    assert_control
    return
  fi
  expect_dmesg "ACPI: Table Upgrade: override [DMAR-" "the DMAR override with the RMRR was taken"
  local base
  for base in "${RMRR_BASES[@]}"; do
    expect_dmesg "DMAR: RMRR base: $(printf '%#016x' "$base")" "the kernel parsed the RMRR at $base"
  done
  expect 0 vfio_modules OK "vfio modules loaded by insmod"
  expect 1 bind OK "test device bound to vfio-pci"
  expect 1 attach FAIL "RMRR-locked device: VFIO attach refused" "$REFUSE_ERRNO"
  expect 1 resv direct "reserved_regions reports every RMRR as direct"
  if [[ -n ${REFUSE_LOG:-} ]]; then
    expect_dmesg "$REFUSE_LOG" "the kernel gives the RMRR as the reason for the refusal"
  fi
  if [[ -z $MODULE ]]; then
    expect 2 skipped SKIP "no livepatch module given: steps 2-4 not run"
  else
    expect 2 load OK "livepatch module loaded"
    expect 2 transition 0 "livepatch transition finished"
    expect 2 enabled 1 "livepatch enabled"
    expect 3 attach OK "attach of the device probed before the patch succeeds"
    expect 3 reprobe OK "device removed and rescanned (probed after the patch)"
    expect 3 bind OK "re-probed device bound to vfio-pci"
    expect 3 resv direct-relaxable "reserved_regions of the re-probed device: every RMRR direct-relaxable"
    expect 3 attach_reprobed OK "attach of the re-probed device succeeds"
    if ((HOLD)); then
      expect 4 hold OK "a VFIO user holds the device before the patch is disabled"
    fi
    expect 4 disable OK "livepatch disabled"
    expect 4 transition "0|gone" "unpatch transition finished (0, or the disabled patch already freed)"
    if ((HOLD)); then
      expect 4 held_after_disable OK "the holder keeps its domain across the disable (a DMA map still works)"
      expect 4 attach_after_release OK "a device assigned during the disable keeps its relaxation until probed again"
      expect 4 reprobe OK "device removed and rescanned after the disable"
    fi
    expect 4 attach FAIL "attach refused again after disable" "$REFUSE_ERRNO"
    expect 4 resv direct "reserved_regions reports direct again"
  fi
  finish_checks
}

assert_control() {
  if grep -qF "DMAR: RMRR base:" "$WORK/dmesg.txt"; then
    fail "control: the kernel saw an RMRR although none was added"
  else
    pass "control: no RMRR in the kernel log"
  fi
  expect 0 vfio_modules OK "vfio modules loaded by insmod"
  expect 1 bind OK "test device bound to vfio-pci"
  expect 1 attach OK "without an RMRR the same VFIO attach (and a DMA map) succeeds"
  expect 1 resv none "reserved_regions has no region at the RMRR bases"
  finish_checks
}

finish_checks() {
  if grep -q '^end$' "$WORK/result-lines.txt"; then
    pass "guest finished and powered off"
  else
    fail "guest did not finish (no 'end' line)"
  fi
  local bad='Kernel panic|BUG: |Oops|WARNING: CPU'
  if grep -qE "$bad" "$WORK/dmesg.txt" "$WORK/console.log"; then
    fail "kernel logged a panic/BUG/Oops/WARNING: $(grep -m1 -hE "$bad" "$WORK/dmesg.txt" "$WORK/console.log")"
  else
    pass "no panic, BUG, Oops or WARNING in the kernel log"
  fi
}

show_dmesg() {
  echo "----- guest dmesg ($WORK/dmesg.txt) -----"
  if ((DMESG_FROM_CONSOLE)); then
    echo "(the guest sent no dmesg: this is its serial console, $WORK/console.log)"
  fi
  cat "$WORK/dmesg.txt"
  echo "----- end of guest dmesg -----"
}

main() {
  parse_args "$@"
  e2e_require_cmds qemu-system-x86_64 gcc objcopy cpio busybox base64 awk timeout
  load_kernel_env
  if ((HOLD)); then
    # Only where the IOMMU core holds the veto can a held device survive the disable (kernel.env's ERA, from
    # the profile); before that `relax-rmrr disable` refuses while a VM holds the device: nothing to prove.
    [[ -n ${ERA:-} ]] || die "kernel.env of $KERNEL has no ERA: rerun tests/setup/kernel.sh $KERNEL"
    if [[ $ERA != require-direct ]]; then
      echo "SKIP --hold-during-disable: $KERNEL is of the $ERA era (the hold test is for require-direct kernels)"
      exit 77
    fi
  fi
  setup_topology
  if [[ -n $KEEP ]]; then
    mkdir -p "$KEEP"
    WORK=$(realpath "$KEEP")
  else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-e2e.XXXXXX")
  fi
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  local t0=$SECONDS
  log "kernel $KERNEL ($RELEASE), topology $TOPOLOGY, module ${MODULE:-none}; work dir $WORK"
  build_guest
  log "booting (TCG, timeout ${TIMEOUT}s)"
  local t1=$SECONDS rc=0
  e2e_qemu_run "$VMLINUZ" "$WORK/initrd" "$WORK/console.log" "$WORK/results.log" "$TIMEOUT" "" || rc=$?
  log "boot finished in $((SECONDS - t1)) s (QEMU status $rc)"
  if ((rc != 0)); then
    fail "QEMU exited with status $rc$( ((rc == 124)) && echo ' (timeout)')"
  fi
  assert_results
  ((FAILURES == 0)) || show_dmesg
  echo "SUMMARY kernel=$KERNEL topology=$TOPOLOGY$( ((CONTROL)) && echo ' control=1')$( ((HOLD)) && echo ' hold=1') module=${MODULE:-none} passed=$PASSES failed=$FAILURES seconds=$((SECONDS - t0))"
  ((FAILURES == 0))
}

main "$@"
