#!/usr/bin/env bash
# Installs everything relax-rmrr needs to build and test, from Debian's packages only.
# Idempotent and non-interactive: safe to run on every CI start.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config
  libelf-dev libbpf-dev libcli11-dev libfmt-dev zlib1g-dev liblzma-dev libzstd-dev liblz4-dev libbz2-dev
  libgtest-dev googletest libbenchmark-dev
)
test_packages=(
  acpica-tools            # iasl: the independent oracle for the DMAR decoder
  qemu-system-x86 busybox-static cpio xz-utils zstd kmod   # the QEMU proof
  dpkg-dev                # dpkg-deb for kernel packages and `package --deb`
  patch bzip2             # `relax-rmrr patch` checks with patch(1); the Ubuntu 5.4 source is .tar.bz2
  debootstrap             # kernels built with another suite's gcc (Debian 13's 6.12) are built for in a chroot
  dkms openssl            # the DKMS test with Debian's real dkms; signing keys for the signing tests
  clang libclang-rt-14-dev lz4   # libFuzzer for tests/fuzz/run-fuzzers.sh; lz4 makes an lz4 bzImage seed
  debhelper dh-dkms po-debconf lintian   # the Debian packages (debian/) and their update-flow test
  groff-base man-db       # relax-rmrr(8) rendered and checked
  clang-format            # the style check (tests/style/check-format.sh)
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it calls apt-get)" >&2
  exit 1
fi

missing=()
for p in "${build_packages[@]}" "${test_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
