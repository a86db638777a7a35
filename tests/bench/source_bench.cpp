// Source transform benchmarks (Google Benchmark; -DRELAX_RMRR_BENCH=ON, build/tests/source_bench) on the real
// Debian 6.1 drivers/iommu/intel/iommu.c. The text is taken from the linux-source tarball at run time
// (kernel.env SOURCE_TARBALL) through source::locate, as `build` does: extracted into the tool's source cache
// (source::default_cache_dir(), $RELAX_RMRR_CACHE/source) on first use, found there afterwards.
// RELAX_RMRR_BENCH_SOURCE may name a tree or drivers/iommu directory instead. No kernel source is committed. Without the
// Debian 6.1 kernel the benchmarks are skipped with a message.
// Next to a baseline in the same process (bench_common.h):
//   BM_RelaxTransform   relax_transform + apply_edits (what `build` does)   vs memcpy of the text
//   BM_OptionTransform  option_transform + apply_edits (`patch`)           vs memcpy of the text
#include "bench_common.h"
#include "common/file.h"
#include "source/option_transform.h"
#include "source/source.h"
#include "source/transform.h"

#include <cstring>

namespace fs = std::filesystem;
using namespace rr;
using bench::measure_against;

namespace {

struct Driver {
  std::string text;
  std::string relative;
  std::string from;
};

const Driver* driver() {
  static const std::optional<Driver> d = []() -> std::optional<Driver> {
    Driver r;
    Result<source::SourceTree> tree = make_error(ExitCode::missing, "no source");
    if (const char* e = std::getenv("RELAX_RMRR_BENCH_SOURCE"); e && *e) {
      tree = source::locate(e);
      r.from = e;
    } else {
      fs::path tarball = bench::kernel_file("SOURCE_TARBALL");
      if (tarball.empty()) return std::nullopt;
      source::LocateOptions lo;
      lo.cache_dir = source::default_cache_dir();
      tree = source::locate(tarball, lo);
      r.from = tarball.string();
    }
    if (!tree) {
      fmt::print(stderr, "no source: {}\n", tree.error().message);
      return std::nullopt;
    }
    auto text = read_file_text(tree->iommu_c);
    if (!text) return std::nullopt;
    r.text = std::move(*text);
    r.relative = tree->iommu_c_relative;
    return r;
  }();
  return d ? &*d : nullptr;
}

template <typename Transform>
void transform_case(benchmark::State& state, Transform&& transform) {
  const Driver* d = driver();
  if (!d)
    return bench::skip(state,
                       "the Debian 6.1 source is not available: run tests/setup/kernel.sh debian-6.1 "
                       "(or set RELAX_RMRR_BENCH_SOURCE)");
  std::string copy(d->text.size(), '\0');
  size_t edits = 0;
  auto op = [&] {
    auto t = transform(d->text, d->relative);
    if (!t) std::abort();
    auto patched = source::apply_edits(d->text, t->edits);
    if (!patched) std::abort();
    edits = t->edits.size();
    benchmark::DoNotOptimize(patched->data());
  };
  auto copy_text = [&] {
    std::memcpy(copy.data(), d->text.data(), d->text.size());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  };
  measure_against(state, fmt::format("memcpy of the {} bytes of {}", d->text.size(), d->relative), op, copy_text);
  state.counters["edits"] = static_cast<double>(edits);
  state.counters["source_KiB"] = static_cast<double>(d->text.size()) / 1024;
}

void BM_RelaxTransform(benchmark::State& state) {
  transform_case(state, [](std::string_view text, std::string_view path) { return source::relax_transform(text, path); });
}

void BM_OptionTransform(benchmark::State& state) {
  transform_case(state, [](std::string_view text, std::string_view path) { return source::option_transform(text, path); });
}

BENCHMARK(BM_RelaxTransform)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OptionTransform)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (const Driver* d = driver()) fmt::print(stderr, "source: {} from {}\n", d->relative, d->from);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
