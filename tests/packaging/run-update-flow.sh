#!/bin/bash
# The Debian update flow end to end, in a clean chroot (ctest label e2e):
#
#   tests/packaging/run-update-flow.sh bookworm|trixie
#
#  1. relax-rmrr's packages are built for the suite (tests/packaging/build-packages.sh; lintian: no errors);
#  2. a fresh minbase chroot of the suite, the agreement preseeded, `apt-get install` of both packages;
#  3. `apt-get install` of a kernel that is not running there (image, headers, linux-source of its series): the
#     livepatch appears under /lib/modules/R/updates/dkms through the package's kernel hook, nothing given by hand;
#  4. bookworm: that module passes the QEMU proof (refused, allowed, refused);
#  5. bookworm: the same kernel installed again without its source: the installation succeeds, the hook and
#     `relax-rmrr doctor` say what to install;
#  6. the kernel removed: its module goes; both packages purged: no file, unit, agreement, device selection or
#     module is left.
# The kernel is the one tests/setup/kernel.sh prepared for the suite (debian-6.1, debian-6.12): its cached
# packages are offered to apt, so only what is missing is downloaded. Never touches the host's apt or /lib/modules.
set -euo pipefail
SUITE=${1:?usage: run-update-flow.sh bookworm|trixie}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
FAILED=0
log() { printf '[update-flow %s] %s\n' "$SUITE" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
check() { # DESCRIPTION COMMAND...
  local d=$1
  shift
  if "$@"; then printf 'PASS %s\n' "$d"; else printf 'FAIL %s\n' "$d"; FAILED=1; fi
}

case $SUITE in
  bookworm) KERNEL_NAME=debian-6.1 PROOF=1 ;;
  trixie) KERNEL_NAME=debian-6.12 PROOF=0 ;;
  *) die "unknown suite '$SUITE' (bookworm, trixie)" ;;
esac
ENV_FILE=$CACHE_ROOT/kernels/$KERNEL_NAME/kernel.env
[[ -f $ENV_FILE ]] || die "$ENV_FILE missing: run tests/setup/kernel.sh $KERNEL_NAME first"
# shellcheck source=/dev/null
source "$ENV_FILE"
SERIES=$(cut -d. -f1,2 <<< "$RELEASE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-update-flow.XXXXXX")
ROOT=$WORK/root
# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
  if ((FAILED)); then log "kept $WORK for inspection"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
