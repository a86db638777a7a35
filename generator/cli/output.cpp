#include "cli/output.h"

#include <fmt/core.h>

#include <cstdio>

namespace rr::cli {

int report_error(const Error& error) {
  fmt::print(stderr, "relax-rmrr: error: {}\n", error.message);
  if (!error.hint.empty()) fmt::print(stderr, "  hint: {}\n", error.hint);
  return static_cast<int>(error.code);
}

void warn(std::string_view message) { fmt::print(stderr, "relax-rmrr: warning: {}\n", message); }

void print_json(const Json& json) { fmt::print("{}\n", json.dump(2)); }

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
