// The `devices` grammar (templates/relax_rmrr_devices.h through host::parse_device_selection): the same code parses
// what root writes to the livepatch's parameter inside the kernel. A list that parses must format within the
// module's limits, parse again to itself, and select each of its own addresses and nothing else of a probe.
#include "fuzz_util.h"
#include "host/device_selection.h"

#include <algorithm>
#include <cstdlib>

#include "relax_rmrr_devices.h"

using namespace rr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto text = fuzz::text(data, size);
  auto selection = host::parse_device_selection(text);
  if (!selection.ok()) return 0;
  if (size > RELAX_RMRR_MAX_DEVICES_TEXT || selection->addresses.size() > RELAX_RMRR_MAX_DEVICES) std::abort();
  if (selection->text.size() > RELAX_RMRR_MAX_DEVICES_TEXT) std::abort();  // what the module reads back fits
  auto again = host::parse_device_selection(selection->text);
  if (!again.ok() || again->text != selection->text) std::abort();  // normalised is a fixed point
  for (const auto& a : selection->addresses)
    if (!selection->selects(a)) std::abort();
  if (!selection->all() && selection->selects("ffff:ff:1f.7") &&
      std::find(selection->addresses.begin(), selection->addresses.end(), "ffff:ff:1f.7") == selection->addresses.end())
    std::abort();
  return 0;
}
