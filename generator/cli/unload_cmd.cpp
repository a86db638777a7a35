// relax-rmrr unload: disable (when needed) and remove the livepatch module.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

int run_unload(const LifecycleOptions& o) {
  if (auto held = refuse_while_assigned(o, "unload the livepatch"); !held) return report_error(held.error());
  LifecycleContext ctx(o);
  auto resolved = livepatch_name(o, ctx.env());
  if (!resolved) return report_error(resolved.error());
  const std::string& name = *resolved;
  auto r = lifecycle::unload(ctx.env(), name, ctx.wait());
  if (!r) return report_error(r.error());
  if (r->action == "not-loaded") fmt::print("{} is not loaded: nothing to remove\n", name);
  else fmt::print("Removed {}\n", name);
  print_notes(r->notes);
  return 0;
}

}  // namespace

Command add_unload_command(CLI::App& root) {
  auto o = std::make_shared<LifecycleOptions>();
  CLI::App* app = root.add_subcommand("unload", "Disable the livepatch if needed and remove its module (delete_module)");
  add_transition_options(app, *o);
  add_force_option(app, *o);
  app->footer(
      "A module whose transition was forced can never be removed (the kernel keeps its reference): exit 4 says so.\n"
      "Exit codes: 0 removed (or not loaded), 1 transition did not finish, 4 module stays in use or a VM holds an\n"
      "RMRR device (--force overrides the latter), 5 not permitted.");
  return {app, [o] { return run_unload(*o); }};
}

}  // namespace rr::cli
