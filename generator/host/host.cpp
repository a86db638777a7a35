#include "host/host.h"

#include "analysis/kconfig.h"
#include "common/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace fs = std::filesystem;

namespace rr::host {

namespace {

void read_cmdline(Facts& f) {
  f.cmdline = read_attribute(f.root / "proc/cmdline").value_or("");
  for (const auto& word : split_ws(f.cmdline)) {
    if (!starts_with(word, "intel_iommu=")) continue;
    std::string value = word.substr(12);
    f.intel_iommu_options.push_back(value);
    // The option takes a comma-separated list; the kernel parses each item.
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (item == "on" || item == "sm_on") f.iommu_enabled_on_cmdline = true;
      if (item == "off") f.iommu_disabled_on_cmdline = true;
      if (item == "relax_rmrr") f.relax_rmrr_on_cmdline = true;
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
}

void read_lockdown(Facts& f) {
  // "none [integrity] confidentiality": the bracketed word is the active mode.
  auto text = read_attribute(f.root / "sys/kernel/security/lockdown");
  if (!text) return;
  auto open = text->find('['), close = text->find(']');
  if (open != std::string::npos && close != std::string::npos && close > open) f.lockdown = text->substr(open + 1, close - open - 1);
}

void read_secure_boot(Facts& f) {
  std::error_code ec;
  if (!fs::exists(f.root / "sys/firmware/efi", ec)) {
    f.secure_boot = false;  // legacy BIOS boot: there is no Secure Boot
    return;
  }
  auto bytes = read_file_bytes(f.root / "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c", 64);
  if (bytes && bytes->size() >= 5) f.secure_boot = (*bytes)[4] == 1;  // 4 bytes of attributes, then the value
}

// /dev/kmsg returns one record per read and EAGAIN at the end; a regular file (tests) just returns text.
void read_kernel_log(Facts& f) {
  int fd = ::open((f.root / "dev/kmsg").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  std::string text;
  std::array<char, 8192> buf;
  for (size_t guard = 0; guard < 1'000'000 && text.size() < (64u << 20); ++guard) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      text.append(buf.data(), static_cast<size_t>(n));
      if (text.back() != '\n') text.push_back('\n');
      continue;
    }
    if (n < 0 && errno == EPIPE) continue;  // a record was overwritten while we read: skip it
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(fd);
  f.kernel_log_readable = true;
  for (auto& line : split_lines(text)) {
    if (line.empty() || line[0] == ' ') continue;  // kmsg continuation (key=value) lines
    auto semi = line.find(';');
    if (semi != std::string::npos && line.find_first_not_of("0123456789,-c+") == line.find(';')) line = line.substr(semi + 1);
    if (is_rmrr_veto_message(line) || line.find("DMAR: RMRR base") != std::string::npos ||
        line.find("is broken - applying workaround") != std::string::npos)
      f.rmrr_log_lines.push_back(line);
  }
}

// The running kernel's config: /boot/config-<release>, else /proc/config.gz.
void read_config(Facts& f) {
  for (const fs::path& p : {f.root / "boot" / ("config-" + f.kernel_release), f.root / "proc/config.gz"}) {
    std::error_code ec;
    if (f.kernel_release.empty() && p.filename() != "config.gz") continue;
    if (!fs::exists(p, ec)) continue;
    auto config = analysis::read_kconfig(p);
    if (!config) continue;
    // Keys are stored without the CONFIG_ prefix.
    f.config_livepatch = config->enabled("LIVEPATCH");
    f.config_intel_iommu = config->enabled("INTEL_IOMMU");
    f.config_source = p.string().substr(f.root.string().size() > 1 ? f.root.string().size() : 0);
    return;
  }
}

}  // namespace

bool is_rmrr_veto_message(std::string_view line) {
  return line.find("ineligible for IOMMU domain attach due to platform RMRR requirement") != std::string_view::npos ||
         line.find("Firmware has requested this device have a 1:1 IOMMU mapping") != std::string_view::npos;
}

bool proxmox_release_has_relax_rmrr(const std::string& release) {
  if (release.find("-pve") == std::string::npos) return false;
  // "6.2.16-13-pve": major.minor.patch-abi
  std::array<uint64_t, 4> v{};
  size_t i = 0, pos = 0;
  while (i < v.size() && pos < release.size()) {
    size_t end = release.find_first_of(".-", pos);
    auto n = parse_uint(release.substr(pos, end == std::string::npos ? std::string::npos : end - pos), 10);
    if (!n) break;
    v[i++] = *n;
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (i < 4) return false;
  return v >= std::array<uint64_t, 4>{6, 2, 16, 13};
}

Facts read_facts(const fs::path& root) {
  Facts f;
  f.root = root;
  f.kernel_release = read_attribute(root / "proc/sys/kernel/osrelease").value_or("");
  read_cmdline(f);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root / "sys/class/iommu", ec)) f.iommu_units.push_back(e.path().filename().string());
  std::sort(f.iommu_units.begin(), f.iommu_units.end());
  read_config(f);
  read_lockdown(f);
  read_secure_boot(f);
  f.proxmox_kernel = f.kernel_release.find("-pve") != std::string::npos;
  f.proxmox_knows_relax_rmrr = proxmox_release_has_relax_rmrr(f.kernel_release);
  read_kernel_log(f);
  if (auto lps = host::list_livepatches(root / "sys")) f.livepatches = std::move(*lps);
  else f.livepatch_error = lps.error();
  return f;
}

}  // namespace rr::host
