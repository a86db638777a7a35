// The kallsyms tables in a kernel image (relax-rmrr kallsyms IMAGE, symbols when no dump is given): the input is
// the image's .rodata, searched for a token table and index, names stream, markers and an address table of every
// layout. A decoding that passes is queried and printed; what the decoder promises is checked: addresses
// sorted, no more symbols than entries, _text or _stext at .text.
#include "analysis/image_kallsyms.h"
#include "fuzz_util.h"

#include <cstdlib>

using namespace rr;
using namespace rr::analysis;

namespace {
constexpr uint64_t kRodataAddress = 0xffffffff82000000ull;
constexpr uint64_t kTextAddress = 0xffffffff81000000ull;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto k = decode_kallsyms_tables(fuzz::bytes(data, size), kRodataAddress, kTextAddress, "fuzz");
  if (!k.ok()) {
    fuzz::consume(k.error().message);
    return 0;
  }
  const auto& syms = k->symbols.symbols();
  if (syms.size() > k->table_entries || k->tables.empty()) std::abort();
  bool text = false;
  for (size_t i = 0; i < syms.size(); ++i) {
    if (i && syms[i].address < syms[i - 1].address) std::abort();
    if ((syms[i].name == "_text" || syms[i].name == "_stext") && syms[i].address == kTextAddress) text = true;
  }
  if (!text) std::abort();
  fuzz::consume(k->symbols.first("_text"));
  fuzz::consume(to_json(*k, false).dump());
  return 0;
}
