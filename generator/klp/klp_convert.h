// The step after kbuild links the module: references to ".klp.sym.*" symbols become livepatch relocations.
// Each such symbol is marked SHN_LIVEPATCH and every relocation against it moves from .rela<sec> into
// .klp.rela.<obj>.<sec> (SHF_RELA_LIVEPATCH), which livepatch applies itself. Only sections and symbol
// flags change: the symbol table keeps its order, so a signature taken afterwards stays valid.
#pragma once

#include "common/result.h"

#include <filesystem>
#include <string>

namespace rr::klp {

struct ConversionReport {
  size_t klp_symbols = 0;
  size_t klp_relocations = 0;
  size_t klp_sections = 0;
};

Result<ConversionReport> convert_to_klp_module(const std::filesystem::path& ko, const std::string& target_object);

}  // namespace rr::klp
