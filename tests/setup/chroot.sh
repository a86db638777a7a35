#!/usr/bin/env bash
# A Debian chroot of another suite, for kernels built with that suite's compiler (design.md §3b): Debian 13's
# 6.12 wants gcc-14, which bookworm lacks. relax-rmrr is built and run inside it, as on a Debian 13 host.
#
#   tests/setup/chroot.sh SUITE [PACKAGE...]     create or update ${RELAX_RMRR_CACHE}/chroots/SUITE; print its path
#   tests/setup/chroot.sh --run SUITE CMD...     run CMD inside, with /proc mounted in a private mount namespace
#
# Idempotent: debootstrap runs once; packages are installed when missing. Never touches the host's apt setup.
set -euo pipefail

CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
MIRROR=${RELAX_RMRR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What building relax-rmrr and a kernel module needs inside the chroot.
BUILD_PACKAGES=(make gcc g++ cmake ninja-build pkg-config pahole xz-utils kmod
  libelf-dev libbpf-dev libcli11-dev libfmt-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev)

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
  local want=("${BUILD_PACKAGES[@]}" "$@") missing=()
  for p in "${want[@]}"; do
    run_in "$dir" dpkg-query -W -f='${Status}\n' "${p%%=*}" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing in $suite: ${missing[*]}"
    run_in "$dir" apt-get update -qq >&2 || die "apt-get update in the $suite chroot failed"
    run_in "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      die "apt-get install ${missing[*]} in the $suite chroot failed"
  fi
  echo "$dir"
}

case "${1:-}" in
  --run)
    [[ $# -ge 3 ]] || die "usage: $0 --run SUITE CMD..."
    suite=$2
    shift 2
    [[ -f $CACHE_ROOT/chroots/$suite/.relax-rmrr-bootstrapped ]] || die "no $suite chroot: run $0 $suite first"
    run_in "$CACHE_ROOT/chroots/$suite" "$@"
    ;;
  "" | -h | --help) die "usage: $0 SUITE [PACKAGE...] | $0 --run SUITE CMD..." ;;
  *) ensure "$@" ;;
esac
