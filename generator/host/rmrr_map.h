// Which PCI devices each RMRR pins, and whether the running kernel will let them go to a VM.
#pragma once

#include "common/json.h"
#include "host/device_selection.h"
#include "host/dmar.h"
#include "host/pci.h"

#include <optional>
#include <string>
#include <vector>

namespace rr::rmrr {

enum class Verdict {
  locked,  // the kernel refuses to attach it to a VM domain
  relaxable,  // the kernel's own exception: USB controllers and graphics devices
  relaxed,  // relax-rmrr (or a kernel with intel_iommu=relax_rmrr) makes its RMRRs relaxable
};
std::string verdict_name(Verdict v);

struct Region {
  size_t rmrr_index = 0;
  uint64_t base = 0;
  uint64_t limit = 0;
};

struct DeviceEntry {
  int device = -1;  // index into the topology
  std::vector<Region> regions;
  Verdict verdict = Verdict::locked;
  std::string reason;
  bool via_bridge_scope = false;
  bool broken_path = false;
  // Whether the `devices` selection covers it (every device when the selection is empty); empty for the devices
  // the kernel relaxes itself. A locked device with selected == false stays locked by the administrator's choice.
  std::optional<bool> selected;
};

struct ScopeEntry {
  size_t rmrr_index = 0;
  dmar::DeviceScope scope;
  pci::ScopeMatch match;
};

struct Map {
  std::vector<ScopeEntry> scopes;
  std::vector<DeviceEntry> devices;  // sorted by address
  size_t locked_count() const;  // locked, and selected (or no selection): what relax-rmrr is asked to relax
  size_t not_selected_count() const;  // locked and left out of the selection
};

// relax_active: the relax semantics are in force (livepatch enabled, or the kernel option); `selection`: the
// devices they cover (the livepatch's `devices`; empty: every device).
Map map_devices(const dmar::Table& table, const pci::Topology& topo, bool relax_active, const host::DeviceSelection& selection = {});

Json to_json(const Map& map, const pci::Topology& topo);

}  // namespace rr::rmrr
