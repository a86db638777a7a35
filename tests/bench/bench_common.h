// Shared by the benchmarks in tests/bench: where the real Debian 6.1 inputs are, and the "next to a baseline"
// measurement every benchmark reports.
//
// Each benchmark measures its operation and a baseline on the same bytes (a read, a memcpy, the raw
// decompression library...) inside the same benchmark loop, alternating them, with the thread's CPU clock.
// The reported Time is the operation alone (manual time); the counter `x_baseline` is
// CPU(operation) / CPU(baseline) over all iterations and `baseline_s` the baseline's own time per call. The
// machine this runs on is shared and noisy: compare ratios, not absolute times.
#pragma once

#include "common/file.h"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

namespace rr::bench {

inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` and `baseline` alternately, `batch` calls of each per iteration (for operations of a few
// microseconds, so the clock's own cost does not count). Use with ->UseManualTime().
template <typename Op, typename Base>
void measure_against(benchmark::State& state, const std::string& baseline_name, Op&& op, Base&& baseline, int batch = 1) {
  double op_total = 0, base_total = 0;
  for (auto _ : state) {
    double t0 = thread_cpu_seconds();
    for (int i = 0; i < batch; ++i) baseline();
    double t1 = thread_cpu_seconds();
    for (int i = 0; i < batch; ++i) op();
    double t2 = thread_cpu_seconds();
    base_total += t1 - t0;
    op_total += t2 - t1;
    state.SetIterationTime((t2 - t1) / batch);
  }
  double calls = static_cast<double>(state.iterations()) * batch;
  if (calls > 0 && base_total > 0) {
    state.counters["baseline_s"] = base_total / calls;
    state.counters["x_baseline"] = op_total / base_total;
  }
  state.SetLabel("baseline: " + baseline_name);
}

// kernel.env of a kernel prepared by tests/setup/kernel.sh (KEY=VALUE lines, shell-escaped values), or
// nullopt when that kernel is not prepared. The cache root is $RELAX_RMRR_CACHE, else /var/cache/relax-rmrr.
inline std::optional<std::map<std::string, std::string>> kernel_env(const std::string& kernel = "debian-6.1") {
  const char* root = std::getenv("RELAX_RMRR_CACHE");
  std::filesystem::path p = std::filesystem::path(root && *root ? root : "/var/cache/relax-rmrr") / "kernels" / kernel / "kernel.env";
  std::ifstream in(p);
  if (!in) return std::nullopt;
  std::map<std::string, std::string> env;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value;
    bool in_quote = false;
    for (size_t i = eq + 1; i < line.size(); ++i) {
      char c = line[i];
      if (c == '\'') in_quote = !in_quote;
      else if (c == '\\' && !in_quote && i + 1 < line.size()) value += line[++i];
      else value += c;
    }
    env[line.substr(0, eq)] = value;
  }
  return env;
}

// A file named by kernel.env's KEY, when the kernel is prepared and the file exists; else empty.
inline std::filesystem::path kernel_file(const std::string& key, const std::string& kernel = "debian-6.1") {
  auto env = kernel_env(kernel);
  if (!env) return {};
  auto it = env->find(key);
  if (it == env->end() || it->second.empty()) return {};
  std::error_code ec;
  return std::filesystem::exists(it->second, ec) ? std::filesystem::path(it->second) : std::filesystem::path();
}

inline void skip(benchmark::State& state, const std::string& why) {
  state.SkipWithError(why.c_str());
  for (auto _ : state) {
  }
}

}  // namespace rr::bench
