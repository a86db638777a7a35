// The PCI topology as sysfs shows it, and how ACPI device scopes name devices in it.
#pragma once

#include "common/result.h"
#include "host/dmar.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::pci {

struct Address {
  uint16_t segment = 0;
  uint8_t bus = 0;
  uint8_t device = 0;
  uint8_t function = 0;
  bool operator==(const Address&) const = default;
  std::string str() const;  // "0000:03:00.0"
};
std::optional<Address> parse_address(std::string_view text);

struct Device {
  Address address;
  std::filesystem::path sysfs_path;  // canonical path under <root>/sys/devices
  uint16_t vendor = 0;
  uint16_t device_id = 0;
  uint32_t class_code = 0;  // 24 bits: base class, subclass, prog-if
  std::string driver;  // empty when unbound
  std::optional<unsigned> iommu_group;
  std::optional<uint8_t> secondary_bus;  // bridges only
  std::optional<uint8_t> subordinate_bus;  // bridges only
  int parent = -1;  // index of the upstream bridge in Topology::devices, -1 on a root bus

  bool is_bridge() const { return secondary_bus.has_value(); }
  bool is_usb() const { return (class_code >> 8) == 0x0c03; }
  bool is_display() const { return (class_code >> 16) == 0x03; }
};

struct Topology {
  std::vector<Device> devices;

  int find(const Address& a) const;
  // True when `ancestor` is an upstream bridge of `device` (any depth).
  bool is_below(int device, int ancestor) const;
};

// Reads <sys_root>/bus/pci/devices. A missing directory is an empty topology (no PCI, or a container).
Result<Topology> read_topology(const std::filesystem::path& sys_root);

// Resolution of one DMAR device scope against the topology.
struct ScopeMatch {
  int device = -1;  // the device the scope names, -1 when nothing matches
  std::vector<int> covered;  // devices the RMRR applies to: the device, and for bridge scopes all below it
  bool broken_path = false;  // a one-entry path naming a device off the root bus: the kernel's workaround case
  std::string problem;  // why it did not resolve, for humans
};

ScopeMatch resolve_scope(const Topology& topo, uint16_t segment, const dmar::DeviceScope& scope);

}  // namespace rr::pci
