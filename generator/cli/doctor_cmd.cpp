// relax-rmrr doctor: placeholder until the doctor lands (being written now).
#include "cli/commands.h"

namespace rr::cli {
Command add_doctor_command(CLI::App& root) {
  CLI::App* app = root.add_subcommand("doctor", "Tell which devices are RMRR-locked, why, and what to do next");
  return {app, [] { return 1; }};
}
}  // namespace rr::cli
