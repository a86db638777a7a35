// relax-rmrr uninstall: remove what install wrote; the running kernel keeps a loaded patch until `unload`.
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "lifecycle/boot.h"
#include "lifecycle/install.h"

#include <fmt/core.h>

namespace rr::cli {

Command add_uninstall_command(CLI::App& root) {
  auto o = std::make_shared<lifecycle::UninstallRequest>();
  auto root_dir = std::make_shared<std::string>("/");
  auto no_depmod = std::make_shared<bool>(false);
  CLI::App* app = root.add_subcommand("uninstall", "Remove the installed module(s), the boot unit and the agreement to load at boot");
  app->add_option("--root", *root_dir, "Below DIR instead of /")->capture_default_str();
  app->add_option("--name", o->module_name, "Module name")->capture_default_str()->check(module_name_check());
  app->add_option("--kernel-release", o->release, "Only this kernel release (default: every release that has the module)")
      ->check(kernel_release_check());
  app->add_flag("--no-depmod", *no_depmod, "Do not run depmod");
  app->footer("Exit codes: 0 removed (or nothing to remove), 5 not permitted. A loaded livepatch stays: relax-rmrr unload.");
  return {app, [o, root_dir, no_depmod] {
            lifecycle::UninstallRequest req = *o;
            req.root = *root_dir;
            req.depmod = !*no_depmod;
            auto r = lifecycle::uninstall(req);
            if (!r) return report_error(r.error());
            if (r->written.empty()) fmt::print("Nothing of {} was installed\n", req.module_name);
            for (const auto& p : r->written) fmt::print("  removed {}\n", p.string());
            for (const auto& n : r->notes) fmt::print("  note: {}\n", n);
            // Removing everything also withdraws the agreement the boot unit waits for.
            if (req.release.empty() && lifecycle::consent_given(req.root)) {
              if (auto s = lifecycle::withdraw_consent(req.root); !s) return report_error(s.error());
              fmt::print("  removed {} (the boot unit loads nothing until you agree again)\n", lifecycle::consent_file(req.root).string());
            }
            return 0;
          }};
}

}  // namespace rr::cli
