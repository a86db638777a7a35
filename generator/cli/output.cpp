#include "cli/output.h"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace rr::cli {

int report_error(const Error& error) {
  fmt::print(stderr, "relax-rmrr: error: {}\n", error.message);
  if (!error.hint.empty()) fmt::print(stderr, "  hint: {}\n", error.hint);
  return static_cast<int>(error.code);
}

void warn(std::string_view message) { fmt::print(stderr, "relax-rmrr: warning: {}\n", message); }

void print_json(const Json& json) { fmt::print("{}\n", json.dump(2)); }

Status write_stdout(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    return make_error(ExitCode::failure, "cannot write to standard output: {}", std::strerror(errno));
  return ok_status();
}

void Progress::begin(std::string_view what) {
  ++step_;
  started_ = std::chrono::steady_clock::now();
  if (!quiet_) {
    fmt::print(stderr, "[{}/{}] {} ...\n", step_, total_, what);
    std::fflush(stderr);
  }
}

double Progress::end() {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  if (!quiet_) fmt::print(stderr, "      done in {:.1f}s\n", s);
  return s;
}

}  // namespace rr::cli
