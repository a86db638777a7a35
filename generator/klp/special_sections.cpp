#include "klp/special_sections.h"

#include "analysis/btf.h"

namespace rr::klp {

const SpecialSection* SpecialLayouts::find(std::string_view name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

std::optional<uint64_t> entry_count(const SpecialSection& sp, uint64_t section_size) {
  if (sp.entry_size == 0) return std::nullopt;
  uint64_t whole = section_size / sp.entry_size, tail = section_size % sp.entry_size;
  if (tail == 0) return whole;
  if (sp.last_entry_min != 0 && tail >= sp.last_entry_min) return whole + 1;
  return std::nullopt;
}

Result<SpecialLayouts> layouts_from_btf(const analysis::Btf& btf) {
  SpecialLayouts l;
  auto add_struct = [&](const char* section, const char* type, EntryKind kind = EntryKind::points_to_code, std::string pair = {}) {
    if (auto size = btf.struct_size(type))
      l.sections.push_back({section, *size, kind, std::move(pair), {}, {}, btf.struct_data_end(type).value_or(0)});
  };
  add_struct("__bug_table", "bug_entry");
  add_struct("__jump_table", "jump_entry");
  add_struct(".static_call_sites", "static_call_site");
  add_struct("__ex_table", "exception_table_entry");
  add_struct(".parainstructions", "paravirt_patch_site");
  add_struct("__dyndbg", "_ddebug", EntryKind::referenced);
  add_struct(".orc_unwind", "orc_entry", EntryKind::paired, ".orc_unwind_ip");
  if (auto size = btf.struct_size("alt_instr")) {
    SpecialSection alt{".altinstructions", *size, EntryKind::points_to_code, {}, {}, {}, btf.struct_data_end("alt_instr").value_or(0)};
    auto repl = btf.member("alt_instr", "repl_offset");
    auto len = btf.member("alt_instr", "replacementlen");
    if (!repl || !len)
      return make_error(ExitCode::bad_input, "{}: struct alt_instr has no repl_offset/replacementlen: unknown layout", btf.origin());
    alt.replacement_offset_field = repl->bit_offset / 8;
    alt.replacement_length_field = len->bit_offset / 8;
    l.sections.push_back(alt);
  }
  // Arrays of s32 self-relative offsets, and __mcount_loc's 64-bit addresses.
  for (const char* s32 : {".orc_unwind_ip", ".retpoline_sites", ".return_sites", ".call_sites", ".ibt_endbr_seal", ".smp_locks"})
    l.sections.push_back({s32, 4, EntryKind::points_to_code, {}, {}, {}, 0});
  l.sections.push_back({"__mcount_loc", 8, EntryKind::points_to_code, {}, {}, {}, 0});
  l.sections.push_back({"__patchable_function_entries", 8, EntryKind::points_to_code, {}, {}, {}, 0});
  return l;
}

}  // namespace rr::klp
