// Which RMRR devices the livepatch relaxes: the `devices` list the administrator gives (load/install --devices,
// /sys/module/<name>/parameters/devices). The grammar is the module's own (templates/relax_rmrr_devices.h,
// compiled here too), so the tool refuses exactly what the module would refuse, before anything is written.
#pragma once

#include "common/result.h"

#include <string>
#include <string_view>
#include <vector>

namespace rr::host {

struct DeviceSelection {
  std::vector<std::string> addresses;  // normalised (dddd:bb:dd.f), sorted, each once; empty: every RMRR device
  std::string text;  // the normalised list, as the module reads it back
  bool all() const { return addresses.empty(); }
  // Whether the module relaxes the device at `pci_address` (sysfs's name, 0000:03:00.0) under this selection:
  // the module's own test (relax_rmrr_devices_contain), so the tool's answer is the kernel's.
  bool selects(std::string_view pci_address) const;
};

// Errors (bad input, 2) name the offending character and say what is wrong: the syntax, an address no PCI
// device can have, too many addresses, too long a list.
Result<DeviceSelection> parse_device_selection(std::string_view text);

}  // namespace rr::host
