// relax-rmrr load: load a livepatch module into the running kernel and wait until every task is patched.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "lifecycle/selection.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct LoadCmdOptions {
  LifecycleOptions common;
  std::string file = "relax_rmrr.ko";
  std::string devices;
  const CLI::Option* devices_option = nullptr;
};

int run_load(const LoadCmdOptions& o) {
  LifecycleContext ctx(o.common);
  lifecycle::LoadOptions lo;
  lo.wait = ctx.wait();
  if (o.devices_option->count()) lo.devices = parse_devices_option(o.devices).value();  // checked at parse time
  auto r = lifecycle::load(ctx.env(), o.file, lo);
  if (!r) return report_error(r.error());
  // Kept for the next loads (enable, the boot unit) once the kernel took it.
  if (lo.devices) {
    auto kept = lifecycle::persist_selection(ctx.env().root, *lo.devices);
    if (!kept) return report_error(kept.error());
  }
  if (o.common.json) {
    Json j = Json::object();
    j.set("name", r->name);
    j.set("action", r->action);
    j.set("replaced", Json::strings(r->replaced));
    j.set("transition_seconds", r->transition.seconds);
    j.set("devices", devices_json(r->devices));
    j.set("simulated", ctx.simulated());
    print_json(j);
    return 0;
  }
  if (r->action == "already-loaded") fmt::print("{} is already loaded and enabled: nothing to do\n", r->name);
  else
    fmt::print("{} {}{}\n", r->action == "reloaded" ? "Reloaded" : "Loaded", r->name, ctx.simulated() ? " (simulated below --root)" : "");
  print_transition(r->name, r->transition);
  for (const auto& x : r->replaced) fmt::print("  replaced the livepatch {} (atomic replace)\n", x);
  print_notes(r->notes);
  fmt::print("{}. `relax-rmrr status` shows the state; `relax-rmrr disable` restores the kernel's behaviour.\n",
             relaxed_sentence(r->devices));
  return 0;
}

}  // namespace

Command add_load_command(CLI::App& root) {
  auto o = std::make_shared<LoadCmdOptions>();
  CLI::App* app = root.add_subcommand("load", "Load a relax-rmrr livepatch module and wait until it is in force");
  app->add_option("file", o->file, "The .ko from `relax-rmrr build` (.ko.xz/.zst/.gz too)")->capture_default_str();
  o->devices_option = app->add_option("--devices", o->devices, kDevicesOptionHelp)->check(devices_check());
  add_root_option(app, o->common);
  add_timeout_option(app, o->common);
  app->add_flag("--json", o->common.json, "Print a JSON summary on stdout");
  app->add_flag("--quiet,-q", o->common.quiet, "No progress on stderr");
  app->footer(
      "Checks first: the file is a livepatch for the running kernel; an unsigned module under lockdown or\n"
      "module.sig_enforce is refused (exit 5) before the kernel sees it. Then finit_module(2), and a wait for the\n"
      "transition (progress on stderr; on a stall the blocking tasks and the choices). Loading the same build twice\n"
      "does nothing; a build under another name replaces the loaded patch atomically (.replace) and its module goes.\n"
      "Without --devices the selection kept in /etc/relax-rmrr/devices applies (none kept: every RMRR device); a\n"
      "module built before relax-rmrr 0.3 has no `devices` parameter and is refused when a selection applies.\n"
      "Exit codes: 0 in force, 1 transition did not finish / kernel busy, 2 not a usable module, 3 file missing,\n"
      "4 refused (another kernel, another build active), 5 the host forbids it (lockdown, signatures, not root).");
  return {app, [o] { return run_load(*o); }};
}

}  // namespace rr::cli
