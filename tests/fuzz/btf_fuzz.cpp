// BTF (--btf, /sys/kernel/btf/vmlinux, an image's .BTF): libbpf validates the bytes; relax-rmrr's own walks run
// over whatever it accepts: the analysis facts (dev_iommu, require_direct, special-section entry sizes,
// function prototypes), member lookups through anonymous members, and the klp special-section layouts.
#include "analysis/btf.h"
#include "fuzz_util.h"
#include "klp/special_sections.h"

#include <bpf/btf.h>

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto btf = Btf::from_bytes(fuzz::bytes(data, size), "fuzz");
  if (!btf.ok()) return 0;
  fuzz::consume(collect_btf_facts(*btf, {"intel_iommu_attach_device", "intel_iommu_get_resv_regions", "device_rmrr_is_relaxable"}));
  auto layouts = klp::layouts_from_btf(*btf);
  if (layouts.ok()) fuzz::consume(layouts->sections.size());
  // Every named struct/union/func the file has (up to a bound), asked for the way the analysis asks.
  uint32_t count = btf->type_count();
  for (uint32_t id = 1; id <= count && id <= 256; ++id) {
    const struct btf_type* t = btf__type_by_id(btf->raw(), id);
    if (!t) continue;
    const char* name = btf__name_by_offset(btf->raw(), t->name_off);
    if (!name || !*name) continue;
    if (btf_is_struct(t) || btf_is_union(t)) {
      fuzz::consume(btf->struct_size(name));
      fuzz::consume(btf->member(name, "require_direct"));
      if (btf_vlen(t) > 0) {
        const char* first = btf__name_by_offset(btf->raw(), btf_members(t)[0].name_off);
        if (first) fuzz::consume(btf->member(name, first));
      }
    } else if (btf_is_func(t)) {
      fuzz::consume(btf->function(name));
    }
  }
  return 0;
}
