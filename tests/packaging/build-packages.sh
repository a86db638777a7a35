#!/bin/bash
# Build relax-rmrr's Debian packages for one suite, the way README's "On your server" says (dpkg-buildpackage -b
# -us -uc), from a copy of this tree (dpkg-buildpackage writes into the parent directory):
#
#   tests/packaging/build-packages.sh SUITE OUTDIR      SUITE: bookworm (this host) or trixie (its build chroot)
#
# OUTDIR receives the .debs, the .changes and lintian.txt (lintian's verdict; errors fail the build). Results are
# cached by the content of the tree, so an unchanged tree is not built twice.
set -euo pipefail
SUITE=${1:?usage: build-packages.sh SUITE OUTDIR}
OUT=${2:?usage: build-packages.sh SUITE OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE_ROOT=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}
BUILD_DEPS=(build-essential debhelper dh-dkms po-debconf dpkg-dev)
log() { echo "[packages] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cd "$REPO"
# What goes into the packages: the tree without tests/ (the package build does not read it), so a change to a
# test does not rebuild them.
files=$(git ls-files -co --exclude-standard | grep -v '^tests/' | LC_ALL=C sort)
key=$(cd "$REPO" && printf '%s\n' "$files" | while IFS= read -r f; do [[ -f $f ]] && sha256sum "$f"; done | sha256sum | cut -c1-16)
cached=$CACHE_ROOT/packages/$SUITE/$key
mkdir -p "$OUT"
if [[ -f $cached/done ]]; then
  log "packages for $SUITE of this tree already built ($cached)"
  cp "$cached"/*.deb "$cached"/*.changes "$cached"/lintian.txt "$OUT"/
  exit 0
fi

version=$(dpkg-parsechangelog -l debian/changelog -SVersion)
case $SUITE in
  bookworm)
    root=
    missing=()
    for p in "${BUILD_DEPS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || missing+=("$p"); done
    ((${#missing[@]} == 0)) || die "missing build dependencies: ${missing[*]} (tests/setup/install-deps.sh installs them)"
    ;;
  *)
    root=$("$REPO/tests/setup/chroot.sh" "$SUITE" "${BUILD_DEPS[@]}")
    ;;
esac
work=$(mktemp -d "${root:-}/tmp/relax-rmrr-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/relax-rmrr-$version
mkdir -p "$src"
printf '%s\n' "$files" | while IFS= read -r f; do [[ -e $f || -L $f ]] && printf '%s\n' "$f"; done | tar -C "$REPO" -cf - -T - | tar -C "$src" -xf -
log "dpkg-buildpackage -b -us -uc (on every core) for $SUITE (relax-rmrr $version)"
t0=$SECONDS
if [[ -z $root ]]; then
  (cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") > "$work/build.log" 2>&1 || { tail -n 40 "$work/build.log" >&2; die "dpkg-buildpackage failed (log above)"; }
else
  "$REPO/tests/setup/chroot.sh" --run "$SUITE" sh -c "cd '${src#"$root"}' && dpkg-buildpackage -b -us -uc -j$(nproc)" > "$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log" >&2; die "dpkg-buildpackage in the $SUITE chroot failed (log above)"; }
fi
log "built in $((SECONDS - t0)) s"
changes=$(ls "$work"/relax-rmrr_"$version"_*.changes)
# lintian of this host (bookworm's): no errors; every warning fixed or overridden with a reason.
if command -v lintian > /dev/null; then
  lintian --info --display-info "$changes" > "$work/lintian.txt" 2>&1 || true
  if grep -E '^[EW]: ' "$work/lintian.txt"; then
    die "lintian found errors or warnings (above; $work/lintian.txt)"
  fi
else
  echo "lintian not installed: not checked" > "$work/lintian.txt"
fi
mkdir -p "$cached"
cp "$work"/*.deb "$changes" "$work/lintian.txt" "$cached"/
touch "$cached/done"
cp "$cached"/*.deb "$cached"/*.changes "$cached"/lintian.txt "$OUT"/
ls "$OUT"/*.deb >&2
