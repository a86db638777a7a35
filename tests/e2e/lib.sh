# shellcheck shell=bash
# Host-side functions of the relax-rmrr QEMU end-to-end tests. Sourced by tests/setup/kernel.sh and
# tests/e2e/run-proof.sh; defines functions only (and E2E_* globals).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# QEMU machine shared by the dump boot and the proof boots. The DMAR table QEMU builds
# depends on the intel-iommu options: e2e_qemu_machine_id keys the cached DMAR on them.
# thread=single: the two vCPUs take turns on one host thread. With multi-threaded TCG a vCPU can run code the
# other has just rewritten (the kernel's int3-based text patching of static keys at boot) from a stale
# translation and die on the int3 (seen once in ~25 boots: "Oops: int3" in sched_clock_cpu, no module loaded).
# shellcheck disable=SC2054 # commas belong to QEMU's option syntax
E2E_QEMU_BASE=(-M q35,kernel-irqchip=split -accel tcg,thread=single -m 1024 -smp 2 -cpu max
  -nodefaults -display none -monitor none -no-reboot
  -device intel-iommu,intremap=on,caching-mode=on)
# no_timer_check: under TCG on a busy host the boot-time IO-APIC timer check can fail and panic.
E2E_QEMU_APPEND_BASE="console=ttyS0 intel_iommu=on panic=-1 no_timer_check"
E2E_QEMU_DEVICES=()   # extra -device arguments of one topology
E2E_QEMU_PID=

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

