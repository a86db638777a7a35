#include "pipeline/prepare.h"

#include "common/file.h"
#include "source/transform.h"

#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <future>

namespace fs = std::filesystem;

namespace rr::pipeline {

WorkDir::WorkDir(const std::string& keep, std::string_view purpose) {
  if (!keep.empty()) {
    path_ = fs::absolute(keep);
    keep_ = true;
    std::error_code ec;
    fs::create_directories(path_, ec);
    return;
  }
  std::string tmpl = (fs::temp_directory_path() / fmt::format("relax-rmrr-{}-XXXXXX", purpose)).string();
  if (mkdtemp(tmpl.data())) path_ = tmpl;
}

WorkDir::~WorkDir() {
  std::error_code ec;
  if (!keep_ && !path_.empty()) fs::remove_all(path_, ec);
}

namespace {

Result<source::SourceTree> find_source(const std::string& given, const std::string& release) {
  if (!given.empty()) return source::locate(given);
  auto candidates = source::distro_source_tarballs(release);
  if (candidates.empty()) {
    Error e = make_error(ExitCode::missing, "no kernel source given and none found in /usr/src for {}", release);
    e.hint = "install your distribution's kernel source (Debian: apt install linux-source-X.Y) or pass --source TARBALL|DIR";
    return e;
  }
  return source::locate(candidates.front());
}

// What the analysis of the target must have found, and its era. `need_kbuild`: false only for objects compiled
// elsewhere.
Status check_target(bool need_kbuild, PreparedChange& p) {
  const auto& k = p.kernel;
  for (const auto& m : k.missing)
    if (m.blocking && (need_kbuild || !m.kbuild)) {
      Error e = make_error(ExitCode::missing, "cannot work on {}: {} is missing", k.release, m.what);
      e.hint = m.how;
      return e;
    }
  if (!k.symbols || !k.btf || (need_kbuild && !k.kbuild))
    return make_error(ExitCode::missing, "the target's symbols, BTF{} are all needed (see relax-rmrr analyze)",
                      need_kbuild ? " and kbuild tree" : "");
  if (need_kbuild) RR_CHECK(analysis::check_build_prerequisites(k));
  std::string era_reason;
  analysis::BtfFacts btf_facts = analysis::collect_btf_facts(*k.btf, {});
  p.era = analysis::decide_era(&*k.symbols, &btf_facts, era_reason);
  if (p.era == analysis::Era::unknown) {
    Error e = make_error(ExitCode::refused, "cannot tell how this kernel enforces RMRRs: {}", era_reason);
    e.hint =
        "relax-rmrr analyze shows what was found; a kernel without intel_iommu_attach_device and without "
        "dev_iommu.require_direct is not one relax-rmrr knows";
    return e;
  }
  return ok_status();
}

// diff -> plan, on the two objects.
Status plan_change(const std::filesystem::path& original, const std::filesystem::path& patched, PreparedChange& p, Progress& progress) {
  progress.begin("finding the functions that really changed");
  const auto& k = p.kernel;
  RR_ASSIGN(p.original, obj::load(original));
  RR_ASSIGN(p.patched, obj::load(patched));
  RR_ASSIGN(p.diff, diff::compare(p.original, p.patched));
  p.symbols = std::make_unique<klp::KernelSymbols>(*k.symbols, k.symvers ? &*k.symvers : nullptr, p.original);
  RR_ASSIGN(p.plan, klp::plan_replacements(p.diff, p.patched, *p.symbols, k.traceable ? &*k.traceable : nullptr));
  p.timings.set("diff", progress.end());
  return ok_status();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

// The analysis of the target (decompressing its image is most of it: about a quarter of a compile) runs on a
// thread of its own while this one finds the source and compiles it: the compiles need the kbuild
// tree only, which load_build_inputs() finds without the image. The thread shares nothing while it runs (it
// builds its own LoadedKernel, libelf and libbpf objects included, handed over by the future); progress is
// printed from this thread only. The analysis is joined before anything returns, and its errors come first,
// as when it ran before everything else: a bad image is reported as such even when the compile failed too.
// Whatever stops the kernel from being livepatched at all (check_build_prerequisites: config and kbuild tree
// only) is still reported before anything is compiled.
Result<std::unique_ptr<PreparedChange>> prepare_change(const analysis::AnalyzeInputs& inputs, const std::string& source,
                                                       const fs::path& work, Progress& progress,
                                                       const std::function<void(const fs::path&)>& kbuild_known) {
  if (work.empty()) return make_error(ExitCode::environment, "cannot create a work directory in {}", fs::temp_directory_path().string());
  auto p = std::make_unique<PreparedChange>();

  progress.begin("checking the target kernel's kbuild tree and configuration");
  double analysis_thread_s = 0;
  std::future<Result<analysis::LoadedKernel>> loading = std::async(std::launch::async, [&inputs, &analysis_thread_s] {
    auto t0 = std::chrono::steady_clock::now();
    auto k = analysis::load_kernel(inputs);
    analysis_thread_s = seconds_since(t0);
    return k;
  });
  // Waits for the analysis thread (once) and checks what it found.
  auto finish_analysis = [&]() -> Status {
    auto k = loading.get();
    p->timings.set("analyse_thread", analysis_thread_s);
    if (!k) return k.error();
    p->kernel = std::move(k).value();
    return check_target(true, *p);
  };

  std::string release;
  fs::path kbuild_dir;
  Status prerequisites = ok_status();
  if (auto pre = analysis::load_build_inputs(inputs); !pre) {
    prerequisites = pre.error();
  } else if (*pre && (*pre)->kbuild) {
    prerequisites = analysis::check_build_prerequisites(**pre);
    release = (*pre)->release;
    kbuild_dir = (*pre)->kbuild->dir;
  }
  bool analysed = false;
  if (!prerequisites || kbuild_dir.empty()) {
    // Refused, or the kbuild tree is known only once the image is: wait for the analysis, whose errors (in the
    // order the inputs are read) are what the user sees.
    RR_CHECK(finish_analysis());
    RR_CHECK(prerequisites);
    analysed = true;
    release = p->kernel.release;
    kbuild_dir = p->kernel.kbuild->dir;
  }
  double analyse_s = progress.end();
  if (kbuild_known) kbuild_known(kbuild_dir);

  Status built = [&]() -> Status {
    progress.begin("finding the intel-iommu source and applying the relax transform");
    RR_ASSIGN(p->tree, find_source(source, release));
    RR_ASSIGN(std::string text, read_file_text(p->tree.iommu_c));
    RR_ASSIGN(source::Transform transform, source::relax_transform(text, p->tree.iommu_c_relative, source::RelaxScope::selected_devices));
    p->timings.set("source", progress.end());

    progress.begin("compiling original and patched objects");
    compile::CompileOptions copts;
    copts.kbuild = kbuild_dir;
    copts.work_dir = work / "compile";
    copts.command_cache_dir = default_cache_root() / "kbuild-commands";
    RR_ASSIGN(p->compiled, compile::compile_source(p->tree, transform, copts));
    p->timings.set("compile", progress.end());
    return ok_status();
  }();

  // The analysis' errors come first; its step is shown when the source and compiles went through.
  if (built) progress.begin("analysing the target kernel: symbols, image and BTF (loaded alongside the compiles)");
  auto waited = std::chrono::steady_clock::now();
  if (!analysed) {
    RR_CHECK(finish_analysis());
    if (p->kernel.release != release || p->kernel.kbuild->dir != kbuild_dir)
      return make_error(ExitCode::environment, "the target's kbuild tree changed during the build ({} for {}, then {} for {})",
                        kbuild_dir.string(), release, p->kernel.kbuild->dir.string(), p->kernel.release);
  }
  analyse_s += built ? progress.end() : seconds_since(waited);
  // The analysis on the critical path: the kbuild and config checks, and the wait for the thread.
  p->timings.set("analyse", analyse_s);
  RR_CHECK(built);

  RR_CHECK(plan_change(p->compiled.original.object, p->compiled.patched.object, *p, progress));
  return p;
}

Result<std::unique_ptr<PreparedChange>> prepare_from_objects(const analysis::AnalyzeInputs& inputs, const fs::path& original,
                                                             const fs::path& patched, Progress& progress) {
  auto p = std::make_unique<PreparedChange>();
  progress.begin("analysing the target kernel");
  RR_ASSIGN(p->kernel, analysis::load_kernel(inputs));
  RR_CHECK(check_target(false, *p));
  p->timings.set("analyse", progress.end());
  RR_CHECK(plan_change(original, patched, *p, progress));
  return p;
}

}  // namespace rr::pipeline
