// The whole build job as one call: a request in, the built module (or an Error) out. The steps, in the order the
// data flows (docs/design.md): analyse the target -> find and transform the source -> compile original and
// patched -> diff and plan -> verify against the kernel's code -> cut the klp object -> link, check and sign
// the module -> write it. The CLI's `build` only parses options, calls build_module() and prints the result.
#pragma once

#include "analysis/kernel.h"
#include "klp/ibt_guard.h"
#include "klp/klp_object.h"
#include "klp/module.h"
#include "pipeline/prepare.h"
#include "pipeline/progress.h"
#include "verify/verify.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace rr::pipeline {

struct BuildRequest {
  analysis::AnalyzeInputs kernel;  // the target kernel (default: the running one)
  std::string source;  // tarball, kernel tree or drivers/iommu directory; empty: the distribution's in /usr/src
  std::string module_name = "relax_rmrr";  // module and /sys/kernel/livepatch/NAME
  std::filesystem::path output;  // where the .ko goes; empty: NAME.ko in the current directory
  std::filesystem::path sign_key, sign_cert;  // both or neither
  std::string keep_work_dir;  // keep the work directory there; empty: a temporary one, removed at the end
  bool force = false;  // build even when verify refuses (loud, recorded in the module's modinfo)
};

// Everything the build found and made, for the CLI to print.
struct BuiltModule {
  std::unique_ptr<PreparedChange> change;  // analysis, source, compiles, diff and plan
  verify::Report verify;
  bool forced = false;
  std::optional<klp::KlpObject> klp;
  klp::IbtReport ibt;
  std::optional<klp::ModuleResult> module;
  std::filesystem::path output;  // the written .ko
  bool early_link = false;  // kbuild's module make ran alongside the compiles
  std::string link_fallback;  // why it did not, when it was started and fell back
  Json timings = Json::object();
};

inline constexpr int kBuildSteps = kPrepareSteps + 3;

// What verify compared when it refused the source, for the caller to show.
struct Refusal {
  verify::Report report;
  std::string kernel_release;
};

// On a verify refusal, `refused` (when given) receives what was compared.
Result<BuiltModule> build_module(const BuildRequest& request, Progress& progress, Refusal* refused = nullptr);

// build_module()'s result as `relax-rmrr build --json` prints it.
Json to_json(const BuiltModule& built, const BuildRequest& request);

}  // namespace rr::pipeline
