// The kernel's livepatch state under /sys/kernel/livepatch: read here, written by the lifecycle commands.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

struct LivepatchState {
  std::string name;
  bool enabled = false;
  bool in_transition = false;
};

// Every livepatch the kernel knows; empty when livepatch sysfs is absent (no CONFIG_LIVEPATCH, or none loaded).
std::vector<LivepatchState> list_livepatches(const std::filesystem::path& sys_root);
std::optional<LivepatchState> find_livepatch(const std::filesystem::path& sys_root, const std::string& name);

}  // namespace rr::lifecycle
