// The stages `build` and `verify` share: analysis -> source -> transform -> compile -> diff -> plan, the analysis
// of the image, symbols and BTF on a thread of its own alongside source and compile (they need only the kbuild
// tree and config, checked first). Each command adds its own steps after these (verify compares with the kernel;
// build also cuts the klp object and links the module).
#pragma once

#include "analysis/kernel.h"
#include "compile/compile.h"
#include "diff/function_diff.h"
#include "elf/object.h"
#include "klp/plan.h"
#include "pipeline/progress.h"
#include "source/source.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace rr::pipeline {

// A private work directory, removed at the end unless the user asked to keep it (--keep-tmp DIR).
class WorkDir {
 public:
  WorkDir(const std::string& keep, std::string_view purpose);
  ~WorkDir();
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

// Everything known once the change is planned. Not movable: `symbols` refers to `kernel` and `original`.
struct PreparedChange {
  analysis::LoadedKernel kernel;
  analysis::Era era = analysis::Era::unknown;
  source::SourceTree tree;
  compile::CompileResult compiled;
  obj::Object original;
  obj::Object patched;
  diff::ObjectDiff diff;
  std::unique_ptr<klp::KernelSymbols> symbols;
  klp::Plan plan;
  Json timings = Json::object();

  PreparedChange() = default;
  PreparedChange(const PreparedChange&) = delete;
  PreparedChange& operator=(const PreparedChange&) = delete;
};

inline constexpr int kPrepareSteps = 5;

// `source`: a tarball, tree or drivers/iommu directory; empty: the distribution's tarball in /usr/src.
// `kbuild_known`, when given, is called once with the target's kbuild tree, before the compiles start (`build`
// starts its module link there: klp/module.h, EarlyModuleLink).
Result<std::unique_ptr<PreparedChange>> prepare_change(const analysis::AnalyzeInputs& kernel, const std::string& source,
                                                       const std::filesystem::path& work, Progress& progress,
                                                       const std::function<void(const std::filesystem::path&)>& kbuild_known = {});

// The same change from objects compiled elsewhere (`relax-rmrr build --keep-tmp DIR` leaves them in
// DIR/compile/{original,patched}/): analysis -> diff -> plan, with no source, compiler or kbuild tree here.
// Used by `verify --objects` on a fleet's hosts, which check a centrally built livepatch against their kernel.
inline constexpr int kObjectSteps = 2;
Result<std::unique_ptr<PreparedChange>> prepare_from_objects(const analysis::AnalyzeInputs& kernel, const std::filesystem::path& original,
                                                             const std::filesystem::path& patched, Progress& progress);

}  // namespace rr::pipeline
