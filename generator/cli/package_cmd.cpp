// relax-rmrr package: ship the livepatch to other hosts: a .deb for one kernel build, or a DKMS source tree.
#include "cli/commands.h"
#include "cli/output.h"
#include "common/file.h"
#include "lifecycle/install.h"
#include "lifecycle/module_file.h"

#include <fmt/core.h>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct PackageOptions {
  bool deb = false, dkms = false;
  std::string module, output, kernel_build, version;
  bool json = false;
  bool no_autoinstall = false;
};

int run_package(const PackageOptions& o) {
  if (o.deb == o.dkms) return report_error(make_error(ExitCode::bad_input, "give exactly one of --deb and --dkms"));
  if (o.dkms) {
    lifecycle::DkmsRequest req;
    req.tool_version = RELAX_RMRR_VERSION;
    req.version = o.version;
    req.output_dir = o.output;
    req.autoinstall = !o.no_autoinstall;
    auto dir = lifecycle::write_dkms_tree(req);
    if (!dir) return report_error(dir.error());
    fmt::print("Wrote the DKMS package source to {}\n", dir->string());
    fmt::print("Next: dkms add {} && dkms install relax-rmrr/{} (needs relax-rmrr in PATH, the kernel's headers and source)\n",
               dir->string(), o.version.empty() ? RELAX_RMRR_VERSION : o.version);
    return 0;
  }
  if (o.module.empty()) return report_error(make_error(ExitCode::bad_input, "--deb needs the module: relax-rmrr package --deb FILE.ko"));
  lifecycle::DebRequest req;
  req.module = o.module;
  req.tool_version = RELAX_RMRR_VERSION;
  req.version = o.version;
  if (!o.output.empty()) req.output_dir = o.output;
  req.kernel_build = o.kernel_build;
  if (req.kernel_build.empty()) {
    // The running kernel's build identity, when the module is for the running kernel.
    auto m = lifecycle::read_module_file(o.module);
    auto running = read_attribute("/proc/sys/kernel/osrelease");
    auto version = read_attribute("/proc/version");
    if (m && running && version && m->vermagic_release == *running) req.kernel_build = lifecycle::kernel_build_from_proc_version(*version);
    else if (m)
      warn(
          fmt::format("{} is not for the running kernel: the package checks only the release {} (give --kernel-build "
                      "\"#1 SMP ... (date)\" from that kernel's /proc/version to pin the build)",
                      o.module, m->vermagic_release));
  }
  auto deb = lifecycle::build_deb(req);
  if (!deb) return report_error(deb.error());
  if (o.json) {
    Json j = Json::object();
    j.set("deb", deb->string());
    j.set("kernel_build", req.kernel_build);
    print_json(j);
  } else {
    fmt::print("Built {}\n", deb->string());
    fmt::print("  kernel build pinned: {}\n", req.kernel_build.empty() ? "(release only)" : req.kernel_build);
    fmt::print("Install on hosts running exactly that kernel: apt install ./{} (others refuse it in preinst)\n", deb->filename().string());
  }
  return 0;
}

}  // namespace

Command add_package_command(CLI::App& root) {
  auto o = std::make_shared<PackageOptions>();
  CLI::App* app = root.add_subcommand("package", "Build a .deb holding the livepatch for one kernel build, or a DKMS source tree");
  app->add_flag("--deb", o->deb, "A .deb: the module for its kernel build plus the boot unit");
  app->add_flag("--dkms", o->dkms,
                "A DKMS package source (dkms.conf and its build step) in --output (default /usr/src/relax-rmrr-VERSION)");
  app->add_option("file", o->module, "The .ko from `relax-rmrr build` (for --deb)");
  app->add_option("--output,-o", o->output, "Directory for the .deb / the DKMS tree");
  app->add_option("--kernel-build", o->kernel_build,
                  "The kernel build the module is for, as /proc/version shows it from ' #' on (default: the running "
                  "kernel's when the module is for it)");
  app->add_flag("--no-autoinstall", o->no_autoinstall,
                "--dkms: leave AUTOINSTALL off in dkms.conf (the relax-rmrr-dkms package's kernel hook builds instead, and "
                "never fails a kernel's installation)");
  app->add_option("--version", o->version, "Package version (default: the module's relax_rmrr_version / the tool's version)");
  app->add_flag("--json", o->json, "Print a JSON summary on stdout");
  app->footer(
      "The .deb: /lib/modules/R/updates/NAME.ko and /lib/systemd/system/relax-rmrr-R.service; Depends on the kernel's\n"
      "image package; preinst refuses a host whose `uname -r` is not R or whose /proc/version is another build.\n"
      "Exit codes: 0 built, 2 bad input, 3 file or dpkg-deb missing.");
  return {app, [o] { return run_package(*o); }};
}

}  // namespace rr::cli
