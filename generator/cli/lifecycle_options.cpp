#include "cli/lifecycle_options.h"
#include "cli/validators.h"

#include "cli/output.h"
#include "lifecycle/assigned.h"

#include <fmt/core.h>

#include <cstdio>

namespace fs = std::filesystem;

namespace rr::cli {

void add_root_option(CLI::App* app, LifecycleOptions& o) {
  app->add_option("--root", o.root,
                  "Act on the host below DIR (DIR/sys, DIR/proc, DIR/lib/modules). Any root other than / never calls "
                  "the kernel: loads and removals are simulated in DIR/sys (tests, dry runs)")
      ->capture_default_str();
}

void add_name_option(CLI::App* app, LifecycleOptions& o) {
  o.name_option = app->add_option("--name", o.name,
                                  "Livepatch (module) name: /sys/kernel/livepatch/NAME (default: the livepatch relax-rmrr built that is "
                                  "loaded, found by its mark, else relax_rmrr)")
                      ->capture_default_str()
                      ->check(module_name_check());
}

void add_timeout_option(CLI::App* app, LifecycleOptions& o) {
  app->add_option("--timeout", o.timeout, "Seconds to wait for the livepatch transition")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 86400.0));
}

LifecycleContext::LifecycleContext(const LifecycleOptions& o) {
  std::error_code ec;
  fs::path root = fs::absolute(o.root, ec);
  simulated_ = root.lexically_normal() != fs::path("/");
  ops_ = simulated_ ? lifecycle::simulated_module_ops(root) : lifecycle::real_module_ops(root / "sys");
  env_.root = root;
  env_.ops = ops_.get();
  bool quiet = o.quiet || o.json;
  env_.progress = [quiet](const std::string& line) {
    if (quiet) return;
    fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
  };
  wait_.timeout = std::chrono::milliseconds(static_cast<long>(o.timeout * 1000));
}

Result<std::string> livepatch_name(const LifecycleOptions& o, const lifecycle::Env& env) {
  if (o.name_option && o.name_option->count() > 0) return o.name;
  RR_ASSIGN(auto ours, host::relax_rmrr_livepatches(env.sys(), o.name));
  return ours.empty() ? o.name : ours.front().name;
}

void print_transition(const std::string& name, const lifecycle::TransitionResult& t) {
  if (t.gone) fmt::print("  livepatch {}: disabled and freed by the kernel ({:.1f}s)\n", name, t.seconds);
  else if (t.done) fmt::print("  livepatch {}: transition to {} complete ({:.1f}s)\n", name, t.target ? "patched" : "unpatched", t.seconds);
}

void print_notes(const std::vector<std::string>& notes) {
  for (const auto& n : notes) fmt::print("  note: {}\n", n);
}

}  // namespace rr::cli

namespace rr::cli {

void add_force_option(CLI::App* app, LifecycleOptions& o) {
  app->add_flag("--force", o.force,
                "Go on while a VM holds an RMRR device (before Linux 6.6 the kernel then cannot release that device cleanly)");
}

Status refuse_while_assigned(const LifecycleOptions& o, std::string_view action) {
  auto held = lifecycle::rmrr_devices_in_use(o.root);
  if (held.empty()) return ok_status();
  std::string list;
  for (const auto& d : held) list += fmt::format("\n  {} (IOMMU group {}) held by {}", d.bdf, d.iommu_group, fmt::join(d.holders, ", "));
  if (o.force) {
    warn(fmt::format("--force: {} while RMRR devices are assigned:{}", action, list));
    return ok_status();
  }
  Error e = make_error(ExitCode::refused, "refusing to {} while a VM or VFIO user holds an RMRR device:{}", action, list);
  e.hint =
      "stop the VM (or release the device) first. Before Linux 6.6, disabling under an assigned device leaves the kernel "
      "unable to give it back cleanly when it is released; --force does it anyway";
  return e;
}

void add_transition_options(CLI::App* app, LifecycleOptions& o) {
  add_name_option(app, o);
  add_root_option(app, o);
  add_timeout_option(app, o);
  app->add_flag("--quiet,-q", o.quiet, "No progress on stderr");
}

}  // namespace rr::cli

namespace rr::cli {

Json devices_json(const std::optional<host::DeviceSelection>& devices) {
  if (!devices) return Json();
  return devices->all() ? Json("all") : Json::strings(devices->addresses);
}

std::string describe_devices(const host::DeviceSelection& devices) { return devices.all() ? "every RMRR device" : devices.text; }

std::string relaxed_sentence(const std::optional<host::DeviceSelection>& devices) {
  if (!devices || devices->all()) return "Every RMRR is now relaxable";
  std::string list;
  for (const auto& a : devices->addresses) list += (list.empty() ? "" : ", ") + a;
  return fmt::format("The RMRRs of {} are now relaxable; every other device keeps the kernel's behaviour", list);
}

}  // namespace rr::cli
