// The lifecycle of the relax-rmrr livepatch on a running kernel: load, enable, disable, unload, status, and
// waiting for a transition. Kernel calls go through ModuleOps (real syscalls, or a fake in tests); every
// file is read below Env::root, so the whole logic runs against a fake sysfs/procfs tree in unit tests.
//
// Kernel semantics this follows (kernel/livepatch, 5.1 on): loading a livepatch module enables its patch and
// starts a transition; writing 0 to `enabled` starts the reverse transition, after which the patch is freed
// (its sysfs directory goes) while the module stays loaded; a freed patch cannot be re-enabled, so `enable`
// reloads the module. Writing to `enabled` during a transition reverses it. A patch with .replace = true
// (ours) atomically replaces every other livepatch: the replaced ones are freed and their modules can go.
#pragma once

#include "common/result.h"
#include "host/device_selection.h"
#include "lifecycle/env.h"
#include "lifecycle/module_file.h"
#include "lifecycle/module_ops.h"
#include "lifecycle/transition.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

struct LoadOptions {
  WaitOptions wait;
  std::string expected_name;  // --name: refuse a module whose name differs (empty: any)
  bool allow_other_kernel = false;  // tests: skip the vermagic check
  // The devices to relax (--devices). Empty: the persisted selection (lifecycle/selection.h), every device when
  // none is persisted. Given to an already loaded module, it is written to its parameter.
  std::optional<host::DeviceSelection> devices;
};

struct LoadReport {
  std::string name;
  std::string action;  // loaded, already-loaded, reloaded
  std::vector<std::string> replaced;  // livepatches our .replace took over
  std::vector<std::string> notes;
  TransitionResult transition;
  std::optional<host::DeviceSelection> devices;  // the module's selection in force (empty: it has no parameter)
};

// Load FILE: checks (livepatch, kernel release, signatures, the selection fits the module, another transition),
// finit_module with the selection as `devices=`, waits for the transition, removes the modules of patches it
// replaced. Loading the same build twice is a no-op (apart from writing an explicitly given selection).
Result<LoadReport> load(const Env& env, const std::filesystem::path& file, const LoadOptions& options);

// enable: an enabled patch: nothing to do; a patch being disabled: reverse the transition; a freed patch or
// no module: (re)load from `file` (empty: the recorded path, then /lib/modules/<release>/updates/<name>.ko).
Result<LoadReport> enable(const Env& env, const std::string& name, const std::filesystem::path& file, const LoadOptions& options);

struct SimpleReport {
  std::string action;  // disabled, already-disabled, not-loaded, unloaded
  std::vector<std::string> notes;
  TransitionResult transition;
};
Result<SimpleReport> disable(const Env& env, const std::string& name, const WaitOptions& wait);
// unload: disables first when enabled, then delete_module.
Result<SimpleReport> unload(const Env& env, const std::string& name, const WaitOptions& wait);

}  // namespace rr::lifecycle
