// The kallsyms reader (/proc/kallsyms or a dump given with --kallsyms): lines of text, modules in brackets. A
// table that parses is queried the way the analysis does: lookups, sympos, gcc's variants.
#include "analysis/symbols.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto table = parse_kallsyms(fuzz::text(data, size), "fuzz");
  if (!table.ok()) return 0;
  SymbolTable copy = *table;  // the copy rebuilds the index
  size_t n = 0;
  for (const auto& s : copy.symbols()) {
    if (++n > 64) break;
    fuzz::consume(copy.find(s.name));
    fuzz::consume(copy.sympos(s));
    fuzz::consume(copy.variants(base_name(s.name)));
    fuzz::consume(s.is_function() || s.is_global());
  }
  for (const char* name : {"_text", "intel_iommu_attach_device", "intel_iommu_get_resv_regions"}) fuzz::consume(copy.find_vmlinux(name));
  return 0;
}
