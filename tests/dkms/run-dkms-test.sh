#!/bin/bash
# DKMS with Debian's real dkms (label e2e): the relax-rmrr DKMS package is added, built and installed for a
# test kernel that is NOT running here, then the module DKMS installed (and signed) passes the QEMU proof.
#
#   tests/dkms/run-dkms-test.sh KERNEL RELAX_RMRR_BINARY      (KERNEL: a tests/setup/kernel.sh profile)
#
# The kernel's inputs come from kernel.env and reach the DKMS build step the way an administrator gives them
# for a kernel that is not running: files in the relax-rmrr configuration directory (RELAX_RMRR_ETC, a
# temporary one here): vmlinuz-R, config-R, source-R, dkms.env (the generator). No symbol table is given: the
# build step takes the symbols from the image's own kallsyms tables, as it must for a kernel installed by apt.
# Installs into /lib/modules/R/updates/dkms (allowed); never loads anything on this host. Cleans up with
# `dkms remove --all`. Exit 0 only if every step and every check passed; 77 when dkms is not installed.
set -euo pipefail
KERNEL_NAME=${1:?usage: run-dkms-test.sh KERNEL RELAX_RMRR_BINARY}
BIN=$(realpath "${2:?usage: run-dkms-test.sh KERNEL RELAX_RMRR_BINARY}")
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$KERNEL_NAME/kernel.env
PKG_VERSION=0.0.1.ctest   # a version no real installation uses, so the test never touches one
FAILED=0

log() { printf '[dkms-test] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
check() { # DESCRIPTION COMMAND...
  local d=$1
  shift
  if "$@"; then printf 'PASS %s\n' "$d"; else printf 'FAIL %s\n' "$d"; FAILED=1; fi
}

command -v dkms > /dev/null || { log "dkms is not installed (apt-get install dkms)"; exit 77; }
[[ -f $ENV_FILE ]] || die "$ENV_FILE missing: run tests/setup/kernel.sh $KERNEL_NAME first"
[[ -x $BIN ]] || die "relax-rmrr binary not found: $BIN"
# shellcheck source=/dev/null
source "$ENV_FILE"
[[ -n $KBUILD && -d $KBUILD ]] || die "no kernel headers (KBUILD) for $KERNEL_NAME in $ENV_FILE"
[[ $RELEASE != "$(uname -r)" ]] || log "note: $RELEASE is the running kernel here; the test is meant for a kernel that is not"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-dkms.XXXXXX")
SRC=/usr/src/relax-rmrr-$PKG_VERSION
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  dkms remove -m relax-rmrr -v "$PKG_VERSION" --all > "$WORK/remove.log" 2>&1 || true
  rm -rf "$SRC"
  if ((FAILED)); then log "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
dkms remove -m relax-rmrr -v "$PKG_VERSION" --all > /dev/null 2>&1 || true
rm -rf "$SRC"

log "rendering the DKMS package into $SRC"
"$BIN" package --dkms --version "$PKG_VERSION" --output "$SRC" || die "relax-rmrr package --dkms failed"

ETC=$WORK/etc
mkdir -p "$ETC"
ln -s "$VMLINUZ" "$ETC/vmlinuz-$RELEASE"
ln -s "$CONFIG" "$ETC/config-$RELEASE"
ln -s "$SOURCE_TARBALL" "$ETC/source-$RELEASE"
printf 'RELAX_RMRR_BIN=%q\n' "$BIN" > "$ETC/dkms.env"
export RELAX_RMRR_ETC=$ETC

run() { # LOG COMMAND...: run, keep the output, show its tail on failure
  local logf=$WORK/$1
  shift
  log "$*"
  if ! "$@" > "$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    find /var/lib/dkms/relax-rmrr/"$PKG_VERSION" -name make.log -exec tail -n 40 {} + >&2 2> /dev/null || true
    die "failed: $* (log: $logf)"
  fi
}
t0=$SECONDS
run add.log dkms add -m relax-rmrr -v "$PKG_VERSION"
run build.log dkms build -m relax-rmrr -v "$PKG_VERSION" -k "$RELEASE" --kernelsourcedir "$KBUILD"
run install.log dkms install -m relax-rmrr -v "$PKG_VERSION" -k "$RELEASE" --kernelsourcedir "$KBUILD" --force
log "dkms add/build/install took $((SECONDS - t0)) s"

KO=$(find "/lib/modules/$RELEASE/updates/dkms" -name 'relax_rmrr.ko*' -print -quit 2> /dev/null || true)
check "dkms installed the module under /lib/modules/$RELEASE/updates/dkms" test -n "$KO"
[[ -n $KO ]] || exit 1
cp "$KO" "$WORK/relax_rmrr.ko"
MAKELOG=$(find "/var/lib/dkms/relax-rmrr/$PKG_VERSION" -name make.log -print -quit)
check "the build step took the symbols from the image's kallsyms tables" \
  grep -q "relax-rmrr-dkms: symbols: the kallsyms tables of $ETC/vmlinuz-$RELEASE" "$MAKELOG"
check "dkms status lists relax-rmrr/$PKG_VERSION installed for $RELEASE" \
  bash -c "dkms status -m relax-rmrr -v '$PKG_VERSION' -k '$RELEASE' | grep -q installed"
check "the module is a livepatch (modinfo livepatch=Y)" bash -c "modinfo -F livepatch '$WORK/relax_rmrr.ko' | grep -qx Y"
check "the module was built for $RELEASE (vermagic)" bash -c "modinfo -F vermagic '$WORK/relax_rmrr.ko' | grep -q '^$RELEASE '"
check "STRIP[0]=no kept the klp relocation sections" bash -c "readelf -SW '$WORK/relax_rmrr.ko' | grep -q '\.klp\.rela\.vmlinux\.'"
check "the symbol table is still there" bash -c "readelf -SW '$WORK/relax_rmrr.ko' | grep -q ' \.symtab '"
if grep -q "Signing module" "$WORK/build.log" "$WORK/install.log" 2> /dev/null || grep -q "^Sign command" "$WORK/build.log"; then
  check "DKMS signed the final file (the signature trailer ends the module)" \
    bash -c "tail -c 28 '$WORK/relax_rmrr.ko' | grep -q '~Module signature appended~'"
  check "relax-rmrr sees the DKMS signature" bash -c "'$BIN' status --module '$WORK/relax_rmrr.ko' --json 2>/dev/null | grep -q '\"signed\": true'"
else
  log "note: this dkms did not sign (no sign-file or key): signature checks skipped"
fi

log "QEMU proof with the module DKMS built"
if "$SCRIPT_DIR/../e2e/run-proof.sh" --kernel "$KERNEL_NAME" --topology root-bus --module "$WORK/relax_rmrr.ko" > "$WORK/proof.log" 2>&1; then
  printf 'PASS the DKMS-built module passes the QEMU proof (%s)\n' "$(grep '^SUMMARY' "$WORK/proof.log" || true)"
else
  printf 'FAIL the DKMS-built module fails the QEMU proof\n'
  grep -E '^(FAIL|SUMMARY)' "$WORK/proof.log" || tail -n 30 "$WORK/proof.log"
  FAILED=1
fi
exit "$FAILED"
