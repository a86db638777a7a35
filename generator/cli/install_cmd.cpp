// relax-rmrr install: make the livepatch load at every boot of the kernel it was built for.
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "lifecycle/boot.h"
#include "lifecycle/install.h"
#include "lifecycle/selection.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

// Installing is agreeing: the boot unit loads only after a yes (lifecycle/boot.h).
int record_consent(const std::filesystem::path& root) {
  if (auto s = lifecycle::write_consent(root); !s) return report_error(s.error());
  fmt::print(
      "Recorded your agreement in {}: relax-rmrr.service loads the livepatch at every boot of a kernel that has\n"
      "a module for it (DKMS builds one for every kernel apt installs, with the relax-rmrr-dkms package).\n",
      lifecycle::consent_file(root).string());
  return 0;
}

int run_install(const lifecycle::InstallRequest& req) {
  if (req.module.empty()) {
    if (req.devices) {
      if (auto s = lifecycle::persist_selection(req.root, *req.devices); !s) return report_error(s.error());
      fmt::print("Kept the selection ({}) in {}\n", req.devices->all() ? "every RMRR device" : req.devices->text,
                 lifecycle::selection_file(req.root).string());
    }
    return record_consent(req.root);
  }
  auto r = lifecycle::install(req);
  if (!r) return report_error(r.error());
  fmt::print("Installed {} for kernel {}\n", r->module_name, r->release);
  for (const auto& p : r->written) fmt::print("  wrote {}\n", p.string());
  for (const auto& n : r->notes) fmt::print("  note: {}\n", n);
  fmt::print("It loads at every boot of {} ({}), before udev coldplug and vfio-pci binding.\n", r->release,
             lifecycle::unit_name(r->module_name));
  return record_consent(req.root);
}

}  // namespace

Command add_install_command(CLI::App& root) {
  auto o = std::make_shared<lifecycle::InstallRequest>();
  o->tool_version = RELAX_RMRR_VERSION;
  auto root_dir = std::make_shared<std::string>("/");
  auto no_depmod = std::make_shared<bool>(false);
  auto no_enable = std::make_shared<bool>(false);
  auto module = std::make_shared<std::string>();
  auto devices = std::make_shared<std::string>();
  CLI::App* app = root.add_subcommand(
      "install", "Agree that the livepatch loads at boot; with FILE, also install that module and a unit that loads it");
  app->add_option("file", *module, "The .ko from `relax-rmrr build` (none: only record the agreement)");
  app->add_option("--root", *root_dir, "Install below DIR instead of / (tests, images)")->capture_default_str();
  app->add_option("--dir", o->subdir, "updates (default: wins over the distribution's modules) or extra")
      ->capture_default_str()
      ->check(CLI::IsMember({"updates", "extra"}));
  app->add_option("--kernel-release", o->release,
                  "Kernel release (default: the module's vermagic->check(kernel_release_check()); must agree with it)");
  app->add_flag("--no-depmod", *no_depmod, "Do not run depmod");
  app->add_flag("--no-enable", *no_enable, "Write the unit but do not enable it");
  CLI::Option* devices_option = app->add_option("--devices", *devices, kDevicesOptionHelp)->check(devices_check());
  app->footer(
      "Without FILE: records the administrator's agreement (/etc/relax-rmrr/consent) that the packaged boot unit\n"
      "waits for: the same as answering yes to the relax-rmrr package's debconf question.\n"
      "With FILE: also writes /lib/modules/R/updates/NAME.ko, runs depmod R, writes /etc/systemd/system/\n"
      "relax-rmrr.service (its comments explain the ordering) and links it into sysinit.target.wants.\n"
      "--devices LIST keeps the selection in /etc/relax-rmrr/devices, which every later load uses (without it, the\n"
      "one kept there, if any: absent, every RMRR device is relaxed).\n"
      "Does not load anything now: use load.\n"
      "Exit codes: 0 installed, 2 not a livepatch module, 3 file missing, 4 built for another kernel, 5 not permitted.");
  return {app, [o, root_dir, no_depmod, no_enable, module, devices, devices_option] {
            lifecycle::InstallRequest req = *o;
            req.root = *root_dir;
            req.module = *module;
            req.depmod = !*no_depmod;
            req.enable = !*no_enable;
            if (devices_option->count()) req.devices = parse_devices_option(*devices).value();  // checked at parse time
            return run_install(req);
          }};
}

}  // namespace rr::cli
