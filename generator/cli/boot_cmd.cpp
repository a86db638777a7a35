// relax-rmrr boot: what relax-rmrr.service runs early at every boot. Never fails the boot: every outcome exits 0
// and says in the journal what happened and, when nothing was loaded, why and what to run.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"
#include "lifecycle/boot.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct BootOptions {
  LifecycleOptions common;
  bool strict = false;
};

int run_boot(const BootOptions& o) {
  LifecycleContext ctx(o.common);
  lifecycle::LoadOptions lo;
  lo.wait = ctx.wait();
  lifecycle::BootReport r = lifecycle::boot(ctx.env(), o.common.name, lo);
  if (o.common.json) {
    print_json(lifecycle::to_json(r));
  } else {
    fmt::print("relax-rmrr: {}\n", r.message);
    for (const auto& n : r.notes) fmt::print("relax-rmrr:   {}\n", n);
    std::fflush(stdout);
  }
  bool in_force = r.action == "loaded" || r.action == "already-loaded";
  return o.strict && !in_force ? static_cast<int>(ExitCode::failure) : 0;
}

}  // namespace

Command add_boot_command(CLI::App& root) {
  auto o = std::make_shared<BootOptions>();
  CLI::App* app = root.add_subcommand(
      "boot", "At boot (relax-rmrr.service): load the module built for the running kernel, once the administrator agreed");
  add_root_option(app, o->common);
  add_name_option(app, o->common);
  add_timeout_option(app, o->common);
  app->add_flag("--json", o->common.json, "Print the outcome as JSON");
  app->add_flag("--strict", o->strict, "Exit 1 when the livepatch is not in force afterwards (default: always 0)");
  app->footer(
      "Loads nothing until the administrator has agreed once (/etc/relax-rmrr/consent: the debconf question of the\n"
      "relax-rmrr package, or `relax-rmrr install`). Then takes the module for `uname -r` from /lib/modules/R/\n"
      "{updates,extra,updates/dkms}/NAME.ko[.xz|.zst|.gz], loads it and waits for the transition (--timeout).\n"
      "Without a module for this kernel it says why (what the DKMS hook recorded) and what to run.\n"
      "Exit codes: 0 always (the boot must go on), unless --strict: then 1 when the patch is not in force.");
  return {app, [o] { return run_boot(*o); }};
}

}  // namespace rr::cli
