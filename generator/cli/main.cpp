#include "cli/commands.h"
#include "cli/output.h"

#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include <string_view>
#include <vector>

namespace {

int run(int argc, char** argv) {
  CLI::App app{
      "relax-rmrr: pass RMRR-locked PCI devices through to VMs without rebuilding the kernel.\n"
      "Diagnose with `doctor`, build a livepatch for the running kernel with `build`, load it with `load`.",
      "relax-rmrr"};
  app.set_version_flag("--version", "relax-rmrr " RELAX_RMRR_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  std::vector<rr::cli::Command> commands{
      rr::cli::add_dmar_command(app),      rr::cli::add_doctor_command(app),     rr::cli::add_analyze_command(app),
      rr::cli::add_kallsyms_command(app),  rr::cli::add_diff_command(app),       rr::cli::add_build_command(app),
      rr::cli::add_load_command(app),      rr::cli::add_enable_command(app),     rr::cli::add_disable_command(app),
      rr::cli::add_unload_command(app),    rr::cli::add_status_command(app),     rr::cli::add_devices_command(app),
      rr::cli::add_wait_command(app),      rr::cli::add_install_command(app),    rr::cli::add_boot_command(app),
      rr::cli::add_uninstall_command(app), rr::cli::add_package_command(app),    rr::cli::add_verify_command(app),
      rr::cli::add_patch_command(app),     rr::cli::add_completion_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 exits 0 for --help/--version; usage errors become our "bad input" code, as JSON too with --json.
    bool json = false;
    for (int i = 1; i < argc; ++i) json = json || std::string_view(argv[i]) == "--json";
    if (e.get_exit_code() == 0 || !json) return app.exit(e) == 0 ? 0 : 2;
    rr::cli::set_json_output(true);
    return rr::cli::report_error(rr::Error{e.what(), rr::ExitCode::bad_input, "relax-rmrr --help lists the commands and options"});
  }
  for (auto& c : commands)
    if (c.app->parsed()) {
      // Every error of a command run with --json is also a JSON object on stdout (cli/output.h).
      const CLI::Option* json = c.app->get_option_no_throw("--json");
      rr::cli::set_json_output(json && json->count() > 0);
      return c.run();
    }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int code;
  try {
    code = run(argc, argv);
  } catch (const std::exception& e) {
    // What escapes a command is a failed write (fmt throws when stdout cannot take the text) or a bug: either way
    // a message and a non-zero exit, never an abort.
    std::fprintf(stderr, "relax-rmrr: error: %s\n", e.what());
    code = static_cast<int>(rr::ExitCode::failure);
  }
  return rr::cli::finish_output(code);
}
