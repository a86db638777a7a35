// A kernel's build configuration: /boot/config-<release>, <kbuild>/.config or /proc/config.gz.
#pragma once

#include "common/result.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace rr::analysis {

class KernelConfig {
 public:
  // Raw values as written: "y", "m", "0x10", "\"gcc-12 ...\"" (quotes kept); "# CONFIG_X is not set" → "n".
  std::optional<std::string> value(std::string_view name) const;
  // The value with surrounding quotes and backslash escapes removed.
  std::optional<std::string> string(std::string_view name) const;
  bool enabled(std::string_view name) const;  // =y
  bool modular(std::string_view name) const;  // =m
  bool builtin_or_module(std::string_view name) const { return enabled(name) || modular(name); }
  size_t size() const { return values_.size(); }
  const std::string& origin() const { return origin_; }

  // Names may be given with or without the CONFIG_ prefix.
  void set(std::string name, std::string value);
  void set_origin(std::string origin) { origin_ = std::move(origin); }

 private:
  std::map<std::string, std::string, std::less<>> values_;  // keyed without the CONFIG_ prefix
  std::string origin_;
};

Result<KernelConfig> parse_kconfig(std::string_view text, std::string origin = "config");
// Plain or gzip-compressed (by magic), e.g. /proc/config.gz.
Result<KernelConfig> read_kconfig(const std::filesystem::path& path);

}  // namespace rr::analysis
