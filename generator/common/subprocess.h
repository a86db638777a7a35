// Running other programs: always an argv (never a shell), output captured, time measured.
// A pipeline connects the stdout of each command to the stdin of the next, like `a | b`, without a shell.
#pragma once

#include "common/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rr::proc {

struct Command {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  std::filesystem::path cwd;  // empty: inherit
  // Environment changes on top of this process's environment: a value sets, nullopt removes.
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  // When set, stdin reads this file instead of /dev/null (first command of a pipeline only).
  std::filesystem::path stdin_file;
  // Descriptors the child inherits: (ours, the number it gets in the child, 3..9 for a POSIX shell's `<&N`).
  // First command of a pipeline only.
  std::vector<std::pair<int, int>> inherit_fds;
};

struct Outcome {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;  // the signal that ended it, 0 otherwise
  std::string out;  // stdout (for a pipeline: the last command's only)
  std::string err;  // stderr
  double seconds = 0;  // wall time
  bool ok() const { return exit_code == 0; }
  // stdout and stderr, for messages; never empty-handed: says how it ended.
  std::string describe_end() const;
};

// Error only when the program cannot be started (not found: ExitCode::missing, naming argv[0]).
// A program that runs and fails is a successful Result with exit_code != 0.
Result<Outcome> run(const Command& command);
// All commands start before any is waited for; one Outcome per command, in order.
Result<std::vector<Outcome>> run_pipeline(const std::vector<Command>& commands);

// PATH lookup without running anything.
std::optional<std::filesystem::path> find_program(std::string_view name);

// The last `n` non-empty lines of text, for error messages.
std::string last_lines(std::string_view text, size_t n);

// A command line for humans and logs (quoted where needed); never executed.
std::string quote_argv(const std::vector<std::string>& argv);

}  // namespace rr::proc
