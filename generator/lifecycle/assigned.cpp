#include "lifecycle/assigned.h"

#include "common/file.h"
#include "host/dmar.h"
#include "host/pci.h"
#include "host/rmrr_map.h"

#include <fmt/format.h>

#include <map>

namespace fs = std::filesystem;

namespace rr::lifecycle {

namespace {

// Every open file of every process: device path -> holders.
std::map<std::string, std::vector<std::string>> open_device_files(const fs::path& root) {
  std::map<std::string, std::vector<std::string>> out;
  std::error_code ec;
  for (const auto& p : fs::directory_iterator(root / "proc", ec)) {
    std::string pid = p.path().filename().string();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string comm = read_attribute(p.path() / "comm").value_or("?");
    std::error_code fec;
    for (const auto& fd : fs::directory_iterator(p.path() / "fd", fec)) {
      std::error_code lec;
      fs::path target = fs::read_symlink(fd.path(), lec);
      if (lec || !starts_with(target.string(), "/dev/vfio/")) continue;
      auto& holders = out[target.string()];
      std::string who = fmt::format("pid {} ({})", pid, comm);
      if (holders.empty() || holders.back() != who) holders.push_back(who);
    }
  }
  return out;
}

}  // namespace

std::vector<AssignedDevice> rmrr_devices_in_use(const fs::path& root) {
  std::vector<AssignedDevice> out;
  auto table = dmar::decode_file(root / "sys/firmware/acpi/tables/DMAR", {.require_valid_checksum = false});
  if (!table || table->rmrrs.empty()) return out;
  auto topo = pci::read_topology(root / "sys");
  if (!topo) return out;
  rmrr::Map map = rmrr::map_devices(*table, *topo, false);
  auto open = open_device_files(root);
  for (const auto& e : map.devices) {
    const pci::Device& d = topo->devices[static_cast<size_t>(e.device)];
    if (!d.iommu_group || d.driver != "vfio-pci") continue;
    AssignedDevice a{d.address.str(), *d.iommu_group, {}};
    // The legacy group file, and the per-device cdev (iommufd) named in sysfs.
    if (auto it = open.find(fmt::format("/dev/vfio/{}", *d.iommu_group)); it != open.end()) a.holders = it->second;
    std::error_code ec;
    for (const auto& v : fs::directory_iterator(d.sysfs_path / "vfio-dev", ec))
      if (auto it = open.find("/dev/vfio/devices/" + v.path().filename().string()); it != open.end())
        a.holders.insert(a.holders.end(), it->second.begin(), it->second.end());
    if (!a.holders.empty()) out.push_back(std::move(a));
  }
  return out;
}

}  // namespace rr::lifecycle
