#include "pipeline/progress.h"

#include <fmt/core.h>

#include <cstdio>

namespace rr::pipeline {

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

}  // namespace rr::pipeline
