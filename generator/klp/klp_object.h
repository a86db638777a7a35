// Builds the livepatch object: the replacement functions cut out of the patched object, with the data they
// need, exactly their special-section entries, and every reference to the running kernel turned into
// either an ordinary undefined symbol (exported: the module loader resolves it) or a
// ".klp.sym.<obj>.<name>,<sympos>" symbol that livepatch resolves when the patch is enabled.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "elf/object.h"
#include "klp/special_sections.h"

#include <functional>
#include <string>
#include <vector>

namespace rr::klp {

// What the target kernel has under a name.
struct TargetSymbol {
  bool found = false;
  bool exported = false;  // in Module.symvers: the module loader resolves it, no klp relocation needed
  uint64_t sympos = 0;  // livepatch's position among same-name symbols (0: unique)
  std::string problem;  // set when found but unusable (e.g. ambiguous), refuses the build
};
using TargetLookup = std::function<TargetSymbol(const std::string& name)>;

struct ReplacedFunction {
  std::string name;  // the kernel's function (klp_func.old_name)
  uint64_t sympos = 0;  // klp_func.old_sympos
  std::string new_symbol;  // the global symbol of the replacement in the klp object
};

struct KlpObject {
  obj::Object object;
  std::vector<ReplacedFunction> replaced;
  std::vector<std::string> carried_functions;  // unchanged helpers the target has inlined: copied along
  std::vector<std::string> klp_symbols;  // .klp.sym.* names
  std::vector<std::string> exported_symbols;
  std::vector<std::string> glue_symbols;  // of KlpObjectRequest::glue_symbols, those the code refers to
  std::vector<std::pair<std::string, size_t>> special_entries;  // section, entries kept
};

struct KlpObjectRequest {
  std::vector<std::string> functions;  // to replace
  std::string target_object = "vmlinux";
  std::string new_symbol_prefix = "relax_rmrr_new_";
  // Names the replacement code calls that the module's own glue defines (templates/klp_glue.c.in): left as
  // plain undefined symbols, which the module link resolves; never looked up in the kernel.
  std::vector<std::string> glue_symbols;
};

Result<KlpObject> build_klp_object(const obj::Object& patched, const KlpObjectRequest& request, const TargetLookup& target,
                                   const SpecialLayouts& layouts);

std::string klp_symbol_name(const std::string& object, const std::string& name, uint64_t sympos);

Json to_json(const KlpObject& k);

}  // namespace rr::klp
