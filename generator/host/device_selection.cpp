#include "host/device_selection.h"

#include <fmt/format.h>

#include <cstddef>

#include "relax_rmrr_devices.h"

namespace rr::host {

namespace {
bool parse_list(std::string_view text, relax_rmrr_devices& list) {
  size_t at = 0;
  return relax_rmrr_parse_devices(text.data(), text.size(), &list, &at) == RELAX_RMRR_DEVICES_OK;
}
}  // namespace

bool DeviceSelection::selects(std::string_view pci_address) const {
  if (all()) return true;
  relax_rmrr_devices list{}, device{};
  if (!parse_list(text, list) || !parse_list(pci_address, device) || device.count != 1) return false;
  return relax_rmrr_devices_contain(&list, device.dev[0].domain, device.dev[0].bus, device.dev[0].devfn) != 0;
}

Result<DeviceSelection> parse_device_selection(std::string_view text) {
  relax_rmrr_devices list{};
  size_t at = 0;
  auto rc = relax_rmrr_parse_devices(text.data(), text.size(), &list, &at);
  if (rc != RELAX_RMRR_DEVICES_OK) {
    const char* why = rc == RELAX_RMRR_DEVICES_RANGE      ? "a number out of range (bus 00-ff, device 00-1f, function 0-7)"
                      : rc == RELAX_RMRR_DEVICES_TOO_MANY ? "more addresses than the module holds"
                      : rc == RELAX_RMRR_DEVICES_TOO_LONG ? "the list is too long"
                                                          : "expected [domain:]bus:device.function, separated by commas";
    std::string_view shown = text.substr(0, 80);
    if (shown.ends_with('\n')) shown.remove_suffix(1);
    Error e = make_error(ExitCode::bad_input, "devices '{}': {} at character {}", shown, why, at + 1);
    e.hint = fmt::format("PCI addresses as lspci -D prints them, e.g. 0000:03:00.0,0000:05:00.1 (at most {})", RELAX_RMRR_MAX_DEVICES);
    return e;
  }
  DeviceSelection s;
  char buf[RELAX_RMRR_MAX_DEVICES * 20 + 1];
  relax_rmrr_format_devices(&list, buf, sizeof buf);
  s.text = buf;
  for (unsigned i = 0; i < list.count; ++i) {
    relax_rmrr_devices one{};
    one.count = 1;
    one.dev[0] = list.dev[i];
    char b[32];
    relax_rmrr_format_devices(&one, b, sizeof b);
    s.addresses.emplace_back(b);
  }
  return s;
}

}  // namespace rr::host
