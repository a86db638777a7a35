// Step 5 of the pipeline: from "these functions changed in our compile" to "these functions of the running
// kernel get replaced", checked against the target's symbols. A changed function the target does not have
// (inlined there) is replaced through its callers; a replacement that cannot be found is refused.
#pragma once

#include "analysis/kbuild.h"
#include "analysis/symbols.h"
#include "common/json.h"
#include "diff/function_diff.h"
#include "elf/object.h"
#include "klp/klp_object.h"

#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace rr::klp {

// Resolves names against the target kernel: presence, sympos, exported or not. Same-name static
// symbols are told apart by locality: the one that lies among this object's other functions in the kernel.
class KernelSymbols {
 public:
  KernelSymbols(const analysis::SymbolTable& symbols, const analysis::ModuleSymvers* symvers, const obj::Object& original);
  TargetSymbol lookup(const std::string& name) const;
  bool is_function(const std::string& name) const;
  std::optional<std::pair<uint64_t, uint64_t>> object_range() const { return range_; }

 private:
  const analysis::SymbolTable& symbols_;
  const analysis::ModuleSymvers* symvers_;
  std::optional<std::pair<uint64_t, uint64_t>> range_;  // addresses of this object's code in the kernel
};

struct PlannedFunction {
  std::string name;
  std::string why;  // "changed", or "calls X, which the kernel inlined"
  uint64_t sympos = 0;
};

struct Plan {
  std::vector<PlannedFunction> replace;
  std::vector<std::string> notes;
};

// `traceable`: the kernel's available_filter_functions when known (a running kernel).
Result<Plan> plan_replacements(const diff::ObjectDiff& diff, const obj::Object& patched, const KernelSymbols& kernel,
                               const std::unordered_set<std::string>* traceable);

Json to_json(const Plan& plan);

}  // namespace rr::klp
