#!/bin/bash
# Fetch and prepare one test kernel for the QEMU end-to-end tests.
#
#   tests/setup/kernel.sh KERNEL        KERNEL: debian-6.1 (profiles: see profile_* below)
#
# Idempotent and non-interactive. Everything lands in
#   ${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/KERNEL/
# and is described by kernel.env there (shell syntax, sourced by the e2e scripts):
#   KERNEL RELEASE VERSION VMLINUZ CONFIG KBUILD SOURCE_TARBALL MODULES KALLSYMS KALLSYMS_TEXT
#   KALLSYMS_KASLR GUEST_CMDLINE DMAR REFUSE_ERRNO REFUSE_LOG ERA
# KALLSYMS is /proc/kallsyms read as root in a QEMU guest booted with KASLR on; KALLSYMS_TEXT is the
# address of _text in that boot, so an address A maps to the link-time address A - KALLSYMS_TEXT +
# 0xffffffff81000000 (the x86_64 default). DMAR is QEMU's own DMAR table (with the intel-iommu device),
# the base the e2e tests add RMRRs to.
#
# Environment: RELAX_RMRR_CACHE (cache root), RELAX_RMRR_FORCE=1 (redo every step).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../e2e/lib.sh
source "$SCRIPT_DIR/../e2e/lib.sh"

CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
FORCE=${RELAX_RMRR_FORCE:-0}

