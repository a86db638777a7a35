// Helpers shared by the unit tests: temporary directories and running a command.
#pragma once

#include "common/file.h"

#include <fmt/core.h>

#include <sys/wait.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace rr::test {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "relax-rmrr-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs through /bin/sh; stderr is merged into the captured output unless the command redirects it.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// The lines a unified diff adds or removes (not its ---/+++ headers or its description).
inline std::string changed_lines(std::string_view patch) {
  std::string out;
  bool in_diff = false;
  for (const auto& l : split_lines(patch)) {
    if (starts_with(l, "--- a/")) in_diff = true;
    if (!in_diff || starts_with(l, "--- a/") || starts_with(l, "+++ b/")) continue;
    if (starts_with(l, "+") || starts_with(l, "-")) out += l + "\n";
  }
  return out;
}

}  // namespace rr::test
