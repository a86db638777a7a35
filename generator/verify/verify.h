// The verify step: prove that the source we build from is the source of the target kernel before a module is
// built or loaded. Two checks, both against the target itself:
//  1. code: every function the livepatch replaces, and every function of this driver the replacement relies
//     on (callees and data users it reaches through klp relocations, directly or through code it carries),
//     compiled from the ORIGINAL source, equals the kernel's copy modulo legitimate differences
//     (text_compare.h); sizes must match;
//  2. layouts: the structs those functions touch have the target's BTF sizes and member offsets as compiled.
// It sits between the plan (which names the functions) and the klp object (the first thing that is written).
#pragma once

#include "analysis/kernel.h"
#include "common/json.h"
#include "common/result.h"
#include "compile/compile.h"
#include "elf/object.h"
#include "klp/plan.h"
#include "verify/layout_probe.h"
#include "verify/text_compare.h"

#include <optional>
#include <string>
#include <vector>

namespace rr::verify {

enum class TextPreference { automatic, image, kcore };  // automatic: kcore for the running kernel, else the image

struct VerifyInputs {
  const analysis::LoadedKernel* kernel = nullptr;
  const obj::Object* original = nullptr;  // compiled from the ORIGINAL source like the built-in driver
  const obj::Object* patched = nullptr;  // optional: to find what the replacement relies on
  const klp::KernelSymbols* symbols = nullptr;
  std::vector<std::string> functions;  // the kernel functions the livepatch replaces
  std::optional<ProbeCompiler> probe;  // absent: no layout check (noted)
  TextPreference text = TextPreference::automatic;
};

struct CheckedFunction {
  FunctionComparison comparison;
  std::string role;  // "replaced", "part of a replaced function", "relied on by the replacement"
};

struct Report {
  TextOrigin origin = TextOrigin::image;
  std::string text_from;
  int64_t slide = 0;
  std::vector<CheckedFunction> functions;
  std::vector<std::string> not_comparable;  // functions the kernel has no copy of (inlined), with why
  std::vector<StructLayout> layouts;
  std::vector<std::string> notes;
  bool layouts_checked = false;
  bool ok() const;
  // The first problem as one sentence naming the function/struct, the offset, and what it likely means.
  std::string first_problem() const;
};

// Error only when the check cannot run (no symbols/image, kcore forbidden when asked for, probe failure);
// a mismatch is a Report with ok() false.
Result<Report> verify(const VerifyInputs& inputs);

// The inputs as build and verify have them after the plan: the replaced functions of `plan`, the layout probe
// run with the command kbuild recorded for the original object (in `kbuild`), in `work_dir`.
VerifyInputs inputs_after_plan(const analysis::LoadedKernel& kernel, const obj::Object& original, const obj::Object& patched,
                               const klp::KernelSymbols& symbols, const klp::Plan& plan, const compile::CompiledObject& compiled_original,
                               const std::filesystem::path& kbuild, const std::filesystem::path& work_dir);

// The refusal for a report that is not ok (ExitCode::refused).
Error refusal(const Report& report);

// What `build` runs: verify, then refuse on a mismatch unless `force`, which prints a loud warning on stderr
// and returns true (the module records it in modinfo).
Result<bool> gate_build(const VerifyInputs& inputs, bool force, Report* report_out = nullptr);

// Functions the replacement relies on: functions of `original` reached from `replaced` in `patched` through
// relocations, following code the kernel does not have (carried), stopping at functions the kernel has.
std::vector<std::string> relied_on_functions(const obj::Object& patched, const obj::Object& original,
                                             const std::vector<std::string>& replaced, const klp::KernelSymbols& symbols);

Json to_json(const Report& report);

}  // namespace rr::verify