usage() {
  echo "usage: $0 KERNEL   (KERNEL: debian-6.1)" >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------------
# Kernel profiles. A profile sets:
#   P_META           apt meta package whose dependency names the ABI package (linux-image-<abi>-amd64)
#   P_SOURCES        empty: the machine's own apt sources; else sources.list lines of a private apt
#                    configuration kept under $CACHE_ROOT/apt/KERNEL/, the machine's
#                    apt state untouched
#   P_SOURCE_PKG     linux-source-X.Y package (same version as the image); empty: none (SOURCE_TARBALL empty)
#   P_HEADERS        install: apt-get install linux-headers-<abi> (KBUILD for the livepatch build);
#                    skip: not installable on this host (another suite's compiler), KBUILD left empty
#                    chroot:SUITE: installed in tests/setup/chroot.sh SUITE (BUILD_CHROOT in kernel.env)
#   P_CHROOT_SOURCES optional sources.list lines added to that chroot (another pocket of its suite)
#   P_IMAGE_PKGS     optional: the packages holding vmlinuz, config and modules, @ABI@ standing for
#                    <abi> (default linux-image-@ABI@-unsigned; 7.x splits them)
#   P_REFUSE_ERRNO   errno name VFIO_GROUP_SET_CONTAINER returns for an RMRR-locked device on this era
#   P_REFUSE_LOG     what the kernel logs when it refuses that attach (the e2e proof checks the reason)
#   P_ERA            optional: require-direct where the IOMMU core holds the veto (dev_iommu.require_direct, the
#                    e2e hold test applies); default attach-check (the veto in the intel driver's attach)
# To add another kernel, write profile_<name> the same way and name it in load_profile.
profile_debian_6_1() {
  P_META=linux-image-amd64
  P_SOURCES=
  P_SOURCE_PKG=linux-source-6.1
  P_HEADERS=install
  P_REFUSE_ERRNO=EPERM
  P_REFUSE_LOG='DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement'
}

# Debian 13's 6.12 (trixie, gcc-14, CONFIG_X86_KERNEL_IBT=y, .ko.xz modules): image, source and a boot
# dump only. Its headers want trixie's gcc-14: build the livepatch in a trixie chroot.
# bookworm-backports' 6.12 has no linux-source of the same version, so trixie's image is the one used.
profile_debian_6_12() {
  P_META=linux-image-amd64
  P_SOURCES='deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main'
  P_SOURCE_PKG=linux-source-6.12
  P_HEADERS=chroot:trixie
  P_ERA=require-direct
  P_REFUSE_ERRNO=EINVAL
  P_REFUSE_LOG='Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping'
}

# Debian 11's 5.10 (bullseye, gcc-10, attach-check era, like 6.1): the newest 5.10 is in bullseye-security,
# with its linux-source-5.10 of the same version. Its headers want gcc-10: build in a bullseye chroot.
profile_debian_5_10() {
  P_META=linux-image-amd64
  P_SOURCES='deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian-security bullseye-security main'
  P_SOURCE_PKG=linux-source-5.10
  P_HEADERS=chroot:bullseye
  P_REFUSE_ERRNO=EPERM
  P_REFUSE_LOG='DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement'
}

# Debian's 7.3 from trixie-backports (built with trixie's gcc-14, CONFIG_X86_KERNEL_IBT=y, require_direct
# era). From 7.x Debian splits the image: linux-binary-unsigned-<abi> (usr/lib/modules/<abi>/vmlinuz.unsigned),
# linux-modules-<abi>, linux-base-<abi> (config). Its headers want gcc-14: they are installed in the trixie
# chroot with a trixie-backports apt line added there (backports' default pin 100 keeps what 6.12 gets).
profile_debian_7_3() {
  P_META=linux-image-amd64/trixie-backports
  P_SOURCES='deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-backports main'
  P_SOURCE_PKG=linux-source-7.3
  P_IMAGE_PKGS='linux-binary-unsigned-@ABI@ linux-modules-@ABI@ linux-base-@ABI@'
  P_HEADERS=chroot:trixie
  P_CHROOT_SOURCES='deb http://deb.debian.org/debian trixie-backports main'
  P_ERA=require-direct
  P_REFUSE_ERRNO=EINVAL
  P_REFUSE_LOG='Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping'
}

# Debian 12's bookworm-backports 6.12 (gcc-12 like bookworm, require_direct era). It has no linux-source of
# its own version: it is the "neighbouring stable release" of Debian 13's 6.12 for the verify test
# (tests/e2e/run-verify-neighbour.sh), which compiles trixie's source against these headers. Headers in a
# bookworm chroot with bookworm-backports added (they depend on the image package: harmless there, never on
# the host).
profile_debian_6_12_bpo() {
  P_META=linux-image-amd64/bookworm-backports
  P_SOURCES='deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-backports main'
  P_SOURCE_PKG=
  P_HEADERS=chroot:bookworm
  P_CHROOT_SOURCES='deb http://deb.debian.org/debian bookworm-backports main'
  P_REFUSE_ERRNO=EINVAL
  P_REFUSE_LOG='Firmware has requested this device have a 1:1 IOMMU mapping, rejecting configuring the device without a 1:1 mapping'
}

load_profile() {
  # Defaults a profile may override (see profile_debian_7_3).
  P_IMAGE_PKGS='linux-image-@ABI@-unsigned'
  P_CHROOT_SOURCES=
  P_ERA=attach-check
  case "$1" in
    debian-6.1) profile_debian_6_1 ;;
    debian-6.12) profile_debian_6_12 ;;
    debian-6.12-bpo) profile_debian_6_12_bpo ;;
    debian-7.3) profile_debian_7_3 ;;
    debian-5.10) profile_debian_5_10 ;;
    *) die "unknown kernel '$1' (known: debian-5.10, debian-6.1, debian-6.12, debian-6.12-bpo, debian-7.3)" ;;
  esac
  P_APT_OPTS=()
  if [[ -n $P_SOURCES ]]; then
    local apt=$CACHE_ROOT/apt/$1
    P_APT_OPTS=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    if [[ ! -f $apt/sources.list || $(cat "$apt/sources.list") != "$P_SOURCES" ||
      -z $(find "$apt/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit) ]]; then
      printf '%s\n' "$P_SOURCES" > "$apt/sources.list"
      log "apt-get update (private configuration $apt)"
      apt-get "${P_APT_OPTS[@]}" -o APT::Sandbox::User=root -q update >&2 ||
        die "apt-get update with $apt/sources.list failed"
    fi
  fi
}

# ---------------------------------------------------------------------------------------------------
# Resolve "linux-image-6.1.0-N-amd64" from the meta package, never hard-coded.
resolve_abi() {
  local dep
  dep=$(apt-cache "${P_APT_OPTS[@]}" depends "$P_META" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
  [[ -n $dep ]] || die "cannot resolve the kernel ABI: 'apt-cache depends $P_META' names no linux-image-*-amd64 (run apt-get update?)"
  RELEASE=${dep#linux-image-}                 # 6.1.0-56-amd64
  IMAGE_PKGS=()
  local p
  for p in $P_IMAGE_PKGS; do IMAGE_PKGS+=("${p//@ABI@/$RELEASE}"); done
  IMAGE_PKG=${IMAGE_PKGS[0]}
  HEADERS_PKG="linux-headers-$RELEASE"
  VERSION=$(apt-cache "${P_APT_OPTS[@]}" show "$IMAGE_PKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
  [[ -n $VERSION ]] || die "apt-cache knows no package $IMAGE_PKG"
  if [[ -n $P_SOURCE_PKG ]]; then
    SOURCE_VERSION=$(apt-cache "${P_APT_OPTS[@]}" show "$P_SOURCE_PKG=$VERSION" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
    [[ $SOURCE_VERSION == "$VERSION" ]] ||
      die "no $P_SOURCE_PKG of version $VERSION (the image's version): source and image must match"
  fi
  log "kernel $KERNEL: release $RELEASE, version $VERSION"
}

# Find a .deb of PKG at VERSION in DIRS, or apt-get download it into $KDIR/debs. Prints its path.
get_deb() {
  local pkg=$1 version=$2 f d
  for d in "$KDIR/debs" "$CACHE_ROOT"; do
    for f in "$d/${pkg}_"*.deb; do
      [[ -f $f ]] || continue
      if [[ $(dpkg-deb -f "$f" Package) == "$pkg" && $(dpkg-deb -f "$f" Version) == "$version" ]]; then
        echo "$f"
        return 0
      fi
    done
  done
  mkdir -p "$KDIR/debs"
  log "downloading $pkg=$version"
  (cd "$KDIR/debs" && apt-get "${P_APT_OPTS[@]}" -o APT::Sandbox::User=root -q download "$pkg=$version" >&2) ||
    die "apt-get download $pkg=$version failed"
  f=$(find "$KDIR/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n1)
  [[ -n $f && -f $f ]] || die "apt-get download $pkg=$version produced no .deb in $KDIR/debs"
  echo "$f"
}

install_headers() {
  local status
  BUILD_CHROOT=
  if [[ $P_HEADERS == chroot:* ]]; then
    # The headers (and the compiler they name) live in a chroot of their own suite; KBUILD is a path in it.
    BUILD_CHROOT=$(RELAX_RMRR_CHROOT_SOURCES=$P_CHROOT_SOURCES "$SCRIPT_DIR/chroot.sh" "${P_HEADERS#chroot:}" "$HEADERS_PKG=$VERSION")
    KBUILD=/usr/src/$HEADERS_PKG
    [[ -f $BUILD_CHROOT$KBUILD/Makefile ]] || die "kbuild tree $KBUILD missing in $BUILD_CHROOT"
    return
  fi
  if [[ $P_HEADERS == skip ]]; then
    KBUILD=
    log "headers of $RELEASE not installed on this host (profile: another suite's compiler); KBUILD left empty"
    return
  fi
  status=$(dpkg-query -W -f='${Status} ${Version}' "$HEADERS_PKG" 2>/dev/null || true)
  if [[ $status == "install ok installed $VERSION" ]]; then
    log "$HEADERS_PKG $VERSION already installed"
  else
    log "apt-get install $HEADERS_PKG=$VERSION"
    DEBIAN_FRONTEND=noninteractive apt-get "${P_APT_OPTS[@]}" install -y -q "$HEADERS_PKG=$VERSION" >&2 ||
      die "apt-get install $HEADERS_PKG=$VERSION failed"
  fi
  KBUILD=/usr/src/$HEADERS_PKG
  [[ -f $KBUILD/Makefile ]] || KBUILD=/lib/modules/$RELEASE/build
  [[ -f $KBUILD/Makefile ]] || die "kbuild tree of $RELEASE not found (/usr/src/$HEADERS_PKG, /lib/modules/$RELEASE/build)"
}

extract_image() {
  local deb stamp=$KDIR/image.stamp p
  if [[ $FORCE != 1 && -f $stamp && $(cat "$stamp") == "${IMAGE_PKGS[*]} $VERSION" ]]; then
    log "image ${IMAGE_PKGS[*]} $VERSION already extracted"
  else
    rm -rf "$KDIR/image" "$stamp"
    mkdir -p "$KDIR/image"
    for p in "${IMAGE_PKGS[@]}"; do
      deb=$(get_deb "$p" "$VERSION")
      log "extracting $deb"
      dpkg-deb -x "$deb" "$KDIR/image"
    done
    echo "${IMAGE_PKGS[*]} $VERSION" > "$stamp"
  fi
  MODULES=$KDIR/image/lib/modules/$RELEASE
  [[ -d $MODULES ]] || MODULES=$KDIR/image/usr/lib/modules/$RELEASE   # merged-/usr packages (trixie on)
  # vmlinuz and config in /boot (linux-image-*-unsigned), or in the modules directory (7.x's linux-binary-*
  # and linux-base-*): whichever the packages hold.
  VMLINUZ=$KDIR/image/boot/vmlinuz-$RELEASE
  [[ -e $VMLINUZ ]] || VMLINUZ=$MODULES/vmlinuz.unsigned
  [[ -e $VMLINUZ ]] || VMLINUZ=$MODULES/vmlinuz
  CONFIG=$KDIR/image/boot/config-$RELEASE
  [[ -e $CONFIG ]] || CONFIG=$MODULES/config
  local f
  for f in "$VMLINUZ" "$CONFIG" "$MODULES/kernel"; do
    [[ -e $f ]] || die "${IMAGE_PKGS[*]} $VERSION: no $f"
  done
}

place_source() {
  local deb tarball stamp=$KDIR/source.stamp
  if [[ -z $P_SOURCE_PKG ]]; then
    SOURCE_TARBALL=
    log "no source package for this kernel (profile): SOURCE_TARBALL left empty"
    return
  fi
  tarball=$KDIR/$P_SOURCE_PKG.tar.xz
  if [[ $FORCE != 1 && -f $stamp && -f $tarball && $(cat "$stamp") == "$P_SOURCE_PKG $VERSION" ]]; then
    log "source $P_SOURCE_PKG $VERSION already in place"
  else
    deb=$(get_deb "$P_SOURCE_PKG" "$VERSION")
    log "taking the source tarball out of $deb"
    rm -f "$stamp" "$tarball"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/src/$P_SOURCE_PKG.tar.xz" > "$tarball.tmp" ||
      die "$deb has no ./usr/src/$P_SOURCE_PKG.tar.xz"
    mv "$tarball.tmp" "$tarball"
    echo "$P_SOURCE_PKG $VERSION" > "$stamp"
  fi
  SOURCE_TARBALL=$tarball
}

# Boot the kernel once in QEMU (KASLR on) and keep /proc/kallsyms, /proc/cmdline and QEMU's DMAR.
dump_guest_data() {
  local stamp=$KDIR/dump.stamp want
  want="$IMAGE_PKG $VERSION $(e2e_qemu_machine_id)"
  KALLSYMS=$KDIR/kallsyms
  DMAR=$KDIR/qemu-dmar.dat
  if [[ $FORCE != 1 && -f $stamp && $(cat "$stamp") == "$want" && -s $KALLSYMS && -s $DMAR && -s $KDIR/dump.env ]]; then
    log "kallsyms and DMAR already dumped"
  else
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-dump.XXXXXX")
    rm -f "$stamp"
    e2e_build_tools "$work/tools"
    printf 'MODE=dump\n' > "$work/e2e.conf"
    e2e_build_initramfs "$work/initrd" "$work/e2e.conf" "$MODULES" "$work/tools" ""
    log "booting $RELEASE in QEMU (TCG) to dump kallsyms and the DMAR table"
    local t0=$SECONDS
    e2e_qemu_run "$VMLINUZ" "$work/initrd" "$work/console.log" "$work/results.log" \
      "${RELAX_RMRR_DUMP_TIMEOUT:-240}" "" || {
      tail -n 40 "$work/console.log" >&2 || true
      die "dump boot failed (console log: $work/console.log)"
    }
    log "dump boot took $((SECONDS - t0)) s"
    e2e_extract_blob "$work/results.log" kallsyms > "$KALLSYMS.tmp" || die "no kallsyms in the dump (see $work/results.log)"
    e2e_extract_blob "$work/results.log" dmar > "$DMAR.tmp" || die "no DMAR in the dump (see $work/results.log)"
    e2e_extract_blob "$work/results.log" cmdline > "$KDIR/guest-cmdline.txt" || die "no cmdline in the dump"
    local text nlines
    text=$(awk '$3 == "_text" { print $1; exit }' "$KALLSYMS.tmp")
    nlines=$(wc -l < "$KALLSYMS.tmp")
    [[ -n $text && $text != 0000000000000000 ]] || die "kallsyms dump has no real _text address (not read as root?)"
    ((nlines > 10000)) || die "kallsyms dump looks truncated ($nlines lines)"
    [[ $(head -c 4 "$DMAR.tmp") == DMAR ]] || die "dumped DMAR table does not start with 'DMAR'"
    mv "$KALLSYMS.tmp" "$KALLSYMS"
    mv "$DMAR.tmp" "$DMAR"
    local kaslr=on
    grep -qw nokaslr "$KDIR/guest-cmdline.txt" && kaslr=off
    {
      printf 'KALLSYMS_TEXT=%q\n' "$text"
      printf 'KALLSYMS_KASLR=%q\n' "$kaslr"
      printf 'GUEST_CMDLINE=%q\n' "$(tr -d '\n' < "$KDIR/guest-cmdline.txt")"
    } > "$KDIR/dump.env"
    echo "$want" > "$stamp"
    rm -rf "$work"
    log "kallsyms: $nlines symbols, _text=$text (KASLR $kaslr); DMAR: $(stat -c %s "$DMAR") bytes"
  fi
  # shellcheck source=/dev/null
  source "$KDIR/dump.env"
}

write_env() {
  local tmp=$KDIR/kernel.env.tmp
  {
    echo "# written by tests/setup/kernel.sh $KERNEL; source it"
    printf 'KERNEL=%q\n' "$KERNEL"
    printf 'RELEASE=%q\n' "$RELEASE"
    printf 'VERSION=%q\n' "$VERSION"
    printf 'VMLINUZ=%q\n' "$VMLINUZ"
    printf 'CONFIG=%q\n' "$CONFIG"
    printf 'KBUILD=%q\n' "$KBUILD"
    printf 'BUILD_CHROOT=%q\n' "$BUILD_CHROOT"
    printf 'SOURCE_TARBALL=%q\n' "$SOURCE_TARBALL"
    printf 'MODULES=%q\n' "$MODULES"
    printf 'KALLSYMS=%q\n' "$KALLSYMS"
    printf 'KALLSYMS_TEXT=%q\n' "$KALLSYMS_TEXT"
    printf 'KALLSYMS_KASLR=%q\n' "$KALLSYMS_KASLR"
    printf 'GUEST_CMDLINE=%q\n' "$GUEST_CMDLINE"
    printf 'DMAR=%q\n' "$DMAR"
    printf 'REFUSE_ERRNO=%q\n' "$P_REFUSE_ERRNO"
    printf 'REFUSE_LOG=%q\n' "$P_REFUSE_LOG"
    printf 'ERA=%q\n' "$P_ERA"
  } > "$tmp"
  mv "$tmp" "$KDIR/kernel.env"
  log "wrote $KDIR/kernel.env"
}

main() {
  [[ $# -eq 1 ]] || usage
  KERNEL=$1
  load_profile "$KERNEL"
  e2e_require_cmds apt-cache apt-get dpkg-deb dpkg-query tar gcc objcopy cpio base64 qemu-system-x86_64 busybox
  KDIR=$CACHE_ROOT/kernels/$KERNEL
  mkdir -p "$KDIR"
  trap e2e_qemu_kill EXIT
  trap 'exit 130' INT TERM
  exec 9> "$KDIR/.lock"
  flock 9 || die "cannot lock $KDIR/.lock"
  resolve_abi
  install_headers
  extract_image
  place_source
  dump_guest_data
  write_env
}

main "$@"
