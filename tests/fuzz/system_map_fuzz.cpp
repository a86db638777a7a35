// The System.map reader (--system-map, /boot/System.map-R): nm lines without modules, and Debian's one-line
// placeholder recognised as such.
#include "analysis/symbols.h"
#include "fuzz_util.h"

using namespace rr;
using namespace rr::analysis;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = fuzz::text(data, size);
  fuzz::consume(is_dummy_system_map(text));
  auto table = parse_system_map(text, "fuzz");
  if (!table.ok()) return 0;
  size_t n = 0;
  for (const auto& s : table->symbols()) {
    if (++n > 64) break;
    fuzz::consume(table->sympos(s));
    fuzz::consume(split_variant(s.name).suffix);
  }
  fuzz::consume(table->first("_text"));
  return 0;
}
