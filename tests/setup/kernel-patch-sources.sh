#!/bin/bash
# Fetches the kernel source tarballs the `relax-rmrr patch` tests (ctest label `kernel`) run on, one
# per source layout/era, and writes their paths to $OUT/sources.env:
#   UBUNTU_5_4   Ubuntu 20.04 linux-source-5.4.0   drivers/iommu/intel-iommu.c (5.3-5.7 layout)
#   DEBIAN_5_10  Debian 11 linux-source-5.10        drivers/iommu/intel/iommu.c (5.8-6.5)
#   DEBIAN_6_12  Debian 13 linux-source-6.12        (6.6+; reuses tests/setup/kernel.sh debian-6.12's tarball)
#   DEBIAN_7     Debian sid linux-source-7.x        (6.6+)
# The Debian 6.1 tree comes from tests/setup/kernel.sh debian-6.1 (kernel.env).
#
# The machine's apt configuration is not touched: each archive gets a private one under
# $CACHE_ROOT/apt/kernel-patch-sources*/. Ubuntu's archive key comes from Debian's ubuntu-keyring package,
# unpacked there too. Only linux-source .debs are downloaded (about 120-165 MB each); nothing is installed.
#
# Usage: tests/setup/kernel-patch-sources.sh [NAME...]   (default: all four)
set -euo pipefail

CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
OUT=$CACHE_ROOT/kernel-patch-sources
APT_ROOT=$CACHE_ROOT/apt
DEBIAN_MIRROR=${RELAX_RMRR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
UBUNTU_MIRROR=${RELAX_RMRR_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}

log() { printf 'kernel-patch-sources: %s\n' "$*" >&2; }
die() { printf 'kernel-patch-sources: error: %s\n' "$*" >&2; exit 1; }

for c in apt-get apt-cache dpkg-deb tar; do command -v "$c" >/dev/null || die "$c is needed (Debian: apt-get install apt dpkg tar)"; done

# apt_private DIR SOURCES_LINES: an apt configuration of its own in DIR; sets APT_OPTS.
apt_private() {
  local dir=$1 sources=$2
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  APT_OPTS=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
  if [[ ! -f $dir/sources.list || $(cat "$dir/sources.list") != "$sources" ||
    -z $(find "$dir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit) ]]; then
    printf '%s\n' "$sources" > "$dir/sources.list"
    log "apt-get update ($dir/sources.list)"
    apt-get "${APT_OPTS[@]}" -q update >&2 || die "apt-get update with $dir/sources.list failed"
  fi
}

# fetch NAME PACKAGE: downloads PACKAGE (a linux-source .deb) with APT_OPTS and keeps only the tarball it
# carries in $OUT/NAME/. Prints the tarball's path. Cached: a stamp names the package version.
fetch() {
  local name=$1 pkg=$2 dir=$OUT/$1 version deb tarball
  version=$(apt-cache "${APT_OPTS[@]}" show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1)
  [[ -n $version ]] || die "apt-cache knows no package $pkg"
  mkdir -p "$dir"
  if [[ -f $dir/stamp && $(cat "$dir/stamp") == "$pkg=$version" ]]; then
    tarball=$(find "$dir" -maxdepth 1 -name 'linux-source-*.tar.*' -print -quit)
    [[ -n $tarball ]] && { echo "$tarball"; return; }
  fi
  log "downloading $pkg=$version"
  rm -rf "$dir/deb" && mkdir -p "$dir/deb"
  (cd "$dir/deb" && apt-get "${APT_OPTS[@]}" -q download "$pkg=$version" >&2) || die "apt-get download $pkg=$version failed"
  deb=$(find "$dir/deb" -name '*.deb' -print -quit)
  [[ -n $deb ]] || die "apt-get download $pkg=$version produced no .deb"
  rm -f "$dir"/linux-source-*.tar.*
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir/deb" --wildcards './usr/src/*linux-source-*.tar.*' ||
    die "$deb holds no /usr/src/linux-source-*.tar.*"
  tarball=$(find "$dir/deb/usr/src" -type f -name 'linux-source-*.tar.*' -print -quit)
  [[ -n $tarball ]] || die "$deb holds no linux-source tarball"
  mv "$tarball" "$dir/"
  rm -rf "$dir/deb"
  echo "$pkg=$version" > "$dir/stamp"
  find "$dir" -maxdepth 1 -name 'linux-source-*.tar.*' -print -quit
}

# newest PATTERN: the highest-versioned package name matching ^PATTERN in APT_OPTS's lists.
newest() {
  apt-cache "${APT_OPTS[@]}" search --names-only "^$1" 2>/dev/null | cut -d' ' -f1 | sort -V | tail -n1
}

declare -A FOUND
want=("$@")
[[ ${#want[@]} -gt 0 ]] || want=(UBUNTU_5_4 DEBIAN_5_10 DEBIAN_6_12 DEBIAN_7)

# Keep what an earlier run found for names not asked for this time.
if [[ -f $OUT/sources.env ]]; then
  while IFS='=' read -r k v; do [[ $k =~ ^[A-Z0-9_]+$ ]] && FOUND[$k]=$v; done < "$OUT/sources.env"
fi

for name in "${want[@]}"; do
  case $name in
    DEBIAN_5_10)
      apt_private "$APT_ROOT/kernel-patch-sources" "deb $DEBIAN_MIRROR bullseye main
deb $DEBIAN_MIRROR trixie main
deb $DEBIAN_MIRROR sid main"
      FOUND[$name]=$(fetch debian-5.10 linux-source-5.10) ;;
    DEBIAN_6_12)
      existing=$CACHE_ROOT/kernels/debian-6.12/linux-source-6.12.tar.xz
      if [[ -f $existing ]]; then
        FOUND[$name]=$existing
      else
        apt_private "$APT_ROOT/kernel-patch-sources" "deb $DEBIAN_MIRROR bullseye main
deb $DEBIAN_MIRROR trixie main
deb $DEBIAN_MIRROR sid main"
        FOUND[$name]=$(fetch debian-6.12 linux-source-6.12)
      fi ;;
    DEBIAN_7)
      apt_private "$APT_ROOT/kernel-patch-sources" "deb $DEBIAN_MIRROR bullseye main
deb $DEBIAN_MIRROR trixie main
deb $DEBIAN_MIRROR sid main"
      pkg=$(newest 'linux-source-7\.')
      [[ -n $pkg ]] || die "sid has no linux-source-7.* package"
      FOUND[$name]=$(fetch debian-7 "$pkg") ;;
    UBUNTU_5_4)
      apt_private "$APT_ROOT/kernel-patch-sources" "deb $DEBIAN_MIRROR bullseye main
deb $DEBIAN_MIRROR trixie main
deb $DEBIAN_MIRROR sid main"
      keyring=$APT_ROOT/kernel-patch-sources-ubuntu/keyring/usr/share/keyrings/ubuntu-archive-keyring.gpg
      if [[ ! -f $keyring ]]; then
        log "fetching Debian's ubuntu-keyring package for Ubuntu's archive key"
        mkdir -p "$APT_ROOT/kernel-patch-sources-ubuntu/keyring-deb"
        (cd "$APT_ROOT/kernel-patch-sources-ubuntu/keyring-deb" && apt-get "${APT_OPTS[@]}" -q download ubuntu-keyring >&2) ||
          die "apt-get download ubuntu-keyring failed"
        dpkg-deb -x "$(find "$APT_ROOT/kernel-patch-sources-ubuntu/keyring-deb" -name '*.deb' -print -quit)" \
          "$APT_ROOT/kernel-patch-sources-ubuntu/keyring"
        [[ -f $keyring ]] || die "ubuntu-keyring has no ubuntu-archive-keyring.gpg"
      fi
      apt_private "$APT_ROOT/kernel-patch-sources-ubuntu" "deb [arch=amd64 signed-by=$keyring] $UBUNTU_MIRROR focal main"
      FOUND[$name]=$(fetch ubuntu-5.4 linux-source-5.4.0) ;;
    *) die "unknown name $name (UBUNTU_5_4, DEBIAN_5_10, DEBIAN_6_12, DEBIAN_7)" ;;
  esac
  log "$name=${FOUND[$name]}"
done

mkdir -p "$OUT"
{
  echo "# written by tests/setup/kernel-patch-sources.sh"
  for k in $(printf '%s\n' "${!FOUND[@]}" | sort); do echo "$k=${FOUND[$k]}"; done
} > "$OUT/sources.env.tmp"
mv "$OUT/sources.env.tmp" "$OUT/sources.env"
log "wrote $OUT/sources.env"
