// Options and plumbing shared by the lifecycle subcommands (load, enable, disable, unload, status, wait).
#pragma once

#include "common/json.h"
#include "host/device_selection.h"
#include "lifecycle/lifecycle.h"
#include "lifecycle/status.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

namespace rr::cli {

struct LifecycleOptions {
  std::string root = "/";
  std::string name = "relax_rmrr";
  const CLI::Option* name_option = nullptr;  // set by add_name_option: was --name given?
  double timeout = 60;
  bool json = false;
  bool quiet = false;
  bool force = false;  // disable/unload: even while a VM holds an RMRR device
};

// disable/unload: refuse (exit 4) while a VFIO user holds an RMRR device, unless --force (see lifecycle/assigned.h).
void add_force_option(CLI::App* app, LifecycleOptions& o);
Status refuse_while_assigned(const LifecycleOptions& o, std::string_view action);

void add_root_option(CLI::App* app, LifecycleOptions& o);
void add_name_option(CLI::App* app, LifecycleOptions& o);
void add_timeout_option(CLI::App* app, LifecycleOptions& o);
// --name, --root, --timeout and --quiet: what every command that waits for a livepatch transition takes.
void add_transition_options(CLI::App* app, LifecycleOptions& o);

// Real kernel calls for --root /, a simulation of the kernel's sysfs below any other root (never the kernel).
class LifecycleContext {
 public:
  explicit LifecycleContext(const LifecycleOptions& o);
  lifecycle::Env& env() { return env_; }
  lifecycle::WaitOptions wait() const { return wait_; }
  bool simulated() const { return simulated_; }

 private:
  std::unique_ptr<lifecycle::ModuleOps> ops_;
  lifecycle::Env env_;
  lifecycle::WaitOptions wait_;
  bool simulated_ = false;
};

// The livepatch a command acts on: --name when given; else the one relax-rmrr built that the kernel has (found by
// its mark, host/livepatch_sysfs.h; the enabled one first), else "relax_rmrr".
Result<std::string> livepatch_name(const LifecycleOptions& o, const lifecycle::Env& env);

void print_transition(const std::string& name, const lifecycle::TransitionResult& t);
void print_notes(const std::vector<std::string>& notes);

// A module's selection for --json: ["0000:03:00.0", ...], "all", or null (a module without the parameter).
Json devices_json(const std::optional<host::DeviceSelection>& devices);
// "every RMRR device", or the normalised list: how the commands name a selection in text.
std::string describe_devices(const host::DeviceSelection& devices);
// "Every RMRR is now relaxable" / "The RMRRs of 0000:03:00.0 are now relaxable".
std::string relaxed_sentence(const std::optional<host::DeviceSelection>& devices);

}  // namespace rr::cli
