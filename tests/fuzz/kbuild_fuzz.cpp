// The kbuild side's text inputs: Module.symvers, the "Linux version" banner, compiler identification lines
// (compile.h, CONFIG_CC_VERSION_TEXT) and ftrace's available_filter_functions. The first byte picks the parser.
#include "analysis/kbuild.h"
#include "analysis/kernel.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text = fuzz::text(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      auto symvers = parse_module_symvers(text, "fuzz");
      if (symvers.ok()) fuzz::consume(symvers->find("iommu_alloc_resv_region"));
      break;
    }
    case 1:
      fuzz::consume(parse_banner(text));
      fuzz::consume(find_banner(fuzz::bytes(data + 1, size - 1)));
      break;
    case 2: {
      auto info = parse_compiler_text(text);
      fuzz::consume(compare_compilers(info, parse_compiler_text("gcc-12 (Debian 12.2.0-14) 12.2.0")));
      break;
    }
    default: fuzz::consume(parse_filter_functions(text)); break;
  }
  return 0;
}