e2e_require_cmds() {
  local c missing=()
  for c in "$@"; do
    command -v "$c" > /dev/null 2>&1 || missing+=("$c")
  done
  ((${#missing[@]} == 0)) ||
    die "missing commands: ${missing[*]} (Debian: apt-get install qemu-system-x86 busybox-static cpio gcc libc6-dev binutils xz-utils zstd acpica-tools)"
}

e2e_qemu_machine_id() { echo "${E2E_QEMU_BASE[*]}" | md5sum | cut -c1-12; }

# e2e_build_tools OUTDIR: the static VFIO client (for the guest) and the DMAR editor (for the host).
e2e_build_tools() {
  local out=$1
  mkdir -p "$out"
  [[ -f /usr/include/linux/vfio.h ]] || die "/usr/include/linux/vfio.h missing (apt-get install linux-libc-dev)"
  gcc -O2 -Wall -Wextra -static -o "$out/vfio-attach" "$E2E_DIR/tools/vfio-attach.c" ||
    die "building the static VFIO client failed (is libc6-dev with libc.a installed?)"
  gcc -O2 -Wall -Wextra -o "$out/dmar-add-rmrr" "$E2E_DIR/tools/dmar-add-rmrr.c" ||
    die "building dmar-add-rmrr failed"
}

# Index of the modules tree: name (with '-' as '_') -> file. Filled by _e2e_index_modules.
declare -gA E2E_MODFILE=()
_e2e_index_modules() {
  local dir=$1 f base
  E2E_MODFILE=()
  while IFS= read -r f; do
    base=${f##*/}
    base=${base%%.ko*}
    E2E_MODFILE[${base//-/_}]=$f
  done < <(find "$dir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
}

# _e2e_modinfo FIELD FILE.ko: values of FIELD in the module's .modinfo section (objcopy; nothing is
# loaded on the host, kmod is not needed).
_e2e_modinfo() {
  local tmp rc=0
  tmp=$(mktemp "${TMPDIR:-/tmp}/relax-rmrr-modinfo.XXXXXX")
  if objcopy -O binary --only-section=.modinfo "$2" "$tmp" 2> /dev/null; then
    tr '\0' '\n' < "$tmp" | sed -n "s/^$1=//p"
  else
    rc=1
  fi
  rm -f "$tmp"
  return "$rc"
}

# _e2e_copy_module FILE DEST.ko: copy, decompressing .ko.xz/.ko.zst/.ko.gz (busybox insmod wants plain ELF).
_e2e_copy_module() {
  case "$1" in
    *.ko) cp "$1" "$2" ;;
    *.ko.xz) xz -dc "$1" > "$2" ;;
    *.ko.zst) zstd -qdc "$1" > "$2" ;;
    *.ko.gz) gzip -dc "$1" > "$2" ;;
    *) die "unknown module file type: $1" ;;
  esac || die "cannot unpack $1"
}

# _e2e_add_module NAME DESTDIR: unpack NAME and its dependency closure into DESTDIR/<name>.ko and
# append them to E2E_MODORDER, dependencies first.
declare -ga E2E_MODORDER=()
declare -gA E2E_MODSEEN=()
_e2e_add_module() {
  local name=${1//-/_} dest=$2 file deps d
  [[ -n ${E2E_MODSEEN[$name]:-} ]] && return 0
  E2E_MODSEEN[$name]=1
  file=${E2E_MODFILE[$name]:-}
  [[ -n $file ]] || die "kernel module '$name' not found in the modules tree"
  _e2e_copy_module "$file" "$dest/$name.ko"
  deps=$(_e2e_modinfo depends "$dest/$name.ko") || die "cannot read .modinfo of $file"
  for d in ${deps//,/ }; do
    _e2e_add_module "$d" "$dest"
  done
  E2E_MODORDER+=("$name")
}

# e2e_build_initramfs OUT CONF MODULES_DIR TOOLS_DIR LIVEPATCH_KO
# The guest: busybox-static, guest/init, CONF as /e2e.conf, the vfio modules (vfio_iommu_type1 and
# vfio-pci with their dependency closure, in load order), the VFIO client, the livepatch as /relax.ko.
# Uncompressed newc cpio (no decompression cost under TCG).
e2e_build_initramfs() {
  local out=$1 conf=$2 moddir=$3 tools=$4 livepatch=$5 stage busybox
  busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
  if ldd "$busybox" > /dev/null 2>&1; then
    die "$busybox is dynamically linked: apt-get install busybox-static"
  fi
  stage=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-initrd.XXXXXX")
  mkdir -p "$stage"/{bin,proc,sys,dev,tmp,lib/e2e}
  cp "$busybox" "$stage/bin/busybox"
  cp "$E2E_DIR/guest/init" "$stage/init"
  chmod 755 "$stage/init"
  cp "$conf" "$stage/e2e.conf"
  cp "$tools/vfio-attach" "$stage/bin/vfio-attach"

  _e2e_index_modules "$moddir"
  E2E_MODORDER=()
  E2E_MODSEEN=()
  _e2e_add_module vfio_iommu_type1 "$stage/lib/e2e"
  _e2e_add_module vfio_pci "$stage/lib/e2e"
  if [[ -n $livepatch ]]; then
    local d
    _e2e_copy_module "$livepatch" "$stage/relax.ko"
    for d in $(_e2e_modinfo depends "$stage/relax.ko" | tr ',' ' '); do _e2e_add_module "$d" "$stage/lib/e2e"; done
  fi
  printf '%s\n' "${E2E_MODORDER[@]}" > "$stage/lib/e2e/modules.order"

  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$out" ||
    die "cpio of the initramfs failed"
  rm -rf "$stage"
}

# e2e_acpi_cpio DMAR_AML OUT: the uncompressed cpio the kernel's ACPI table upgrade reads
# (kernel/firmware/acpi/dmar.aml); it must come first in the initrd.
e2e_acpi_cpio() {
  local aml=$1 out=$2 stage
  stage=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-acpi.XXXXXX")
  mkdir -p "$stage/kernel/firmware/acpi"
  cp "$aml" "$stage/kernel/firmware/acpi/dmar.aml"
  (cd "$stage" && printf '%s\n' kernel kernel/firmware kernel/firmware/acpi kernel/firmware/acpi/dmar.aml |
    cpio --quiet -o -H newc -R 0:0) > "$out" || die "cpio of the ACPI override failed"
  rm -rf "$stage"
}

# e2e_qemu_kill: stop the QEMU this shell started (its timeout wrapper, and QEMU itself through the pid
# QEMU wrote), if any. Safe to call twice; called from the EXIT traps.
E2E_QEMU_PIDFILE=
e2e_qemu_kill() {
  local qpid=''
  [[ -n $E2E_QEMU_PIDFILE && -s $E2E_QEMU_PIDFILE ]] && qpid=$(cat "$E2E_QEMU_PIDFILE" 2> /dev/null || true)
  if [[ -n $E2E_QEMU_PID ]] && kill -0 "$E2E_QEMU_PID" 2> /dev/null; then
    kill "$E2E_QEMU_PID" 2> /dev/null || true   # timeout(1) passes SIGTERM on to QEMU
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$E2E_QEMU_PID" 2> /dev/null || break
      sleep 0.5
    done
    kill -9 "$E2E_QEMU_PID" 2> /dev/null || true
    wait "$E2E_QEMU_PID" 2> /dev/null || true
  fi
  if [[ $qpid =~ ^[0-9]+$ ]] && kill -0 "$qpid" 2> /dev/null &&
    [[ $(cat "/proc/$qpid/comm" 2> /dev/null) == qemu-system-* ]]; then
    kill -9 "$qpid" 2> /dev/null || true
  fi
  E2E_QEMU_PID=
}

# e2e_qemu_run VMLINUZ INITRD CONSOLE_LOG RESULTS_LOG TIMEOUT_S EXTRA_APPEND
# Boots under TCG with ttyS0 -> CONSOLE_LOG and ttyS1 -> RESULTS_LOG; extra devices from
# E2E_QEMU_DEVICES. Returns 0 when the guest powered off by itself, 124 on timeout, QEMU's status else.
# The caller must trap EXIT to e2e_qemu_kill.
e2e_qemu_run() {
  local kernel=$1 initrd=$2 console=$3 results=$4 timeout=$5 append=$6 rc=0
  : > "$console"
  : > "$results"
  E2E_QEMU_PIDFILE=$console.pid
  rm -f "$E2E_QEMU_PIDFILE"
  timeout -k 5 "$timeout" qemu-system-x86_64 "${E2E_QEMU_BASE[@]}" \
    -serial "file:$console" -serial "file:$results" -pidfile "$E2E_QEMU_PIDFILE" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "$E2E_QEMU_APPEND_BASE${append:+ $append}" \
    "${E2E_QEMU_DEVICES[@]}" < /dev/null > "$console.qemu" 2>&1 &
  E2E_QEMU_PID=$!
  wait "$E2E_QEMU_PID" || rc=$?
  E2E_QEMU_PID=
  if ((rc == 124)); then
    log "QEMU timed out after ${timeout}s"
  elif ((rc != 0)); then
    log "QEMU exited with status $rc: $(tail -n 5 "$console.qemu")"
  fi
  return "$rc"
}

# e2e_extract_blob RESULTS_LOG NAME: print one framed blob (decoded); fails when absent or unfinished.
e2e_extract_blob() {
  local file=$1 name=$2 enc
  enc=$(awk -v n="$name" '{ sub(/\r$/, "") } $1 == "E2E-BLOB-BEGIN" && $2 == n { e = $3 }
    $1 == "E2E-BLOB-END" && $2 == n && e != "" { print e; exit }' "$file")
  [[ -n $enc ]] || return 1
  awk -v n="$name" '{ sub(/\r$/, "") }
    $1 == "E2E-BLOB-END" && $2 == n { exit }
    inblob { if (held) print prev; prev = $0; held = 1 }
    $1 == "E2E-BLOB-BEGIN" && $2 == n { inblob = 1 }
    END { if (held && prev != "") print prev }' "$file" |
    if [[ $enc == base64 ]]; then base64 -d; else cat; fi
}

# e2e_result_lines RESULTS_LOG: the guest's "E2E ..." lines outside blobs, without the prefix.
e2e_result_lines() {
  awk '{ sub(/\r$/, "") }
    $1 == "E2E-BLOB-BEGIN" { inblob = 1; next }
    $1 == "E2E-BLOB-END" { inblob = 0; next }
    !inblob && $1 == "E2E" { sub(/^E2E /, ""); print }' "$1"
}

# e2e_topology_dmar VMLINUZ MODULES TOOLS WORK OUT: QEMU's own DMAR for the machine plus the current
# E2E_QEMU_DEVICES. QEMU (7.2 here) lists the PCI devices present at machine creation in the DRHD's
# device scopes (no INCLUDE_PCI_ALL), so the table depends on the topology: dumped by one short boot,
# cached under $RELAX_RMRR_CACHE/qemu-dmar/ keyed by the QEMU version and arguments.
e2e_topology_dmar() {
  local vmlinuz=$1 moddir=$2 tools=$3 work=$4 out=$5 key cache
  key=$( (qemu-system-x86_64 --version | head -n1; echo "${E2E_QEMU_BASE[*]}"; echo "${E2E_QEMU_DEVICES[*]}") |
    md5sum | cut -c1-16)
  cache=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/qemu-dmar/$key.dat
  if [[ ! -s $cache ]]; then
    log "dumping QEMU's DMAR for this topology (one short boot)"
    mkdir -p "${cache%/*}" "$work/dmar-dump"
    printf 'MODE=dmar\n' > "$work/dmar-dump/e2e.conf"
    e2e_build_initramfs "$work/dmar-dump/initrd" "$work/dmar-dump/e2e.conf" "$moddir" "$tools" ""
    e2e_qemu_run "$vmlinuz" "$work/dmar-dump/initrd" "$work/dmar-dump/console.log" \
      "$work/dmar-dump/results.log" "${RELAX_RMRR_DUMP_TIMEOUT:-180}" "" ||
      die "the DMAR dump boot failed (console: $work/dmar-dump/console.log)"
    e2e_extract_blob "$work/dmar-dump/results.log" dmar > "$cache.tmp" ||
      die "no DMAR table in the dump boot (see $work/dmar-dump/results.log)"
    [[ $(head -c 4 "$cache.tmp") == DMAR ]] || die "dumped DMAR table does not start with 'DMAR'"
    mv "$cache.tmp" "$cache"
    printf '%s\n' "$(qemu-system-x86_64 --version | head -n1)" "${E2E_QEMU_BASE[*]}" "${E2E_QEMU_DEVICES[*]}" > "${cache%.dat}.txt"
  fi
  cp "$cache" "$out"
}

# e2e_chroot_relax_rmrr CHROOT HOST_BINARY: print the path, inside CHROOT, of a relax-rmrr that runs there.
# A chroot of the host's own Debian suite gets the host's binary (same libraries); any other suite gets the
# relax-rmrr package of this tree built for that suite, as a host of that suite installs it.
e2e_chroot_relax_rmrr() {
  local root=$1 bin=$2 suite
  suite=$(basename "$root")
  if [[ $(. /etc/os-release && echo "${VERSION_CODENAME:-}") == "$(. "$root/etc/os-release" && echo "${VERSION_CODENAME:-}")" ]]; then
    [[ -x $bin ]] || die "relax-rmrr binary not found: $bin"
    mkdir -p "$root/opt/relax-rmrr"
    cp "$bin" "$root/opt/relax-rmrr/relax-rmrr"
    "$E2E_DIR/../setup/chroot.sh" --run "$suite" /opt/relax-rmrr/relax-rmrr --version > /dev/null ||
      die "the host's relax-rmrr does not run in the $suite chroot (libraries missing there?)"
    echo /opt/relax-rmrr/relax-rmrr
    return
  fi
  # The suite's own package, built once per tree content in that chroot (tests/packaging/build-packages.sh, the
  # same build the update flow installs), unpacked to a private prefix: one compile of the tool per suite.
  local debs
  debs=$(mktemp -d)
  "$E2E_DIR/../packaging/build-packages.sh" "$suite" "$debs" >&2 || { rm -rf "$debs"; die "building the $suite packages failed"; }
  rm -rf "$root/opt/relax-rmrr-pkg"
  dpkg-deb -x "$(ls "$debs"/relax-rmrr_*_amd64.deb)" "$root/opt/relax-rmrr-pkg"
  rm -rf "$debs"
  "$E2E_DIR/../setup/chroot.sh" --run "$suite" /opt/relax-rmrr-pkg/usr/bin/relax-rmrr --version > /dev/null ||
    die "the $suite package's relax-rmrr does not run in the $suite chroot (libraries missing there?)"
  echo /opt/relax-rmrr-pkg/usr/bin/relax-rmrr
}

# e2e_chroot_inputs CHROOT NAME FILE...: copy the FILEs into CHROOT/inputs/NAME (unchanged ones are not copied
# again); print that directory as the chroot sees it.
e2e_chroot_inputs() {
  local root=$1 name=$2 f
  shift 2
  mkdir -p "$root/inputs/$name"
  for f in "$@"; do
    cmp -s "$f" "$root/inputs/$name/$(basename "$f")" || cp "$f" "$root/inputs/$name/"
  done
  echo "/inputs/$name"
}

# e2e_binary_cpio BINARY OUT [FILE=GUEST_PATH...]: a cpio (appended to an initrd) with BINARY as /bin/relax-rmrr,
# its shared libraries (ldd's closure, at the paths ldd names) and any extra FILE at GUEST_PATH.
e2e_binary_cpio() {
  local bin=$1 out=$2 stage lib pair
  shift 2
  stage=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-bin.XXXXXX")
  mkdir -p "$stage/bin"
  cp "$bin" "$stage/bin/relax-rmrr"
  while read -r lib; do
    mkdir -p "$stage$(dirname "$lib")"
    cp -L "$lib" "$stage$lib"
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  for pair in "$@"; do
    mkdir -p "$stage$(dirname "${pair#*=}")"
    cp -L "${pair%%=*}" "$stage${pair#*=}"
  done
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$out" || die "cpio of the binary failed"
  rm -rf "$stage"
}

# The host's verdicts on the guest's result lines ($WORK/result-lines.txt, from e2e_result_lines): one PASS or FAIL
# line each, counted in PASSES and FAILURES (the caller sets both to 0).
e2e_pass() { PASSES=$((PASSES + 1)); printf 'PASS %s\n' "$*"; }
e2e_fail() { FAILURES=$((FAILURES + 1)); printf 'FAIL %s\n' "$*"; }
# e2e_line STEP CHECK: the guest's line for that step and check (empty if none); e2e_field LINE KEY: KEY's value.
e2e_line() { grep -m1 "^step=$1 check=$2 " "$WORK/result-lines.txt" || true; }
e2e_field() { sed -n "s/.*[[:space:]]$2=\\([^[:space:]]*\\).*/\\1/p" <<< " $1"; }
# e2e_expect STEP CHECK WANT DESCRIPTION: the line's result= is WANT.
e2e_expect() {
  local l got
  l=$(e2e_line "$1" "$2")
  [[ -n $l ]] || { e2e_fail "step$1.$2: $4 (no result line from the guest)"; return; }
  got=$(e2e_field "$l" result)
  if [[ $got == "$3" ]]; then e2e_pass "step$1.$2: $4 | $l"; else e2e_fail "step$1.$2: $4: expected result=$3 | $l"; fi
}
# e2e_expect_clean_end: the guest reached its end and powered off, and the kernel logged no panic, BUG, Oops or
# WARNING ($WORK/dmesg.txt, $WORK/console.log).
e2e_expect_clean_end() {
  local bad='Kernel panic|BUG: |Oops|WARNING: CPU'
  if grep -q '^end$' "$WORK/result-lines.txt"; then e2e_pass "guest finished and powered off"; else e2e_fail "guest did not finish (no 'end' line)"; fi
  if grep -qE "$bad" "$WORK/dmesg.txt" "$WORK/console.log"; then
    e2e_fail "kernel logged a panic/BUG/Oops/WARNING: $(grep -m1 -hE "$bad" "$WORK/dmesg.txt" "$WORK/console.log")"
  else
    e2e_pass "no panic, BUG, Oops or WARNING in the kernel log"
  fi
}

# e2e_load_kernel_env KERNEL: sources the kernel.env tests/setup/kernel.sh wrote for KERNEL (VMLINUZ, MODULES,
# RELEASE, KBUILD, BUILD_CHROOT, ...), or dies saying which setup step to run.
e2e_load_kernel_env() {
  local env=${RELAX_RMRR_CACHE:-/var/cache/relax-rmrr}/kernels/$1/kernel.env
  [[ -f $env ]] || die "$env missing: run tests/setup/kernel.sh $1 first"
  # shellcheck disable=SC2034 # read by the callers: empty unless this kernel.env sets it
  BUILD_CHROOT=''
  # shellcheck source=/dev/null
  source "$env"
}

# e2e_work_dir NAME KEEP: sets WORK to KEEP (created) or to a new temporary directory, and traps the exit: QEMU is
# stopped, and WORK removed unless KEEP was given or a check failed (FAILURES), in which case its path is printed.
e2e_work_dir() {
  if [[ -n $2 ]]; then
    mkdir -p "$2"
    WORK=$(realpath "$2")
  else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/relax-rmrr-$1.XXXXXX")
  fi
  E2E_KEEP_WORK=$2
  trap _e2e_work_dir_cleanup EXIT
  trap 'exit 130' INT TERM
}
_e2e_work_dir_cleanup() {
  e2e_qemu_kill
  if [[ -z $E2E_KEEP_WORK && ${FAILURES:-0} -eq 0 ]]; then rm -rf "$WORK"; else echo "logs kept in $WORK" >&2; fi
}
