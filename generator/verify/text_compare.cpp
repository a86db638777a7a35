#include "verify/text_compare.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>

namespace rr::verify {

std::string_view origin_name(TextOrigin o) { return o == TextOrigin::image ? "image" : "kcore"; }

namespace {

// Does relocation target `sym` (+ addend) point into section `shndx`? Returns the offset there.
std::optional<uint64_t> site_in(const obj::Object& o, const obj::Rela& r, uint32_t shndx) {
  if (r.symbol >= o.symbols.size()) return std::nullopt;
  const obj::Symbol& s = o.symbols[r.symbol];
  if (s.shndx != shndx) return std::nullopt;
  int64_t off = static_cast<int64_t>(s.value) + r.addend;
  if (off < 0) return std::nullopt;
  return static_cast<uint64_t>(off);
}

// The runtime-patched sites a special section lists: how wide each is and why it changes.
struct SiteTable {
  const char* section;
  const char* why;
  uint64_t width;  // bytes patched at the site (refined per site below)
  bool entry_start_only;  // only relocations at entry starts point at sites (tables with several pointers)
};

constexpr SiteTable kSiteTables[] = {
    {"__mcount_loc", "ftrace site (call __fentry__ becomes a NOP or a trampoline call)", 5, false},
    {"__jump_table", "jump label (jmp vs NOP)", 5, true},
    {".altinstructions", "alternative", 0, true},
    {".parainstructions", "paravirt site", 0, true},
    {".static_call_sites", "static call", 5, true},
    {".retpoline_sites", "retpoline site (thunk call rewritten)", 5, false},
    {".return_sites", "return thunk site (jmp __x86_return_thunk rewritten)", 5, false},
    {".call_sites", "call depth accounting site", 5, false},
    {".ibt_endbr_seal", "sealed ENDBR", 4, false},
    {".smp_locks", "LOCK prefix", 1, false},
};

// Entry sizes of the tables whose entries hold more than one pointer; the first field points at the site.
uint64_t entry_size_of(const obj::Section& table, std::string_view name) {
  if (table.entry_size) return table.entry_size;
  if (name == "__jump_table") return 16;  // {s32 code, s32 target, long key}
  if (name == ".static_call_sites") return 8;  // {s32 addr, s32 key}
  if (name == ".parainstructions") return 16;  // {u8 *instr, u8 type, u8 len} padded
  if (name == ".altinstructions") {
    // {s32 instr_offset, s32 repl_offset, u16 cpuid | u32 ft_flags, u8 instrlen, u8 replacementlen}: 12 bytes up
    // to 6.2, 14 from 6.3. The relocations of one entry sit at +0 and +4, so the stride is their spacing.
    uint64_t prev = UINT64_MAX;
    for (const auto& r : table.relas) {
      if (prev != UINT64_MAX && r.offset > prev + 4) return r.offset - prev;
      prev = r.offset;
    }
    return 12;
  }
  return 0;
}

}  // namespace

std::vector<MaskedRange> legitimate_differences(const obj::Object& o, uint32_t shndx, TextOrigin origin) {
  std::vector<MaskedRange> out;
  if (shndx >= o.sections.size()) return out;
  const obj::Section& sec = o.sections[shndx];
  for (const auto& r : sec.relas) {
    size_t w = obj::rela_width(r.type);
    if (w == 0) w = 4;  // unknown types: the usual 32-bit field (never wider than what the table says)
    std::string target = r.symbol < o.symbols.size() ? o.symbols[r.symbol].name : "?";
    if (target.empty() && r.symbol < o.symbols.size() && o.symbols[r.symbol].is_section() && o.symbols[r.symbol].shndx < o.sections.size())
      target = o.sections[o.symbols[r.symbol].shndx].name;
    out.push_back({r.offset, w, fmt::format("relocation {} {}", obj::rela_type_name(r.type), target), {}});
  }
  if (origin == TextOrigin::image) {
    // Jump labels the link-time objtool NOPed (a static key off by default): the same length, exactly a NOP.
    if (const obj::Section* table = o.section("__jump_table")) {
      uint64_t stride = entry_size_of(*table, "__jump_table");
      for (const auto& r : table->relas) {
        if (stride && r.offset % stride != 0) continue;
        auto site = site_in(o, r, shndx);
        if (!site || *site >= sec.data.size()) continue;
        uint8_t op = sec.data[*site];
        if (op == 0xe9 && *site + 5 <= sec.data.size())
          out.push_back({*site, 5, "jump label (NOPed at link time)", Bytes{0x0f, 0x1f, 0x44, 0x00, 0x00}});
        else if (op == 0xeb && *site + 2 <= sec.data.size())
          out.push_back({*site, 2, "jump label (NOPed at link time)", Bytes{0x66, 0x90}});
      }
    }
  }
  if (origin == TextOrigin::kcore) {
    for (const auto& t : kSiteTables) {
      const obj::Section* table = o.section(t.section);
      if (!table) continue;
      uint64_t stride = t.entry_start_only ? entry_size_of(*table, t.section) : 0;
      for (const auto& r : table->relas) {
        if (stride && r.offset % stride != 0) continue;
        auto site = site_in(o, r, shndx);
        if (!site || *site >= sec.size) continue;
        uint64_t width = t.width;
        std::string_view name = t.section;
        if (name == ".altinstructions") {
          // instrlen is the second-to-last byte of the entry.
          ByteView d(table->data.data(), table->data.size());
          width = d.read<uint8_t>(r.offset + stride - 2).value_or(5);
        } else if (name == ".parainstructions") {
          ByteView d(table->data.data(), table->data.size());
          width = d.read<uint8_t>(r.offset + 9).value_or(5);
        } else if (name == "__jump_table" && *site < sec.data.size() && sec.data[*site] == 0xeb) {
          width = 2;  // short jmp
        } else if (name == ".retpoline_sites" && *site < sec.data.size() && sec.data[*site] == 0x2e) {
          width = 6;  // cs-prefixed thunk call (-mindirect-branch-cs-prefix)
        }
        width = std::min<uint64_t>(width ? width : 1, sec.size - *site);
        out.push_back({*site, width, t.why, {}});
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const MaskedRange& a, const MaskedRange& b) { return a.offset < b.offset; });
  return out;
}

namespace {

bool is_padding_byte(uint8_t b) {
  // INT3, one-byte NOP, and the bytes of the multi-byte NOPs the assembler and linker pad with
  // (66 66 2e 0f 1f 84 00 00 00 00 00, 0f 1f 40 00, 0f 1f 44 00 00, 0f 1f 80 00 00 00 00, ...).
  switch (b) {
    case 0xcc:
    case 0x90:
    case 0x66:
    case 0x2e:
    case 0x0f:
    case 0x1f:
    case 0x84:
    case 0x80:
    case 0x40:
    case 0x44:
    case 0x00: return true;
    default: return false;
  }
}

std::string hex(ByteView v, uint64_t from, uint64_t to) {
  std::string s;
  for (uint64_t i = from; i < to && i < v.size(); ++i) s += fmt::format("{:02x}", v.data()[i]);
  return s;
}

}  // namespace

FunctionComparison compare_function(const obj::Object& o, const obj::Symbol& fn, ByteView target, uint64_t address, uint64_t target_size,
                                    bool target_size_exact, TextOrigin origin, const SymbolResolver& resolve) {
  FunctionComparison c;
  c.name = fn.name;
  c.address = address;
  c.object_size = fn.size;
  c.target_size = target_size;
  c.target_size_exact = target_size_exact;
  if (!fn.defined_in_section() || fn.shndx >= o.sections.size()) {
    c.difference_note = "the function is not defined in the object";
    c.first_difference = 0;
    return c;
  }
  const obj::Section& sec = o.sections[fn.shndx];
  c.section = sec.name;
  if (fn.value + fn.size > sec.data.size()) {
    c.difference_note = "the function's symbol lies outside its section";
    c.first_difference = 0;
    return c;
  }
  ByteView mine(sec.data.data() + fn.value, fn.size);

  if (target_size_exact) c.size_ok = target_size == fn.size;
  else c.size_ok = target_size >= fn.size && target_size - fn.size < 16;
  if (!c.size_ok) {
    c.difference_note =
        target_size_exact
            ? fmt::format("size differs: {} bytes compiled, {} in the kernel", fn.size, target_size)
            : fmt::format("size differs: {} bytes compiled, {} between this symbol and the next in the kernel", fn.size, target_size);
  }

  // Masks relative to the function.
  std::vector<uint8_t> masked(fn.size, 0);
  std::vector<std::pair<uint64_t, uint64_t>> nopped;  // section ranges where the kernel holds the alternative
  auto nopped_site = [&](uint64_t off) {
    return std::any_of(nopped.begin(), nopped.end(), [&](const auto& n) { return off >= n.first && off < n.first + n.second; });
  };
  const std::vector<MaskedRange> masks = legitimate_differences(o, fn.shndx, origin);
  for (const auto& m : masks) {
    if (m.offset + m.length <= fn.value || m.offset >= fn.value + fn.size) continue;
    if (!m.alternative.empty()) {
      // Masked only when the kernel holds the compiled bytes or exactly the alternative; the relocation
      // field inside a NOPed jmp is then meaningless and masked with it.
      uint64_t at = m.offset - fn.value;
      if (m.offset < fn.value || at + m.length > fn.size || at + m.length > target.size()) continue;
      bool same = std::equal(target.data() + at, target.data() + at + m.length, sec.data.data() + m.offset);
      bool alt = m.alternative.size() == m.length && std::equal(m.alternative.begin(), m.alternative.end(), target.data() + at);
      // The compiled jmp: nothing to mask (a relocation field inside stays masked as a relocation); anything
      // but the exact NOP: not masked, so it shows as a difference.
      if (same || !alt) continue;
      ++c.alternatives_accepted;
      nopped.emplace_back(m.offset, m.length);
    }
    ++c.masked_ranges;
    for (uint64_t i = m.offset; i < m.offset + m.length; ++i)
      if (i >= fn.value && i < fn.value + fn.size && !masked[i - fn.value]) {
        masked[i - fn.value] = 1;
        ++c.masked_bytes;
      }
  }

  auto note_difference = [&](uint64_t at, std::string note) {
    if (c.first_difference && *c.first_difference <= at) return;
    c.first_difference = at;
    uint64_t from = at >= 4 ? at - 4 : 0, to = std::min<uint64_t>(at + 12, fn.size);
    c.expected_bytes = hex(mine, from, to);
    c.target_bytes = hex(target, from, std::min<uint64_t>(to, target.size()));
    c.difference_note = std::move(note);
  };

  uint64_t n = std::min<uint64_t>(fn.size, target.size());
  for (uint64_t i = 0; i < n; ++i) {
    if (masked[i] || mine.data()[i] == target.data()[i]) continue;
    note_difference(i, "code differs");
    break;
  }
  if (target.size() < fn.size && !c.first_difference) note_difference(target.size(), "the kernel's bytes end here");

  // Relocation values: where the kernel names the target, the linked field must hold it.
  if (resolve) {
    for (const auto& r : sec.relas) {
      if (r.offset < fn.value || r.offset >= fn.value + fn.size || r.symbol >= o.symbols.size()) continue;
      uint64_t at = r.offset - fn.value;
      size_t w = obj::rela_width(r.type);
      if (w == 0 || at + w > n) continue;
      bool unmasked = false;
      for (size_t i = 0; i < w; ++i) unmasked |= !masked[at + i];
      if (unmasked) continue;  // cannot happen: every relocation field is masked
      if (origin == TextOrigin::kcore) {
        // A field inside a runtime-patched site may hold anything: only check fields the kernel leaves alone.
        bool in_site = false;
        for (const auto& m : masks)
          if (!m.why.starts_with("relocation") && r.offset < m.offset + m.length && r.offset + w > m.offset) in_site = true;
        if (in_site) continue;
      }
      if (nopped_site(r.offset)) continue;  // a jmp the linker's objtool NOPed has no target left to check
      auto s = resolve(o.symbols[r.symbol]);
      if (!s) continue;
      uint64_t p = address + at;
      uint64_t value = *s + static_cast<uint64_t>(r.addend);
      bool pc = obj::rela_is_pc_relative(r.type);
      if (pc) value -= p;
      uint64_t got = 0;
      for (size_t i = 0; i < w; ++i) got |= static_cast<uint64_t>(target.data()[at + i]) << (8 * i);
      uint64_t mask = w >= 8 ? ~uint64_t{0} : ((uint64_t{1} << (8 * w)) - 1);
      if ((value & mask) == got) {
        ++c.relocations_checked;
        continue;
      }
      const obj::Symbol& t = o.symbols[r.symbol];
      std::string tname = t.is_section() && t.shndx < o.sections.size() ? o.sections[t.shndx].name : t.name;
      note_difference(at, fmt::format("{} refers to {}{:+d} in the compiled code, the kernel's field points elsewhere ({:#x} vs {:#x})",
                                      obj::rela_type_name(r.type), tname, r.addend, got, value & mask));
    }
  }

  // The kernel links this driver's functions into one .text, we compile one section per function: when the
  // kernel's copy of the section start is not aligned like the object's section, the padding gcc puts inside the
  // function for aligned loops (.p2align) comes out differently. Seen on Debian 6.12 for 4 of 116 functions (none
  // replaced or relied on there); say so rather than only "code differs".
  if (c.first_difference && sec.align > 1 && (address - fn.value) % sec.align != 0)
    c.difference_note += fmt::format(
        " (the kernel's copy does not sit at a {}-byte boundary as the compiled section does: "
        "loop alignment padding inside the function can differ for that reason alone)",
        sec.align);

  if (!target_size_exact && c.size_ok) {
    for (uint64_t i = fn.size; i < target_size && i < target.size(); ++i)
      if (!is_padding_byte(target.data()[i])) {
        c.size_ok = false;
        c.difference_note =
            fmt::format("the kernel's function goes on after the compiled one ends ({} bytes compiled, {:#x} at +{:#x} is not padding)",
                        fn.size, target.data()[i], i);
        break;
      }
  }
  return c;
}

Json to_json(const FunctionComparison& c) {
  Json j = Json::object();
  j.set("name", c.name);
  j.set("section", c.section);
  j.set("address", fmt::format("{:#x}", c.address));
  j.set("object_size", c.object_size);
  j.set("target_size", c.target_size);
  j.set("target_size_exact", c.target_size_exact);
  j.set("equal", c.equal());
  j.set("size_ok", c.size_ok);
  if (c.first_difference) {
    j.set("first_difference", fmt::format("{:#x}", *c.first_difference));
    j.set("compiled_bytes", c.expected_bytes);
    j.set("kernel_bytes", c.target_bytes);
  }
  if (!c.difference_note.empty()) j.set("note", c.difference_note);
  j.set("masked_ranges", c.masked_ranges);
  j.set("masked_bytes", c.masked_bytes);
  j.set("relocations_checked", c.relocations_checked);
  j.set("jump_labels_nopped", c.alternatives_accepted);
  return j;
}

}  // namespace rr::verify
