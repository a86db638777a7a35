// The `devices` selection on a host: where relax-rmrr keeps it (<root>/etc/relax-rmrr/devices, one line, absent
// for "every device"), how it reaches a module (the `devices=` parameter at every load: load, enable, boot), and
// how a running module's selection is read and changed (/sys/module/<name>/parameters/devices).
//
// A module that has no `devices` parameter (built by relax-rmrr before 0.3) would relax every device: the kernel
// ignores a parameter a module does not declare. So a selection is never given to such a module: refused.
#pragma once

#include "common/result.h"
#include "host/device_selection.h"
#include "lifecycle/env.h"
#include "lifecycle/module_file.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

inline constexpr const char* kDevicesParameter = "devices";

std::filesystem::path selection_file(const std::filesystem::path& root);
// The persisted selection: every device when there is no file. A file that holds no valid list is an error (bad
// input, 2): never read as "every device".
Result<host::DeviceSelection> read_persisted_selection(const std::filesystem::path& root);
// Writes the selection (atomically), or removes the file for "every device".
Status persist_selection(const std::filesystem::path& root, const host::DeviceSelection& selection);

// Whether the module declares the `devices` parameter (modinfo parm=/parmtype=devices:...).
bool takes_device_selection(const ModuleFile& module);
// Refused (4) when `selection` names devices and the module cannot take it; fine for "every device".
Status check_takes_selection(const ModuleFile& module, const host::DeviceSelection& selection);
// The selection a load of `module` uses: `given` (--devices), else the persisted one; checked against the module.
Result<host::DeviceSelection> selection_for_load(const std::filesystem::path& root, const ModuleFile& module,
                                                 const std::optional<host::DeviceSelection>& given);
// The parameter string for finit_module(2): "devices=LIST", or "" for every device.
std::string load_parameters(const host::DeviceSelection& selection);

// The selection a loaded module holds; empty when the module is not loaded or has no such parameter.
Result<std::optional<host::DeviceSelection>> read_module_selection(const Env& env, const std::string& module);
// Writes `selection` to the loaded module's parameter and reads it back: the kernel's answer (a module that
// refuses the value keeps the old one) is checked, never assumed.
Status apply_module_selection(const Env& env, const std::string& module, const host::DeviceSelection& selection);

// `relax-rmrr devices set|add|remove`: the new selection from the one in force (the loaded module's, else the
// persisted one), written to the loaded module (read back) and then persisted, so a refusal changes nothing.
enum class SelectionChange { set, add, remove };
struct SelectionRequest {
  SelectionChange change = SelectionChange::set;
  host::DeviceSelection devices;  // set: the whole selection ("all" when empty); add/remove: the addresses
  bool persist = true;  // false: the loaded module only (until its next load)
};
struct SelectionReport {
  host::DeviceSelection before, after;
  bool module_loaded = false;  // a loaded module with the parameter took `after`
  bool persisted = false;
  std::vector<std::string> notes;
};
// Refused (4): add to or remove from "every device" (say the list with `set`), a remove that leaves nothing (that
// would relax every device), a loaded module without the parameter. Bad input (2): a selection over the limit.
Result<SelectionReport> change_selection(const Env& env, const std::string& module, const SelectionRequest& request);

}  // namespace rr::lifecycle
