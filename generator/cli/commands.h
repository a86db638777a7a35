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
Command add_diff_command(CLI::App& root);
Command add_build_command(CLI::App& root);

}  // namespace rr::cli
