// relax-rmrr enable: put the livepatch in force again (reverse a disable in progress, or reload the module).
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct EnableOptions {
  LifecycleOptions common;
  std::string file;
};

int run_enable(const EnableOptions& o) {
  LifecycleContext ctx(o.common);
  lifecycle::LoadOptions lo;
  lo.wait = ctx.wait();
  auto r = lifecycle::enable(ctx.env(), o.common.name, o.file, lo);
  if (!r) return report_error(r.error());
  if (r->action == "already-enabled" || r->action == "already-loaded") fmt::print("{} is already enabled: nothing to do\n", o.common.name);
  else if (r->action == "reversed") fmt::print("Reversed the disable of {} in progress\n", o.common.name);
  else fmt::print("Enabled {} ({} the module)\n", o.common.name, r->action);
  print_transition(o.common.name, r->transition);
  print_notes(r->notes);
  return 0;
}

}  // namespace

Command add_enable_command(CLI::App& root) {
  auto o = std::make_shared<EnableOptions>();
  CLI::App* app = root.add_subcommand("enable", "Enable the livepatch again (reloads its module once a disable freed it)");
  app->add_option("file", o->file,
                  "Module to load when it is not loaded (default: the file `load` recorded, then "
                  "/lib/modules/$(uname -r)/{updates,extra,updates/dkms}/NAME.ko)");
  add_transition_options(app, o->common);
  app->footer(
      "The kernel frees a livepatch once it is disabled and cannot enable it again: enable removes the module and\n"
      "loads it anew (with every check of `load`). A disable still in transition is reversed instead.\n"
      "Exit codes as for load.");
  return {app, [o] { return run_enable(*o); }};
}

}  // namespace rr::cli