in_root() { "$REPO/tests/setup/chroot.sh" --run-in "$ROOT" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
step() { # LOG COMMAND...: run in the chroot, keep the output, fail with its tail
  local logf=$WORK/$1
  shift
  log "$*"
  if ! in_root "$@" > "$logf" 2>&1; then
    tail -n 40 "$logf" >&2
    die "failed: $* (log: $logf)"
  fi
}

log "1. packages"
if [[ -n ${RELAX_RMRR_DEBS:-} ]]; then
  # Packages built earlier (a directory as build-packages.sh writes it): for iterating on this script.
  mkdir -p "$WORK/debs" && cp "$RELAX_RMRR_DEBS"/*.deb "$RELAX_RMRR_DEBS"/lintian.txt "$WORK/debs/"
else
  "$HERE/build-packages.sh" "$SUITE" "$WORK/debs"
fi
check "lintian reports no error or warning on either package" bash -c "! grep -qE '^[EW]: ' '$WORK/debs/lintian.txt'"

log "2. a clean $SUITE chroot, the packages installed with the agreement preseeded"
"$REPO/tests/setup/chroot.sh" --fresh "$SUITE" "$ROOT"
mkdir -p "$ROOT/debs"
cp "$WORK"/debs/*.deb "$ROOT/debs/"
# No service starts inside a chroot.
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
step update.log apt-get update -q
step preseed.log sh -c 'echo "relax-rmrr relax-rmrr/consent boolean true" | debconf-set-selections'
step install.log sh -c 'apt-get install -y -q --no-install-recommends /debs/relax-rmrr_*.deb /debs/relax-rmrr-dkms_*.deb'
check "the agreement is recorded (/etc/relax-rmrr/consent)" grep -qx yes "$ROOT/etc/relax-rmrr/consent"
check "dkms knows relax-rmrr" bash -c "'$REPO/tests/setup/chroot.sh' --run-in '$ROOT' dkms status -m relax-rmrr | grep -q relax-rmrr"
check "the boot unit is installed and enabled" bash -c \
  "ls '$ROOT'/{lib,usr/lib}/systemd/system/relax-rmrr.service 2>/dev/null | grep -q . && ls '$ROOT'/etc/systemd/system/sysinit.target.wants/relax-rmrr.service > /dev/null"
check "the kernel hooks are installed" test -x "$ROOT/etc/kernel/postinst.d/relax-rmrr" -a -x "$ROOT/etc/kernel/header_postinst.d/relax-rmrr"
# A mixed host: only the device that goes to a VM is relaxed; the selection must outlive kernel updates and purge.
step devices.log relax-rmrr devices set 0000:00:03.0
check "the device selection is kept for every later load (/etc/relax-rmrr/devices)" grep -qx 0000:00:03.0 "$ROOT/etc/relax-rmrr/devices"

log "3. a kernel that is not running: $RELEASE ($VERSION), its headers and linux-source-$SERIES"
mkdir -p "$ROOT/var/cache/apt/archives"
cp "$CACHE_ROOT/kernels/$KERNEL_NAME"/debs/*.deb "$ROOT/var/cache/apt/archives/" 2> /dev/null || true
image_pkg=linux-image-$RELEASE-unsigned
[[ $SERIES == 7.* ]] && image_pkg=linux-image-$RELEASE
t0=$SECONDS
step kernel.log apt-get install -y -q --no-install-recommends "$image_pkg=$VERSION" "linux-headers-$RELEASE=$VERSION" \
  "linux-source-$SERIES=$VERSION"
log "kernel installation with the livepatch build took $((SECONDS - t0)) s"
KO=$(find "$ROOT/lib/modules/$RELEASE/updates/dkms" -name 'relax_rmrr.ko*' -print -quit 2> /dev/null || true)
check "the livepatch appeared under /lib/modules/$RELEASE/updates/dkms with nothing given by hand" test -n "$KO"
check "apt's output says the hook built it" grep -q "relax-rmrr: livepatch installed for $RELEASE" "$WORK/kernel.log"
check "the hook recorded it as installed" grep -qx "status=installed" "$ROOT/var/lib/relax-rmrr/dkms/$RELEASE.status"
check "the module DKMS built takes the device selection (its devices parameter)" bash -c "modinfo -F parm '$KO' | grep -q '^devices:'"
check "dkms status shows it installed for $RELEASE" bash -c \
  "'$REPO/tests/setup/chroot.sh' --run-in '$ROOT' dkms status -m relax-rmrr -k '$RELEASE' | grep -q ': installed'"
check "the build took its symbols from the image's kallsyms tables" bash -c \
  "grep -h 'relax-rmrr-dkms: symbols' '$ROOT'/var/lib/dkms/relax-rmrr/*/build/make.log '$ROOT'/var/lib/dkms/relax-rmrr/*/$RELEASE/*/log/make.log 2>/dev/null | grep -q 'kallsyms tables of'"
[[ -n $KO ]] || exit 1

if ((PROOF)); then
  log "4. the QEMU proof with the module DKMS built at kernel installation"
  cp "$KO" "$WORK/relax_rmrr.ko"
  if "$REPO/tests/e2e/run-proof.sh" --kernel "$KERNEL_NAME" --topology root-bus --module "$WORK/relax_rmrr.ko" > "$WORK/proof.log" 2>&1; then
    printf 'PASS the module built at kernel installation passes the QEMU proof (%s)\n' "$(grep '^SUMMARY' "$WORK/proof.log" || true)"
  else
    printf 'FAIL the module built at kernel installation fails the QEMU proof\n'
    grep -E '^(FAIL|SUMMARY)' "$WORK/proof.log" || tail -n 30 "$WORK/proof.log"
    FAILED=1
  fi

  log "5. the same kernel installed again, without its source: the installation must succeed"
  # dkms remove drops the whole version once no kernel has it; a host with other kernels keeps it registered.
  pkg_version=$(dpkg-parsechangelog -l "$REPO/debian/changelog" -SVersion)
  step dkms-remove.log sh -c "dkms remove -m relax-rmrr -v $pkg_version -k $RELEASE && \
    { dkms status -m relax-rmrr -v $pkg_version | grep -q . || dkms add -m relax-rmrr -v $pkg_version; }"
  step remove-source.log apt-get remove -y -q "linux-source-$SERIES"
  if in_root apt-get install -y -q --reinstall "$image_pkg=$VERSION" > "$WORK/reinstall.log" 2>&1; then
    printf 'PASS the kernel installs although its livepatch cannot be built\n'
  else
    printf 'FAIL the kernel installation failed with the livepatch unbuildable\n'
    tail -n 20 "$WORK/reinstall.log"
    FAILED=1
  fi
  check "apt's output names the package to install" grep -q "apt-get install linux-source-$SERIES=$VERSION" "$WORK/reinstall.log"
  check "the hook recorded the failure and its fix" bash -c \
    "grep -qx status=failed '$ROOT/var/lib/relax-rmrr/dkms/$RELEASE.status' && grep -q 'hint=apt-get install linux-source-$SERIES' '$ROOT/var/lib/relax-rmrr/dkms/$RELEASE.status'"
  in_root relax-rmrr doctor --json > "$WORK/doctor.json" 2> /dev/null || true
  check "relax-rmrr doctor shows it" bash -c "grep -q '\"status\": \"failed\"' '$WORK/doctor.json' && grep -q 'linux-source-$SERIES' '$WORK/doctor.json'"
fi

log "6. removal and purge"
step kernel-purge.log apt-get purge -y -q "$image_pkg" "linux-headers-$RELEASE"
check "removing the kernel removed its livepatch" bash -c "! find '$ROOT/lib/modules/$RELEASE' -name 'relax_rmrr.ko*' 2>/dev/null | grep -q ."
step purge.log apt-get purge -y -q relax-rmrr relax-rmrr-dkms
leftovers=$(cd "$ROOT" && find . -xdev \( -path ./proc -o -path ./debs -o -path ./var/cache/apt -o -path ./var/log \) -prune -o \
  \( -iname '*relax-rmrr*' -o -iname '*relax_rmrr*' \) -print)
# debconf keeps one backup generation of its database (*.dat-old): the live database must not name us.
leftovers+=$(cd "$ROOT" && grep -rlsI --exclude='*.dat-old' -e relax-rmrr -e relax_rmrr etc var/lib/dkms var/cache/debconf \
  lib/systemd usr/lib/systemd 2> /dev/null || true)
check "purge left no file, unit, agreement or module behind" test -z "$leftovers"
[[ -z $leftovers ]] || printf '  left: %s\n' $leftovers

exit "$FAILED"
