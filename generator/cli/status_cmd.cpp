// relax-rmrr status: is the livepatch in force, which build is it, does it fit the running kernel.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct StatusOptions {
  LifecycleOptions common;
  std::string file;
};

int run_status(const StatusOptions& o) {
  LifecycleContext ctx(o.common);
  auto name = livepatch_name(o.common, ctx.env());
  if (!name) return report_error(name.error());
  auto status = lifecycle::read_status(ctx.env(), *name, o.file);
  if (!status) return report_error(status.error());
  const lifecycle::PatchStatus& s = *status;
  if (o.common.json) {
    print_json(lifecycle::to_json(s));
    return s.active() ? 0 : 1;
  }
  fmt::print("relax-rmrr livepatch {} on kernel {}\n", s.name, s.running_release.empty() ? "(unknown)" : s.running_release);
  std::string state;
  if (!s.module) state = "not loaded";
  else if (!s.patch) state = "module loaded, patch disabled (freed by the kernel): `relax-rmrr enable` loads it again";
  else if (s.patch->in_transition) state = s.patch->enabled ? "in transition to enabled" : "in transition to disabled";
  else state = s.patch->enabled ? "enabled" : "disabled";
  fmt::print("  state        {}\n", state);
  if (s.module)
    fmt::print("  devices      {}\n", s.module_devices ? describe_devices(*s.module_devices) + " (`relax-rmrr devices` changes it)"
                                                       : std::string("every RMRR device (a module without the devices parameter)"));
  if (!s.module_devices || s.module_devices->text != s.persisted_devices.text)
    fmt::print("  next load    {} (/etc/relax-rmrr/devices)\n", describe_devices(s.persisted_devices));
  if (s.module)
    fmt::print("  module       {} refcnt {} taint {}{}\n", s.module->initstate,
               s.module->refcnt ? fmt::format("{}", *s.module->refcnt) : std::string("?"), s.module->taint.empty() ? "-" : s.module->taint,
               s.module->build_id.empty() ? "" : " build-id " + s.module->build_id);
  if (s.file) {
    fmt::print("  file         {}{}\n", s.file->path.string(),
               !s.file_is_loaded   ? ""
               : *s.file_is_loaded ? " (the loaded module)"
                                   : " (NOT the loaded module: another build)");
    fmt::print("  built for    {} by relax-rmrr {}{}{}\n",
               s.file->field("relax_rmrr_kernel").empty() ? s.file->vermagic_release : s.file->field("relax_rmrr_kernel"),
               s.file->field("relax_rmrr_version").empty() ? "?" : s.file->field("relax_rmrr_version"),
               s.file->field("relax_rmrr_forced") == "1" || s.file->field("relax_rmrr_forced") == "yes" ? ", safety check FORCED" : "",
               s.file->is_signed ? ", signed" : ", unsigned");
    fmt::print("  kernel match {}\n",
               s.file_matches_kernel ? "yes: vermagic matches the running kernel" : "NO: vermagic says " + s.file->vermagic_release);
  } else {
    fmt::print("  file         none found (relax-rmrr status --module FILE.ko compares one)\n");
  }
  for (const auto& p : s.other_patches)
    fmt::print("  other patch  {}: {}{}\n", p.name, p.enabled ? "enabled" : "disabled", p.in_transition ? ", in transition" : "");
  fmt::print("  signatures   lockdown {}, sig_enforce {}\n", s.lockdown.value_or("not reported"),
             s.sig_enforce ? (*s.sig_enforce ? "Y" : "N") : "not reported");
  for (const auto& t : s.blockers)
    fmt::print("  blocking     pid {} ({}) patch_state {}{}\n", t.pid, t.comm, t.patch_state,
               t.stack.empty() ? "" : ": " + t.stack.front());
  return s.active() ? 0 : 1;
}

}  // namespace

Command add_status_command(CLI::App& root) {
  auto o = std::make_shared<StatusOptions>();
  CLI::App* app = root.add_subcommand("status", "Show whether the livepatch is loaded and in force, and which build it is");
  add_name_option(app, o->common);
  add_root_option(app, o->common);
  app->add_option("--module", o->file,
                  "Compare this .ko with the loaded module (default: the file `load` recorded, then "
                  "/lib/modules/$(uname -r)/{updates,extra,updates/dkms}/NAME.ko)");
  app->add_flag("--json", o->common.json, "Print JSON on stdout");
  app->footer(
      "The relax_rmrr_kernel/version/forced fields come from the module file (sysfs does not show custom modinfo\n"
      "fields); the loaded module and the file are matched by their GNU build-id (/sys/module/NAME/notes).\n"
      "Exit codes: 0 the patch is enabled and its transition done, 1 it is not (not loaded, disabled, in transition).");
  return {app, [o] { return run_status(*o); }};
}

}  // namespace rr::cli
