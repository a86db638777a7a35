#include "host/rmrr_map.h"

#include <fmt/format.h>

#include <algorithm>

namespace rr::rmrr {

std::string verdict_name(Verdict v) {
  switch (v) {
    case Verdict::locked: return "locked";
    case Verdict::relaxable: return "relaxable";
    case Verdict::relaxed: return "relaxed";
  }
  return "?";
}

size_t Map::locked_count() const {
  return static_cast<size_t>(
      std::count_if(devices.begin(), devices.end(), [](const auto& d) { return d.verdict == Verdict::locked && d.selected != false; }));
}

size_t Map::not_selected_count() const {
  return static_cast<size_t>(
      std::count_if(devices.begin(), devices.end(), [](const auto& d) { return d.verdict == Verdict::locked && d.selected == false; }));
}

Map map_devices(const dmar::Table& table, const pci::Topology& topo, bool relax_active, const host::DeviceSelection& selection) {
  Map map;
  auto entry_for = [&](int device) -> DeviceEntry& {
    for (auto& e : map.devices)
      if (e.device == device) return e;
    map.devices.push_back(DeviceEntry{device, {}, Verdict::locked, {}, false, false, std::nullopt});
    return map.devices.back();
  };
  for (size_t i = 0; i < table.rmrrs.size(); ++i) {
    const auto& r = table.rmrrs[i];
    for (const auto& scope : r.scopes) {
      ScopeEntry s{i, scope, pci::resolve_scope(topo, r.segment, scope)};
      for (int dev : s.match.covered) {
        DeviceEntry& e = entry_for(dev);
        bool already = std::any_of(e.regions.begin(), e.regions.end(), [&](const Region& g) { return g.rmrr_index == i; });
        if (!already) e.regions.push_back(Region{i, r.base, r.limit});
        e.via_bridge_scope |= (dev != s.match.device);
        e.broken_path |= (dev == s.match.device && s.match.broken_path);
      }
      map.scopes.push_back(std::move(s));
    }
  }
  for (auto& e : map.devices) {
    const pci::Device& d = topo.devices[static_cast<size_t>(e.device)];
    if (d.is_usb()) {
      e.verdict = Verdict::relaxable;
      e.reason = "USB controller: the kernel treats its RMRRs as relaxable";
    } else if (d.is_display()) {
      e.verdict = Verdict::relaxable;
      e.reason = "graphics device: the kernel treats its RMRRs as relaxable";
    } else if (e.selected = selection.selects(d.address.str()); relax_active && *e.selected) {
      e.verdict = Verdict::relaxed;
      e.reason = selection.all() ? "relax-rmrr semantics in force: its RMRRs are relaxable"
                                 : "relax-rmrr semantics in force and the device is in the `devices` selection: its RMRRs are relaxable";
    } else {
      e.verdict = Verdict::locked;
      e.reason = e.via_bridge_scope ? "below a bridge that an RMRR names: the kernel refuses VM domains for it"
                                    : "named by an RMRR: the kernel refuses VM domains for it";
      if (!*e.selected)
        e.reason += "; not in the `devices` selection, so relax-rmrr leaves it so (relax-rmrr devices add " + d.address.str() + ")";
    }
  }
  std::sort(map.devices.begin(), map.devices.end(), [&](const DeviceEntry& a, const DeviceEntry& b) {
    const auto& x = topo.devices[static_cast<size_t>(a.device)].address;
    const auto& y = topo.devices[static_cast<size_t>(b.device)].address;
    return std::tie(x.segment, x.bus, x.device, x.function) < std::tie(y.segment, y.bus, y.device, y.function);
  });
  return map;
}

Json to_json(const Map& map, const pci::Topology& topo) {
  Json devices = Json::array();
  for (const auto& e : map.devices) {
    const pci::Device& d = topo.devices[static_cast<size_t>(e.device)];
    Json regions = Json::array();
    for (const auto& g : e.regions) {
      Json r = Json::object();
      r.set("rmrr", g.rmrr_index);
      r.set("base", g.base);
      r.set("limit", g.limit);
      regions.push(std::move(r));
    }
    Json j = Json::object();
    j.set("bdf", d.address.str());
    j.set("vendor", fmt::format("{:04x}", d.vendor));
    j.set("device", fmt::format("{:04x}", d.device_id));
    j.set("class", fmt::format("{:06x}", d.class_code));
    j.set("driver", d.driver.empty() ? Json(nullptr) : Json(d.driver));
    j.set("iommu_group", d.iommu_group ? Json(*d.iommu_group) : Json(nullptr));
    j.set("regions", std::move(regions));
    j.set("verdict", verdict_name(e.verdict));
    j.set("reason", e.reason);
    j.set("via_bridge_scope", e.via_bridge_scope);
    j.set("broken_path", e.broken_path);
    j.set("selected", e.selected ? Json(*e.selected) : Json());
    devices.push(std::move(j));
  }
  Json scopes = Json::array();
  for (const auto& s : map.scopes) {
    Json j = dmar::to_json(s.scope);
    j.set("rmrr", s.rmrr_index);
    j.set("resolved", s.match.device >= 0 ? Json(topo.devices[static_cast<size_t>(s.match.device)].address.str()) : Json(nullptr));
    if (!s.match.problem.empty()) j.set("problem", s.match.problem);
    if (s.match.broken_path) j.set("broken_path", true);
    scopes.push(std::move(j));
  }
  Json out = Json::object();
  out.set("devices", std::move(devices));
  out.set("scopes", std::move(scopes));
  return out;
}

}  // namespace rr::rmrr
