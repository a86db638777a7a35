// ELF object load and function diff benchmarks (Google Benchmark; -DRELAX_RMRR_BENCH=ON, build/tests/diff_bench).
// Objects: RELAX_RMRR_BENCH_OBJECTS=DIR with DIR/original/iommu.o and DIR/patched/iommu.o (what
// `relax-rmrr build --keep-tmp K` leaves in K/compile; tests/bench/build-stages.sh passes them), else two
// synthetic objects gcc compiles here (-O2 -ffunction-sections -fdata-sections, 600 functions calling each
// other, strings, a static table, __LINE__ uses, one line of one function changed) in a temporary directory.
// Next to a baseline in the same process (bench_common.h):
//   BM_ObjectLoad    obj::load of both objects               vs reading both files into memory
//   BM_FunctionDiff  diff::compare of the loaded objects     vs memcmp of every same-name section's bytes
#include "bench_common.h"
#include "common/file.h"
#include "diff/function_diff.h"
#include "elf/object.h"

#include <unistd.h>

#include <cstring>
#include <map>

namespace fs = std::filesystem;
using namespace rr;
using bench::measure_against;

namespace {

std::string synthetic_source(bool patched) {
  std::string s =
      "struct dev { int id; int flags; const char *name; };\n"
      "extern void report(const char *fmt, ...);\n"
      "extern int external_helper(struct dev *d, int v);\n"
      "static const char *const names[] = {\"alpha\", \"beta\", \"gamma\", \"delta\"};\n"
      "int shared_counter;\n";
  constexpr int kFunctions = 600;
  for (int i = 0; i < kFunctions; ++i) {
    bool is_static = i % 3 != 0;
    s += fmt::format("{}int fn_{}(struct dev *d, int v)\n{{\n", is_static ? "static __attribute__((noinline)) " : "", i);
    s += fmt::format("  if (!d) {{ report(\"%s:%d: no device in fn_{}\\n\", __FILE__, __LINE__); return -22; }}\n", i);
    // The change, on one line so that no __LINE__ below moves.
    s += fmt::format("  v += d->id * {} + (d->flags & {}){};\n", i + 1, i % 17, i == kFunctions / 2 && patched ? " + 1" : "");
    s += fmt::format("  if (v > {}) v = external_helper(d, v);\n", 1000 + i);
    s += "  shared_counter++;\n";
    if (i > 0) s += fmt::format("  if (v & 1) v += fn_{}(d, v >> 1);\n", (i * 7 + 3) % i);
    s += fmt::format("  if (v < 0) report(\"%s\\n\", names[{}]);\n", i % 4);
    s += "  return v;\n}\n";
  }
  s += "int entry(struct dev *d)\n{\n  int v = 0;\n";
  for (int i = 0; i < kFunctions; i += 3) s += fmt::format("  v += fn_{}(d, v);\n", i);
  s += "  return v;\n}\n";
  return s;
}

struct Objects {
  fs::path original, patched;
  std::string origin;
  fs::path temp_dir;  // removed at exit when set
};

const Objects* objects() {
  static const std::optional<Objects> made = []() -> std::optional<Objects> {
    if (const char* e = std::getenv("RELAX_RMRR_BENCH_OBJECTS"); e && *e) {
      Objects r{fs::path(e) / "original" / "iommu.o", fs::path(e) / "patched" / "iommu.o", "iommu.o from " + std::string(e), {}};
      if (fs::exists(r.original) && fs::exists(r.patched)) return r;
      return std::nullopt;
    }
    Objects r;
    r.temp_dir = fs::temp_directory_path() / fmt::format("relax-rmrr-bench-diff-{}", getpid());
    fs::create_directories(r.temp_dir);
    for (bool patched : {false, true}) {
      // The same file name in both (as __FILE__ is in a real build): only the changed line differs.
      fs::path dir = r.temp_dir / (patched ? "patched" : "original");
      fs::create_directories(dir);
      if (!write_file_text(dir / "driver.c", synthetic_source(patched))) return std::nullopt;
      std::string cmd = fmt::format("cd '{}' && gcc -O2 -ffunction-sections -fdata-sections -c -o driver.o driver.c", dir.string());
      if (std::system(cmd.c_str()) != 0) return std::nullopt;
      (patched ? r.patched : r.original) = dir / "driver.o";
    }
    r.origin = "synthetic, gcc -O2";
    return r;
  }();
  return made ? &*made : nullptr;
}

void BM_ObjectLoad(benchmark::State& state) {
  const Objects* o = objects();
  if (!o) return bench::skip(state, "no objects: RELAX_RMRR_BENCH_OBJECTS is not a compile directory, or gcc failed");
  size_t sections = 0;
  auto load = [&] {
    auto a = obj::load(o->original);
    auto b = obj::load(o->patched);
    if (!a || !b) std::abort();
    sections = a->sections.size();
    benchmark::DoNotOptimize(b->sections.data());
  };
  auto read = [&] {
    auto a = read_file_bytes(o->original);
    auto b = read_file_bytes(o->patched);
    if (!a || !b) std::abort();
    benchmark::DoNotOptimize(b->data());
  };
  measure_against(state, "reading both files into memory", load, read);
  state.counters["sections"] = static_cast<double>(sections);
  state.counters["object_KiB"] = static_cast<double>(fs::file_size(o->original)) / 1024;
}

void BM_FunctionDiff(benchmark::State& state) {
  const Objects* o = objects();
  if (!o) return bench::skip(state, "no objects: RELAX_RMRR_BENCH_OBJECTS is not a compile directory, or gcc failed");
  auto a = obj::load(o->original);
  auto b = obj::load(o->patched);
  if (!a || !b) return bench::skip(state, "the objects do not load");
  std::map<std::string_view, const obj::Section*> by_name;
  for (const auto& s : b->sections) by_name.emplace(s.name, &s);
  size_t compared = 0, changed = 0;
  auto compare = [&] {
    auto d = diff::compare(*a, *b);
    if (!d) std::abort();
    compared = d->functions_compared;
    changed = d->functions.size();
    benchmark::DoNotOptimize(d->functions.data());
  };
  auto bytewise = [&] {
    size_t differ = 0;
    for (const auto& s : a->sections) {
      auto it = by_name.find(s.name);
      if (it == by_name.end()) continue;
      const Bytes& x = s.data;
      const Bytes& y = it->second->data;
      differ += x.size() != y.size() || std::memcmp(x.data(), y.data(), x.size()) != 0;
    }
    benchmark::DoNotOptimize(differ);
  };
  measure_against(state, "memcmp of every same-name section", compare, bytewise);
  state.counters["functions"] = static_cast<double>(compared);
  state.counters["changed"] = static_cast<double>(changed);
}

BENCHMARK(BM_ObjectLoad)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FunctionDiff)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (const Objects* o = objects()) fmt::print(stderr, "objects: {}\n", o->origin);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (const Objects* o = objects(); o && !o->temp_dir.empty()) {
    std::error_code ec;
    fs::remove_all(o->temp_dir, ec);
  }
  return 0;
}
