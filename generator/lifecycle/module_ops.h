// The kernel calls that change which modules and livepatches exist, behind one interface: the real syscalls,
// or a simulation below a --root tree; and the signing policy a module must meet before the kernel sees it.
#pragma once

#include "common/result.h"
#include "lifecycle/env.h"
#include "lifecycle/module_file.h"

#include <filesystem>
#include <memory>
#include <string>

namespace rr::lifecycle {

// Everything that changes the kernel goes through here: loading and removing modules, and writing a
// livepatch's sysfs attributes (enabled, signal, force). The real one uses finit_module(2)/init_module(2),
// delete_module(2) and one write(2) per attribute, and maps errno to an Error that says what to do.
class ModuleOps {
 public:
  virtual ~ModuleOps() = default;
  // `parameters`: the module's parameters as finit_module(2) takes them ("devices=0000:03:00.0", or "").
  virtual Status load(const ModuleFile& module, const std::string& parameters) = 0;
  virtual Status remove(const std::string& name) = 0;
  virtual Status write_attribute(const std::string& patch, const std::string& attribute, bool value) = 0;
  // /sys/module/<module>/parameters/<parameter>: one write(2); a value the module refuses is an Error.
  virtual Status write_parameter(const std::string& module, const std::string& parameter, const std::string& value) = 0;
};
std::unique_ptr<ModuleOps> real_module_ops(const std::filesystem::path& sys_root = "/sys");
// For --root trees (tests, dry runs): never calls the kernel; writes what the kernel would show below `root`
// (sys/module/<name>, sys/kernel/livepatch/<name> enabled=1 transition=0; .replace frees the other patches;
// the `devices` parameter as relax-rmrr's module keeps it, refusing what the module refuses).
std::unique_ptr<ModuleOps> simulated_module_ops(const std::filesystem::path& root);

// Refuses (environment, 5) an unsigned module when lockdown or module.sig_enforce would reject it.
Status check_signing_policy(const Env& env, const ModuleFile& module);

}  // namespace rr::lifecycle
