// The source transform's C tokenizer (the intel-iommu source from a tarball or tree): function definitions,
// the relax transform and the option transform (kernel patch), then the edits applied, made line-preserving,
// and written as a unified diff. An edit list the transform produced must always apply.
#include "fuzz_util.h"
#include "source/option_transform.h"
#include "source/transform.h"

#include <cstdlib>

using namespace rr;
using namespace rr::source;

namespace {

void check(const Result<Transform>& t, std::string_view text) {
  if (!t.ok()) return;
  auto patched = apply_edits(text, t->edits);
  if (!patched.ok()) std::abort();
  auto same_lines = apply_edits(text, preserve_line_count(t->edits));
  if (!same_lines.ok()) std::abort();
  auto diff = unified_diff(text, t->edits, t->path);
  if (!diff.ok()) std::abort();
  fuzz::consume(*diff);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::text(data, size);
  auto defs = find_function_definitions(text, kRelaxFunction, "iommu.c");
  if (defs.ok()) fuzz::consume(defs->size());
  check(relax_transform(text, "drivers/iommu/intel/iommu.c"), text);
  check(option_transform(text, "drivers/iommu/intel/iommu.c"), text);
  return 0;
}
