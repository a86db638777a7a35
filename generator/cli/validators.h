// Option checks shared by the subcommands: a value that will become part of a path is checked when the command
// line is parsed (common/names.h), so a bad one is a usage error (exit 2) before anything is read or written.
#pragma once

#include "common/names.h"
#include "host/device_selection.h"

#include <CLI/CLI.hpp>

#include <string>

namespace rr::cli {

// A CLI11 check from one of common/names.h's: its error message is the usage error.
inline CLI::Validator name_check(Status (*check)(std::string_view, std::string_view), std::string label) {
  return CLI::Validator(
      [check](std::string& value) {
        auto st = check("the value", value);
        return st ? std::string() : st.error().message;
      },
      std::move(label));
}

inline CLI::Validator module_name_check() { return name_check(&check_module_name, "NAME"); }
inline CLI::Validator kernel_release_check() { return name_check(&check_kernel_release, "RELEASE"); }

// --devices LIST: PCI addresses in the module's own grammar (host/device_selection.h), or "all" (every RMRR
// device, the same as an empty list). Checked at parse time: a bad list is a usage error before anything is done.
inline Result<host::DeviceSelection> parse_devices_option(std::string_view text) {
  if (text == "all") return host::DeviceSelection{};
  return host::parse_device_selection(text);
}
inline CLI::Validator devices_check() {
  return CLI::Validator(
      [](std::string& value) {
        auto parsed = parse_devices_option(value);
        return parsed ? std::string() : parsed.error().message + " (" + parsed.error().hint + ")";
      },
      "LIST");
}
inline constexpr const char* kDevicesOptionHelp =
    "Relax only these devices: PCI addresses [domain:]bus:device.function, comma-separated (as lspci -D prints "
    "them), or `all` (every RMRR device, as without a selection). Kept in /etc/relax-rmrr/devices for every later "
    "load, boot and DKMS-built module";

}  // namespace rr::cli
