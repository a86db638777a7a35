// relax-rmrr disable: restore the kernel's own RMRR behaviour; the module stays loaded until `unload`.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

int run_disable(const LifecycleOptions& o) {
  if (auto held = refuse_while_assigned(o, "disable the livepatch"); !held) return report_error(held.error());
  LifecycleContext ctx(o);
  auto resolved = livepatch_name(o, ctx.env());
  if (!resolved) return report_error(resolved.error());
  const std::string& name = *resolved;
  auto r = lifecycle::disable(ctx.env(), name, ctx.wait());
  if (!r) return report_error(r.error());
  if (r->action == "not-loaded") fmt::print("{} is not loaded: nothing to disable\n", name);
  else if (r->action == "already-disabled")
    fmt::print("{} is already disabled (its module is still loaded: relax-rmrr unload removes it)\n", name);
  else {
    fmt::print("Disabled {}: RMRR-locked devices are refused again on their next attach\n", name);
    print_transition(name, r->transition);
  }
  return 0;
}

}  // namespace

Command add_disable_command(CLI::App& root) {
  auto o = std::make_shared<LifecycleOptions>();
  CLI::App* app = root.add_subcommand("disable", "Disable the livepatch: the kernel's own RMRR checks are back");
  add_transition_options(app, *o);
  add_force_option(app, *o);
  app->footer(
      "Writes 0 to /sys/kernel/livepatch/NAME/enabled and waits for the unpatch transition; the kernel then frees\n"
      "the patch. Devices already attached to a VM stay attached. Exit codes: 0 disabled (or nothing to do),\n"
      "1 transition did not finish (the blocking tasks and the choices are printed), 4 refused while a VM holds an\n"
      "RMRR device (--force overrides), 5 not permitted.");
  return {app, [o] { return run_disable(*o); }};
}

}  // namespace rr::cli
