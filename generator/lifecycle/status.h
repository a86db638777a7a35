// What `relax-rmrr status` reports: the module, its livepatch, the devices it relaxes, the module file that would
// be loaded, the kernel's signing policy and, during a transition, the tasks that block it.
#pragma once

#include "common/json.h"
#include "host/device_selection.h"
#include "host/livepatch_sysfs.h"
#include "lifecycle/env.h"
#include "lifecycle/module_file.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

using host::LivepatchState;
using host::LoadedModule;
using host::PendingTask;

struct PatchStatus {
  std::string name;
  std::string running_release;
  std::optional<LoadedModule> module;
  std::optional<LivepatchState> patch;
  std::vector<LivepatchState> other_patches;
  std::optional<ModuleFile> file;  // the recorded/installed/given file, when found
  std::optional<bool> file_is_loaded;  // build-ids compared; nullopt when either is unknown
  bool file_matches_kernel = false;  // vermagic release == running release
  std::optional<std::string> lockdown;
  std::optional<bool> sig_enforce;
  std::vector<PendingTask> blockers;  // when in transition
  // The `devices` selection: the loaded module's (empty when not loaded, or built without the parameter), and
  // the persisted one every load uses (lifecycle/selection.h).
  std::optional<host::DeviceSelection> module_devices;
  host::DeviceSelection persisted_devices;
  bool active() const { return patch && patch->enabled && !patch->in_transition; }
};
// An error when sysfs holds what the kernel never writes (no status is made up from it).
Result<PatchStatus> read_status(const Env& env, const std::string& name, const std::filesystem::path& file);
Json to_json(const PatchStatus& s);

}  // namespace rr::lifecycle
