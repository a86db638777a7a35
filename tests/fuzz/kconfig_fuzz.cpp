// The kernel config parser (--config, /boot/config-R, <kbuild>/.config, /proc/config.gz once inflated):
// values as written, strings unquoted and unescaped, y/m answers.
#include "analysis/kconfig.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto config = parse_kconfig(fuzz::text(data, size), "fuzz");
  if (!config.ok()) return 0;
  for (const char* name : {"LIVEPATCH", "CONFIG_INTEL_IOMMU", "CC_VERSION_TEXT", "LTO_CLANG", "MODULE_SIG", "X"}) {
    fuzz::consume(config->value(name));
    fuzz::consume(config->string(name));
    fuzz::consume(config->builtin_or_module(name));
  }
  return 0;
}
