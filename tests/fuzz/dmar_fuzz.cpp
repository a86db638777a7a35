// The ACPI DMAR decoder (relax-rmrr dmar, doctor): firmware bytes, checksum required or not. A table that
// decodes is also printed (JSON, scope paths) and re-encoded, which must decode again.
#include "fuzz_util.h"
#include "host/dmar.h"

#include <cstdlib>

using namespace rr;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto strict = dmar::decode(fuzz::bytes(data, size));
  dmar::DecodeOptions lax;
  lax.require_valid_checksum = false;
  auto table = dmar::decode(fuzz::bytes(data, size), lax);
  if (strict.ok() && !table.ok()) std::abort();  // the checksum is the only difference
  if (!table.ok()) return 0;
  fuzz::consume(dmar::to_json(*table).dump());
  for (const auto& r : table->rmrrs)
    for (const auto& s : r.scopes) fuzz::consume(dmar::format_path(s));
  Bytes again = dmar::encode(*table);
  auto redecoded = dmar::decode(ByteView(again.data(), again.size()));
  if (!redecoded.ok()) std::abort();  // encode() writes a valid table, checksum included
  if (redecoded->rmrrs.size() != table->rmrrs.size() || redecoded->drhds.size() != table->drhds.size()) std::abort();
  return 0;
}
