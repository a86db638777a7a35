#!/usr/bin/env bash
# A Debian chroot of another suite, for kernels built with that suite's compiler: Debian 13's
# 6.12 wants gcc-14, which bookworm lacks. relax-rmrr is built and run inside it, as on a Debian 13 host.
#
#   tests/setup/chroot.sh SUITE [PACKAGE...]     create or update ${RELAX_RMRR_CACHE}/chroots/SUITE; print its path
#   tests/setup/chroot.sh --run SUITE CMD...     run CMD inside, with /proc mounted in a private mount namespace
#   tests/setup/chroot.sh --fresh SUITE DIR      a clean minbase chroot of SUITE in DIR (from a cached debootstrap
#                                                tarball): nothing installed but what debootstrap puts there
#   tests/setup/chroot.sh --run-in DIR CMD...    as --run, in any chroot directory
# RELAX_RMRR_CHROOT_SOURCES: extra sources.list lines to add (e.g. "deb http://deb.debian.org/debian
# trixie-backports main" for a backported kernel's headers); backports' default pin (100) keeps the rest as is.
#
# Idempotent: debootstrap runs once; packages are installed when missing. Never touches the host's apt setup.
set -euo pipefail

CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
MIRROR=${RELAX_RMRR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What building relax-rmrr and a kernel module needs inside the chroot.
BUILD_PACKAGES=(make gcc g++ cmake ninja-build pkg-config pahole xz-utils kmod
  libelf-dev libbpf-dev libcli11-dev libfmt-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev)
# Where a suite's archive differs from BUILD_PACKAGES, in one place: NAME=REPLACEMENT pairs, and a donor suite
# whose packages come only when asked for by name (pinned at priority 1, so nothing else is ever taken from it).
# Debian 11 (bullseye) packages pahole as dwarves and has no CLI11 at all: Debian 12's libcli11-dev is used
# (headers only, Architecture: all, no dependencies). Its libbpf-dev comes from bullseye itself (0.3-2, the same
# API): bullseye-security's 0.3-2+deb11u1 is in the index but its .deb answers 404 (seen on 2025-11-25).
declare -A SUITE_PACKAGE_SWAPS=([bullseye]="pahole=dwarves libcli11-dev=libcli11-dev/bookworm libbpf-dev=libbpf-dev/bullseye")
declare -A SUITE_DONOR=([bullseye]=bookworm)

die() { echo "chroot.sh: $*" >&2; exit 1; }
log() { echo "[chroot] $*" >&2; }

run_in() {
  local dir=$1
  shift
  # A private mount namespace: /proc is unmounted with it, even if the command fails.
  unshare --mount --propagation private -- bash -c 'mount -t proc proc "$1/proc" && shift && exec chroot "$@"' \
    _ "$dir" "$dir" "$@"
}

ensure() {
  local suite=$1
  shift
  local dir=$CACHE_ROOT/chroots/$suite
  [[ $suite =~ ^[a-z]+$ ]] || die "bad suite name '$suite'"
  command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install debootstrap"
  mkdir -p "$CACHE_ROOT/chroots"
  exec 8> "$CACHE_ROOT/chroots/.$suite.lock"
  flock 8
  if [[ ! -f $dir/.relax-rmrr-bootstrapped ]]; then
    rm -rf "$dir"
    log "debootstrap $suite (about a minute)"
    debootstrap --variant=minbase "$suite" "$dir" "$MIRROR" >&2 || die "debootstrap $suite failed"
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$MIRROR" "$suite" "$MIRROR" "$suite" "$suite" > "$dir/etc/apt/sources.list"
    touch "$dir/.relax-rmrr-bootstrapped"
  fi
  # Extra apt lines (RELAX_RMRR_CHROOT_SOURCES, from a kernel profile: e.g. the suite's backports pocket), one
  # file per line under sources.list.d; added, never removed, so every profile sharing the chroot keeps its own.
  local line file refresh=0
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    [[ $line =~ ^deb\ [^[:space:]]+\ [a-z-]+(\ [a-z]+)+$ ]] || die "bad apt line in RELAX_RMRR_CHROOT_SOURCES: '$line'"
    file=$dir/etc/apt/sources.list.d/relax-rmrr-$(awk '{print $3}' <<< "$line").list
    if [[ ! -f $file || $(cat "$file") != "$line" ]]; then
      log "adding to the $suite chroot's apt sources: $line"
      printf '%s\n' "$line" > "$file"
      refresh=1
    fi
  done <<< "${RELAX_RMRR_CHROOT_SOURCES:-}"
  if ((refresh)); then
    run_in "$dir" apt-get update -qq >&2 || die "apt-get update in the $suite chroot failed"
  fi
  local donor=${SUITE_DONOR[$suite]:-} build=() p swap
  if [[ -n $donor && ! -f $dir/etc/apt/sources.list.d/relax-rmrr-donor-$donor.list ]]; then
    log "adding $donor to the $suite chroot's apt sources, pinned at priority 1 (packages named /$donor only)"
    printf 'Package: *\nPin: release n=%s\nPin-Priority: 1\n' "$donor" > "$dir/etc/apt/preferences.d/relax-rmrr-donor-$donor"
    printf 'deb %s %s main\n' "$MIRROR" "$donor" > "$dir/etc/apt/sources.list.d/relax-rmrr-donor-$donor.list"
  fi
  for p in "${BUILD_PACKAGES[@]}"; do
    for swap in ${SUITE_PACKAGE_SWAPS[$suite]:-}; do if [[ $p == "${swap%%=*}" ]]; then p=${swap#*=}; fi; done
    build+=("$p")
  done
  local want=("${build[@]}" "$@") missing=()
  for p in "${want[@]}"; do
    run_in "$dir" dpkg-query -W -f='${Status}\n' "${p%%[=/]*}" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing in $suite: ${missing[*]}"
    run_in "$dir" apt-get update -qq >&2 || die "apt-get update in the $suite chroot failed"
    run_in "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      die "apt-get install ${missing[*]} in the $suite chroot failed"
  fi
  echo "$dir"
}

# A clean chroot: debootstrap once into a tarball, then unpack it for every use (seconds, not a minute).
fresh() {
  local suite=$1 dir=$2
  local tarball=$CACHE_ROOT/chroots/$suite-minbase.tar
  [[ $suite =~ ^[a-z]+$ ]] || die "bad suite name '$suite'"
  mkdir -p "$CACHE_ROOT/chroots"
  exec 8> "$CACHE_ROOT/chroots/.$suite-minbase.lock"
  flock 8
  if [[ ! -f $tarball ]]; then
    local tmp
    tmp=$(mktemp -d "$CACHE_ROOT/chroots/.$suite-minbase.XXXXXX")
    log "debootstrap $suite into a clean base (about a minute, once)"
    debootstrap --variant=minbase "$suite" "$tmp/root" "$MIRROR" >&2 || die "debootstrap $suite failed"
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$MIRROR" "$suite" "$MIRROR" "$suite" "$suite" > "$tmp/root/etc/apt/sources.list"
    tar -C "$tmp/root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$tmp"
  fi
  mkdir -p "$dir"
  [[ -z $(ls -A "$dir") ]] || die "$dir is not empty"
  tar -C "$dir" -xf "$tarball"
}

case "${1:-}" in
  --fresh)
    [[ $# -eq 3 ]] || die "usage: $0 --fresh SUITE DIR"
    fresh "$2" "$3"
    ;;
  --run-in)
    [[ $# -ge 3 ]] || die "usage: $0 --run-in DIR CMD..."
    dir=$2
    shift 2
    run_in "$dir" "$@"
    ;;
  --run)
    [[ $# -ge 3 ]] || die "usage: $0 --run SUITE CMD..."
    suite=$2
    shift 2
    [[ -f $CACHE_ROOT/chroots/$suite/.relax-rmrr-bootstrapped ]] || die "no $suite chroot: run $0 $suite first"
    run_in "$CACHE_ROOT/chroots/$suite" "$@"
    ;;
  "" | -h | --help) die "usage: $0 SUITE [PACKAGE...] | $0 --run SUITE CMD... | $0 --fresh SUITE DIR | $0 --run-in DIR CMD..." ;;
  *) ensure "$@" ;;
esac
