#include "cli/pipeline.h"

#include "common/file.h"
#include "source/transform.h"

#include <cstdlib>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rr::cli {

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

void add_source_option(CLI::App* app, std::string& source) {
  app->add_option("--source", source,
                  "Kernel source: a linux-source tarball, a kernel tree, or a directory with drivers/iommu "
                  "(default: the distribution's tarball in /usr/src)");
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

}  // namespace

Result<std::unique_ptr<PreparedChange>> prepare_change(const KernelOptions& kernel_options, const std::string& source,
                                                       const fs::path& work, Progress& progress) {
  if (work.empty()) return make_error(ExitCode::environment, "cannot create a work directory in {}", fs::temp_directory_path().string());
  auto p = std::make_unique<PreparedChange>();

  progress.begin("analysing the target kernel");
  RR_ASSIGN(p->kernel, analysis::load_kernel(to_analyze_inputs(kernel_options)));
  const auto& k = p->kernel;
  for (const auto& m : k.missing)
    if (m.blocking) {
      Error e = make_error(ExitCode::missing, "cannot work on {}: {} is missing", k.release, m.what);
      e.hint = m.how;
      return e;
    }
  if (!k.symbols || !k.btf || !k.kbuild)
    return make_error(ExitCode::missing, "the target's symbols, BTF and kbuild tree are all needed (see relax-rmrr analyze)");
  std::string era_reason;
  analysis::BtfFacts btf_facts = analysis::collect_btf_facts(*k.btf, {});
  p->era = analysis::decide_era(&*k.symbols, &btf_facts, era_reason);
  if (p->era == analysis::Era::unknown) {
    Error e = make_error(ExitCode::refused, "cannot tell how this kernel enforces RMRRs: {}", era_reason);
    e.hint = "relax-rmrr analyze shows what was found; a kernel without intel_iommu_attach_device and without "
             "dev_iommu.require_direct is not one relax-rmrr knows";
    return e;
  }
  p->timings.set("analyse", progress.end());

  progress.begin("finding the intel-iommu source and applying the relax transform");
  RR_ASSIGN(p->tree, find_source(source, k.release));
  RR_ASSIGN(std::string text, read_file_text(p->tree.iommu_c));
  RR_ASSIGN(source::Transform transform, source::relax_transform(text, p->tree.iommu_c_relative));
  p->timings.set("source", progress.end());

  progress.begin("compiling original and patched objects");
  build::CompileOptions copts;
  copts.kbuild = k.kbuild->dir;
  copts.work_dir = work / "compile";
  RR_ASSIGN(p->compiled, build::compile_source(p->tree, transform, copts));
  p->timings.set("compile", progress.end());

  progress.begin("finding the functions that really changed");
  RR_ASSIGN(p->original, obj::load(p->compiled.original.object));
  RR_ASSIGN(p->patched, obj::load(p->compiled.patched.object));
  RR_ASSIGN(p->diff, diff::compare(p->original, p->patched));
  p->symbols = std::make_unique<klp::KernelSymbols>(*k.symbols, k.symvers ? &*k.symvers : nullptr, p->original);
  RR_ASSIGN(p->plan, klp::plan_replacements(p->diff, p->patched, *p->symbols, k.traceable ? &*k.traceable : nullptr));
  p->timings.set("diff", progress.end());
  return p;
}

}  // namespace rr::cli
