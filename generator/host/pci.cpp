#include "host/pci.h"

#include "common/file.h"

#include <fmt/format.h>

#include <algorithm>

namespace fs = std::filesystem;

namespace rr::pci {

std::string Address::str() const { return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", segment, bus, device, function); }

std::optional<Address> parse_address(std::string_view t) {
  // dddd:bb:dd.f
  if (t.size() != 12 || t[4] != ':' || t[7] != ':' || t[10] != '.') return std::nullopt;
  auto seg = parse_uint(t.substr(0, 4), 16), bus = parse_uint(t.substr(5, 2), 16), dev = parse_uint(t.substr(8, 2), 16),
       fn = parse_uint(t.substr(11, 1), 16);
  if (!seg || !bus || !dev || !fn || *dev > 31 || *fn > 7) return std::nullopt;
  return Address{static_cast<uint16_t>(*seg), static_cast<uint8_t>(*bus), static_cast<uint8_t>(*dev), static_cast<uint8_t>(*fn)};
}

int Topology::find(const Address& a) const {
  for (size_t i = 0; i < devices.size(); ++i)
    if (devices[i].address == a) return static_cast<int>(i);
  return -1;
}

bool Topology::is_below(int device, int ancestor) const {
  // Bounded walk: a corrupt sysfs must not make us loop forever.
  for (size_t guard = 0; device >= 0 && guard <= devices.size(); ++guard) {
    device = devices[static_cast<size_t>(device)].parent;
    if (device == ancestor) return true;
  }
  return false;
}

namespace {

std::optional<uint64_t> hex_attribute(const fs::path& p) {
  auto text = read_attribute(p);
  if (!text) return std::nullopt;
  return parse_uint(*text);
}

// Secondary/subordinate bus of a bridge: the sysfs attributes (newer kernels), else the config header.
void read_bridge_buses(Device& d) {
  if (auto sec = hex_attribute(d.sysfs_path / "secondary_bus_number")) {
    d.secondary_bus = static_cast<uint8_t>(*sec);
    if (auto sub = hex_attribute(d.sysfs_path / "subordinate_bus_number")) d.subordinate_bus = static_cast<uint8_t>(*sub);
    return;
  }
  auto config = read_file_bytes(d.sysfs_path / "config", 4096);
  if (!config || config->size() < 0x1b) return;
  if (((*config)[0x0e] & 0x7f) != 1) return;  // header type 1: PCI-to-PCI bridge
  d.secondary_bus = (*config)[0x19];
  d.subordinate_bus = (*config)[0x1a];
}

}  // namespace

Result<Topology> read_topology(const fs::path& sys_root) {
  Topology topo;
  fs::path dir = sys_root / "bus/pci/devices";
  std::error_code ec;
  if (!fs::exists(dir, ec)) return topo;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  if (ec) return make_error(ExitCode::environment, "cannot list {}: {}", dir.string(), ec.message());
  std::sort(entries.begin(), entries.end());
  for (const auto& entry : entries) {
    auto addr = parse_address(entry.filename().string());
    if (!addr) continue;
    Device d;
    d.address = *addr;
    d.sysfs_path = fs::weakly_canonical(entry, ec);
    if (ec) d.sysfs_path = entry;
    d.vendor = static_cast<uint16_t>(hex_attribute(d.sysfs_path / "vendor").value_or(0));
    d.device_id = static_cast<uint16_t>(hex_attribute(d.sysfs_path / "device").value_or(0));
    d.class_code = static_cast<uint32_t>(hex_attribute(d.sysfs_path / "class").value_or(0));
    if (fs::is_symlink(d.sysfs_path / "driver", ec)) d.driver = fs::read_symlink(d.sysfs_path / "driver", ec).filename().string();
    if (fs::is_symlink(d.sysfs_path / "iommu_group", ec)) {
      auto g = parse_uint(fs::read_symlink(d.sysfs_path / "iommu_group", ec).filename().string(), 10);
      if (g) d.iommu_group = static_cast<unsigned>(*g);
    }
    read_bridge_buses(d);
    topo.devices.push_back(std::move(d));
  }
  // The parent is the PCI device whose directory holds this one in /sys/devices.
  for (auto& d : topo.devices)
    if (auto up = parse_address(d.sysfs_path.parent_path().filename().string())) d.parent = topo.find(*up);
  return topo;
}

ScopeMatch resolve_scope(const Topology& topo, uint16_t segment, const dmar::DeviceScope& scope) {
  ScopeMatch m;
  if (scope.type != 1 && scope.type != 2) {
    m.problem = fmt::format("{} scope: not a PCI device", dmar::scope_type_name(scope.type));
    return m;
  }
  if (scope.path.empty()) {
    m.problem = "empty path";
    return m;
  }
  // Walk from the start bus through each bridge's secondary bus, as the ACPI spec defines the path.
  uint8_t bus = scope.start_bus;
  int found = -1;
  for (size_t i = 0; i < scope.path.size(); ++i) {
    Address a{segment, bus, scope.path[i].device, scope.path[i].function};
    found = topo.find(a);
    if (found < 0) {
      m.problem = fmt::format("no device at {} (empty slot, or the device is disabled)", a.str());
      return m;
    }
    const Device& d = topo.devices[static_cast<size_t>(found)];
    if (i + 1 < scope.path.size()) {
      if (!d.secondary_bus) {
        m.problem = fmt::format("path goes through {}, which is not a bridge", a.str());
        return m;
      }
      bus = *d.secondary_bus;
    }
  }
  m.device = found;
  const Device& target = topo.devices[static_cast<size_t>(found)];
  m.broken_path = scope.path.size() == 1 && target.parent >= 0;
  m.covered.push_back(found);
  if (scope.type == 2) {
    if (!target.is_bridge()) m.problem = fmt::format("bridge scope names {}, which is not a bridge", target.address.str());
    for (size_t i = 0; i < topo.devices.size(); ++i)
      if (topo.is_below(static_cast<int>(i), found)) m.covered.push_back(static_cast<int>(i));
  }
  return m;
}

}  // namespace rr::pci
