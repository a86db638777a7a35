// One file per subcommand (bpftool style). Each registers itself on the app and runs when chosen.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace rr::cli {

// A subcommand's action returns the process exit code.
using Action = std::function<int()>;

struct Command {
  CLI::App* app;
  Action run;
};

Command add_dmar_command(CLI::App& root);
Command add_doctor_command(CLI::App& root);
Command add_analyze_command(CLI::App& root);
Command add_kallsyms_command(CLI::App& root);
Command add_diff_command(CLI::App& root);
Command add_build_command(CLI::App& root);
Command add_load_command(CLI::App& root);
Command add_enable_command(CLI::App& root);
Command add_disable_command(CLI::App& root);
Command add_unload_command(CLI::App& root);
Command add_status_command(CLI::App& root);
Command add_devices_command(CLI::App& root);
Command add_wait_command(CLI::App& root);
Command add_install_command(CLI::App& root);
Command add_boot_command(CLI::App& root);
Command add_uninstall_command(CLI::App& root);
Command add_package_command(CLI::App& root);
Command add_verify_command(CLI::App& root);
Command add_patch_command(CLI::App& root);
// Hidden: prints a completion script generated from `root` at run time (register it last).
Command add_completion_command(CLI::App& root);

}  // namespace rr::cli
