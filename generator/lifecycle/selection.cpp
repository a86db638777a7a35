#include "lifecycle/selection.h"

#include "common/atomic_file.h"
#include "common/file.h"
#include "host/livepatch_sysfs.h"
#include "lifecycle/module_ops.h"

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace rr::lifecycle {

fs::path selection_file(const fs::path& root) { return root / "etc/relax-rmrr/devices"; }

Result<host::DeviceSelection> read_persisted_selection(const fs::path& root) {
  fs::path file = selection_file(root);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(file, ec))) return host::DeviceSelection{};
  auto text = read_file_text(file, read_cap::attribute);
  if (!text) return text.error();
  auto selection = host::parse_device_selection(*text);
  if (!selection) {
    Error e = selection.error();
    e.message = fmt::format("{}: {}", file.string(), e.message);
    e.hint = "relax-rmrr devices set LIST (or all) writes it anew";
    return e;
  }
  return selection;
}

Status persist_selection(const fs::path& root, const host::DeviceSelection& selection) {
  fs::path file = selection_file(root);
  if (selection.all()) {
    std::error_code ec;
    fs::remove(file, ec);
    if (ec) return make_error(ExitCode::environment, "cannot remove {}: {}", file.string(), ec.message());
    return ok_status();
  }
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return make_error(ExitCode::environment, "cannot create {}: {}", file.parent_path().string(), ec.message());
  return write_file_atomically(file, selection.text + "\n");
}

bool takes_device_selection(const ModuleFile& module) { return module.parameters.count(kDevicesParameter) != 0; }

Status check_takes_selection(const ModuleFile& module, const host::DeviceSelection& selection) {
  if (selection.all() || takes_device_selection(module)) return ok_status();
  Error e = make_error(ExitCode::refused,
                       "{} has no `devices` parameter: it would relax every RMRR device, not only {} (the kernel ignores a "
                       "parameter a module does not declare)",
                       module.path.string(), selection.text);
  e.hint = "rebuild the livepatch with this relax-rmrr (relax-rmrr build), or `relax-rmrr devices set all` to relax every device";
  return e;
}

Result<host::DeviceSelection> selection_for_load(const fs::path& root, const ModuleFile& module,
                                                 const std::optional<host::DeviceSelection>& given) {
  host::DeviceSelection selection;
  if (given) {
    selection = *given;
  } else {
    RR_ASSIGN(selection, read_persisted_selection(root));
  }
  RR_CHECK(check_takes_selection(module, selection));
  return selection;
}

std::string load_parameters(const host::DeviceSelection& selection) {
  return selection.all() ? std::string() : fmt::format("{}={}", kDevicesParameter, selection.text);
}

Result<std::optional<host::DeviceSelection>> read_module_selection(const Env& env, const std::string& module) {
  fs::path file = env.sys() / "module" / module / "parameters" / kDevicesParameter;
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<host::DeviceSelection>();
  auto text = read_attribute(file);
  if (!text) return make_error(ExitCode::failure, "cannot read {}", file.string());
  auto selection = host::parse_device_selection(*text);
  if (!selection || selection->text != *text) {
    Error e = make_error(ExitCode::failure, "{} holds '{}', which the module never writes there (a normalised list of PCI addresses)",
                         file.string(), text->substr(0, 80));
    e.hint = "this is not relax-rmrr's module, or not a kernel's sysfs (a wrong --root?)";
    return e;
  }
  return std::optional<host::DeviceSelection>(std::move(*selection));
}

Status apply_module_selection(const Env& env, const std::string& module, const host::DeviceSelection& selection) {
  RR_CHECK(env.ops->write_parameter(module, kDevicesParameter, selection.text));
  RR_ASSIGN(auto now, read_module_selection(env, module));
  if (!now) return make_error(ExitCode::failure, "the module {} has no `devices` parameter after the write (it was unloaded?)", module);
  if (now->text != selection.text)
    return make_error(ExitCode::failure, "the module {} reads back '{}' after '{}' was written", module, now->text, selection.text);
  return ok_status();
}

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& a : v) out += (out.empty() ? "" : ",") + a;
  return out;
}

Result<host::DeviceSelection> changed(const host::DeviceSelection& before, const SelectionRequest& request) {
  if (request.change == SelectionChange::set) return request.devices;
  if (before.all()) {
    Error e = make_error(ExitCode::refused, "every RMRR device is relaxed now: there is no list to {}",
                         request.change == SelectionChange::add ? "add to" : "remove from");
    e.hint = "say the devices to relax: relax-rmrr devices set " + (request.devices.all() ? "LIST" : request.devices.text);
    return e;
  }
  std::vector<std::string> after;
  for (const auto& a : before.addresses)
    if (request.change == SelectionChange::add || !request.devices.selects(a)) after.push_back(a);
  if (request.change == SelectionChange::add) after.insert(after.end(), request.devices.addresses.begin(), request.devices.addresses.end());
  if (after.empty()) {
    Error e = make_error(ExitCode::refused, "removing {} leaves no device, and an empty selection relaxes every RMRR device",
                         request.devices.text);
    e.hint = "relax-rmrr disable relaxes none; relax-rmrr devices set all relaxes every one";
    return e;
  }
  return host::parse_device_selection(joined(after));  // sorted, each once, within the module's limits
}

}  // namespace

Result<SelectionReport> change_selection(const Env& env, const std::string& module, const SelectionRequest& request) {
  SelectionReport r;
  RR_ASSIGN(auto in_module, read_module_selection(env, module));
  RR_ASSIGN(auto persisted, read_persisted_selection(env.root));
  r.before = in_module ? *in_module : persisted;
  RR_ASSIGN(r.after, changed(r.before, request));
  RR_ASSIGN(auto loaded, host::find_loaded_module(env.sys(), module));
  if (loaded && !in_module && !r.after.all()) {
    Error e = make_error(ExitCode::refused, "the loaded module {} has no `devices` parameter: it relaxes every RMRR device", module);
    e.hint = "rebuild it with this relax-rmrr (relax-rmrr build), then relax-rmrr load --devices " + r.after.text;
    return e;
  }
  if (in_module) {
    RR_CHECK(apply_module_selection(env, module, r.after));
    r.module_loaded = true;
  } else {
    r.notes.push_back(fmt::format("{} is not loaded: the selection applies from its next load", module));
  }
  if (request.persist) {
    RR_CHECK(persist_selection(env.root, r.after));
    r.persisted = true;
  } else if (r.module_loaded) {
    r.notes.push_back("not persisted: the next load (enable, boot) uses " +
                      (persisted.all() ? std::string("every device") : persisted.text));
  }
  return r;
}

}  // namespace rr::lifecycle
