// Analysis benchmarks (Google Benchmark; configure with -DRELAX_RMRR_BENCH=ON):
//   - parsing a 100k-line kallsyms (synthetic unless RELAX_RMRR_BENCH_KALLSYMS names a real dump),
//   - loading vmlinux BTF (RELAX_RMRR_BENCH_BTF, default /sys/kernel/btf/vmlinux),
// each next to reading the same file with no parsing; the counter `x_read` is the ratio of the two (CPU time).
#include "analysis/btf.h"
#include "analysis/symbols.h"
#include "common/file.h"

#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <unistd.h>

#include <ctime>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;
using namespace rr;

namespace {

// A kallsyms-shaped file: ascending vmlinux text and data symbols, some clones and duplicate statics, modules last.
fs::path synthetic_kallsyms(size_t lines) {
  fs::path p = fs::temp_directory_path() / fmt::format("relax-rmrr-bench-kallsyms-{}-{}", getpid(), lines);
  std::string text;
  text.reserve(lines * 48);
  uint64_t addr = 0xffffffff81000000ull;
  text += fmt::format("{:016x} T _text\n", addr);
  for (size_t i = 1; i < lines; ++i) {
    addr += 0x40 + (i % 7) * 0x10;
    if (i > lines * 9 / 10) {
      text += fmt::format("{:016x} t mod_fn_{}\t[mod{}]\n", 0xffffffffc0000000ull + i * 0x40, i, i % 40);
    } else if (i % 50 == 0) {
      text += fmt::format("{:016x} t subsystem_helper_{}.cold\n", addr, i - 1);
    } else if (i % 97 == 0) {
      text += fmt::format("{:016x} t __func__.{}\n", addr, i % 13);
    } else if (i % 31 == 0) {
      text += fmt::format("{:016x} t dup_static_{}\n", addr, i % 11);
    } else {
      text += fmt::format("{:016x} {} subsystem_helper_{}\n", addr, (i % 3 == 0) ? 'T' : 't', i);
    }
  }
  if (!write_file_text(p, text)) std::abort();
  return p;
}

fs::path kallsyms_path() {
  static const fs::path p = [] {
    if (const char* e = std::getenv("RELAX_RMRR_BENCH_KALLSYMS")) return fs::path(e);
    return synthetic_kallsyms(100000);
  }();
  return p;
}

fs::path btf_path() {
  if (const char* e = std::getenv("RELAX_RMRR_BENCH_BTF")) return e;
  return "/sys/kernel/btf/vmlinux";
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// CPU time per call: the ratio stays meaningful on a loaded machine.
template <typename F>
double seconds_per_call(F&& f, int calls) {
  double t0 = cpu_seconds();
  for (int i = 0; i < calls; ++i) f();
  return (cpu_seconds() - t0) / calls;
}

void BM_KallsymsReadOnly(benchmark::State& state) {
  fs::path p = kallsyms_path();
  for (auto _ : state) {
    auto text = read_file_text(p);
    if (!text) {
      state.SkipWithError(text.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(text->data());
  }
}

void BM_KallsymsParse(benchmark::State& state) {
  fs::path p = kallsyms_path();
  double read = seconds_per_call([&] { benchmark::DoNotOptimize(read_file_text(p)); }, 50);
  size_t symbols = 0;
  for (auto _ : state) {
    auto t = analysis::read_kallsyms(p);
    if (!t) {
      state.SkipWithError(t.error().message.c_str());
      return;
    }
    symbols = t->size();
    benchmark::DoNotOptimize(t->first("intel_iommu_attach_device"));
  }
  double parse = seconds_per_call([&] { benchmark::DoNotOptimize(analysis::read_kallsyms(p)); }, 3);
  state.counters["symbols"] = static_cast<double>(symbols);
  state.counters["x_read"] = parse / read;
}

void BM_BtfReadOnly(benchmark::State& state) {
  fs::path p = btf_path();
  for (auto _ : state) {
    auto bytes = read_file_bytes(p);
    if (!bytes) {
      state.SkipWithError(bytes.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(bytes->data());
  }
}

void BM_BtfLoad(benchmark::State& state) {
  fs::path p = btf_path();
  double read = seconds_per_call([&] { benchmark::DoNotOptimize(read_file_bytes(p)); }, 20);
  uint32_t types = 0;
  for (auto _ : state) {
    auto b = analysis::Btf::open(p);
    if (!b) {
      state.SkipWithError(b.error().message.c_str());
      return;
    }
    types = b->type_count();
    benchmark::DoNotOptimize(b->struct_size("dev_iommu"));
  }
  double load = seconds_per_call([&] { benchmark::DoNotOptimize(analysis::Btf::open(p)); }, 3);
  state.counters["types"] = types;
  state.counters["x_read"] = load / read;
}

BENCHMARK(BM_KallsymsReadOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_KallsymsParse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BtfReadOnly)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BtfLoad)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (!std::getenv("RELAX_RMRR_BENCH_KALLSYMS")) {
    std::error_code ec;
    fs::remove(kallsyms_path(), ec);
  }
  return 0;
}
