#include "klp/klp_object.h"

#include <elf.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <variant>

namespace rr::klp {

std::string klp_symbol_name(const std::string& object, const std::string& name, uint64_t sympos) {
  return fmt::format(".klp.sym.{}.{},{}", object, name, sympos);
}

namespace {

// Where a relocation of carried code must point in the klp object.
struct InCarried {};  // into a section the object carries
struct InEntry {
  uint32_t section;
  uint64_t entry;
};  // into a kept entry of a `referenced` special section
struct InKernel {
  std::string name;
  int64_t addend;
};  // a symbol of the running kernel
struct Refused {
  std::string why;
};
using Decision = std::variant<InCarried, InEntry, InKernel, Refused>;

bool is_cold_piece(const std::string& n) { return n.size() > 5 && n.ends_with(".cold"); }

// Sections whose pointers into carried code need no entries of their own in the klp object: callers and
// tables in the kernel keep pointing at the old function, which livepatch redirects.
bool harmless_referrer(const std::string& n) {
  for (const char* p : {".text", ".data", ".rodata", ".bss", ".init", ".exit", ".debug", ".discard", ".note", ".comment", ".pci_fixup",
                        "___ksymtab", "__ksymtab", "__param", ".initcall", ".con_initcall", ".export_symbol", ".altinstr_aux", ".rela"})
    if (n.starts_with(p)) return true;
  return false;
}

class Builder {
 public:
  Builder(const obj::Object& in, const KlpObjectRequest& req, const TargetLookup& target, const SpecialLayouts& layouts)
      : in_(in), req_(req), target_(target), layouts_(layouts), included_(in.sections.size(), false) {}

  Result<KlpObject> run() {
    RR_CHECK(seed());
    // Code pulls in data and helpers; carried code pulls in special entries, whose relocations may pull in more.
    for (int round = 0; round < 64; ++round) {
      RR_CHECK(drain_queue());
      size_t before = count_kept();
      RR_CHECK(select_special_entries());
      if (queue_.empty() && count_kept() == before) break;
    }
    RR_CHECK(check_unknown_tables());
    return emit();
  }

 private:
  Status seed() {
    for (const auto& name : req_.functions) {
      const obj::Symbol* f = in_.symbol(name);
      if (!f || !f->is_function() || !f->defined_in_section())
        return make_error(ExitCode::bad_input, "{}: no function {} to carry into the livepatch", in_.path.string(), name);
      const obj::Section& sec = in_.sections[f->shndx];
      if (sec.name.starts_with(".init") || sec.name.starts_with(".exit"))
        return make_error(ExitCode::refused, "{} is __init/__exit code: it ran at boot and cannot be live-patched", name);
      include(f->shndx);
      if (const obj::Symbol* cold = in_.symbol(name + ".cold"); cold && cold->defined_in_section()) include(cold->shndx);
    }
    return ok_status();
  }

  void include(uint32_t shndx) {
    if (included_[shndx]) return;
    included_[shndx] = true;
    queue_.push_back(shndx);
  }

  Status drain_queue() {
    while (!queue_.empty()) {
      uint32_t s = queue_.front();
      queue_.pop_front();
      if (in_.sections[s].name == ".altinstr_replacement") continue;  // its relocations follow the kept entries
      for (const auto& r : in_.sections[s].relas) RR_CHECK(act(decide(r), in_.sections[s], r));
    }
    return ok_status();
  }

  Status act(const Decision& d, const obj::Section& from, const obj::Rela& r) {
    if (auto* refused = std::get_if<Refused>(&d))
      return make_error(ExitCode::refused, "cannot carry {}+{:#x}: {}", from.name, r.offset, refused->why);
    if (std::holds_alternative<InCarried>(d)) include(in_.symbols[r.symbol].shndx);
    if (auto* e = std::get_if<InEntry>(&d)) kept_[e->section].insert(e->entry);
    return ok_status();
  }

  static int64_t pc_bias(const obj::Rela& r) { return obj::rela_is_pc_relative(r.type) ? 4 : 0; }

  Decision decide(const obj::Rela& r) const {
    const obj::Symbol& sym = in_.symbols[r.symbol];
    if (sym.is_undefined()) return InKernel{sym.name, r.addend};
    if (!sym.defined_in_section())
      return Refused{fmt::format("relocation against special symbol {} (section index {:#x})", sym.name, sym.shndx)};
    const obj::Section& t = in_.sections[sym.shndx];
    int64_t offset = r.addend + (sym.is_section() ? 0 : static_cast<int64_t>(sym.value));
    uint64_t pos = static_cast<uint64_t>(std::max<int64_t>(0, offset + pc_bias(r)));
    if (const SpecialSection* sp = layouts_.find(t.name)) {
      if (sp->kind != EntryKind::referenced) return Refused{fmt::format("code refers into the table {}", t.name)};
      return InEntry{t.index, static_cast<uint64_t>(std::max<int64_t>(0, offset)) / sp->entry_size};
    }
    if (included_[t.index] || t.name == ".altinstr_replacement") return InCarried{};
    auto covering = [&]() -> const obj::Symbol* {
      if (!sym.is_section()) return &sym;
      if (const obj::Symbol* s = in_.symbol_at(t.index, pos)) return s;
      return in_.symbol_at(t.index, static_cast<uint64_t>(std::max<int64_t>(0, offset)));
    };
    auto kernel_ref = [&](const obj::Symbol& s) {
      return InKernel{s.name, sym.is_section() ? r.addend - static_cast<int64_t>(s.value) : r.addend};
    };
    if (t.is_text()) {
      const obj::Symbol* f = covering();
      if (!f) return Refused{fmt::format("points into {}+{:#x}, which no function symbol covers", t.name, pos)};
      if (is_cold_piece(f->name) || std::count(req_.functions.begin(), req_.functions.end(), f->name)) return InCarried{};
      TargetSymbol k = target_(f->name);
      if (!k.problem.empty()) return Refused{k.problem};
      if (k.found) return kernel_ref(*f);
      return InCarried{};  // the target has no such function (inlined there): carry our copy
    }
    if (t.is_strings()) return InCarried{};
    if (!t.is_writable()) {
      const obj::Symbol* o = covering();
      if (o && o->bind != STB_LOCAL) return kernel_ref(*o);  // a const global of the kernel (e.g. an ops table)
      return InCarried{};  // literals, __func__, local constant tables
    }
    if (t.name.starts_with(".data.once")) return InCarried{};  // WARN_ONCE flags: the module warns once of its own
    const obj::Symbol* o = covering();
    if (!o) return Refused{fmt::format("points into anonymous writable data {}+{:#x}", t.name, offset)};
    return kernel_ref(*o);  // the kernel's state: its own variable, never a copy
  }

  size_t count_kept() const {
    size_t n = 0;
    for (const auto& [s, e] : kept_) n += e.size();
    return n;
  }

  // The target section of the relocation at `offset` in `s`, or nullopt.
  std::optional<uint32_t> anchor_section(const obj::Section& s, uint64_t offset) const {
    auto it = std::lower_bound(s.relas.begin(), s.relas.end(), offset, [](const obj::Rela& r, uint64_t o) { return r.offset < o; });
    if (it == s.relas.end() || it->offset != offset) return std::nullopt;
    const obj::Symbol& sym = in_.symbols[it->symbol];
    if (!sym.defined_in_section()) return std::nullopt;
    return sym.shndx;
  }

  Status select_special_entries() {
    for (const auto& sp : layouts_.sections) {
      const obj::Section* s = in_.section(sp.name);
      if (!s || sp.kind != EntryKind::points_to_code) continue;
      if (!entry_count(sp, s->size))
        return make_error(ExitCode::refused,
                          "{} is {} bytes, not a whole number of {}-byte entries: the kernel's BTF and this object disagree", sp.name,
                          s->size, sp.entry_size);
      for (uint64_t e = 0; e * sp.entry_size < s->size; ++e) {
        auto a = anchor_section(*s, e * sp.entry_size);
        if (a && included_[*a] && !kept_[s->index].count(e)) {
          kept_[s->index].insert(e);
          for (const auto& r : entry_relas(*s, e, sp.entry_size)) RR_CHECK(act(decide(*r), *s, *r));
        }
      }
    }
    for (const auto& sp : layouts_.sections) {
      const obj::Section* s = in_.section(sp.name);
      if (!s) continue;
      if (sp.kind == EntryKind::paired) {
        const obj::Section* pair = in_.section(sp.pair);
        const SpecialSection* pair_layout = layouts_.find(sp.pair);
        if (!pair || !pair_layout || !entry_count(sp, s->size) || entry_count(sp, s->size) != entry_count(*pair_layout, pair->size))
          return make_error(ExitCode::refused, "{} and {} do not pair up entry for entry", sp.name, sp.pair);
        kept_[s->index] = kept_[pair->index];
      } else if (sp.kind == EntryKind::referenced) {
        if (!entry_count(sp, s->size))
          return make_error(ExitCode::refused, "{} is not a whole number of {}-byte entries", sp.name, sp.entry_size);
        for (uint64_t e : std::set<uint64_t>(kept_[s->index]))
          for (const auto& r : entry_relas(*s, e, sp.entry_size)) RR_CHECK(act(decide(*r), *s, *r));
      }
    }
    // Replacement instructions: only the bytes the kept .altinstructions entries use.
    if (const SpecialSection* alt = layouts_.find(".altinstructions")) {
      const obj::Section* s = in_.section(".altinstructions");
      const obj::Section* repl = in_.section(".altinstr_replacement");
      if (s && repl && kept_.count(s->index)) {
        include(repl->index);
        alt_ranges_.clear();
        for (uint64_t e : kept_[s->index]) {
          uint64_t base = e * alt->entry_size;
          const obj::Rela* off = nullptr;
          for (const auto& r : s->relas)
            if (r.offset == base + *alt->replacement_offset_field) off = &r;
          if (!off) return make_error(ExitCode::refused, ".altinstructions entry {} has no replacement relocation", e);
          uint64_t start = static_cast<uint64_t>(off->addend + static_cast<int64_t>(in_.symbols[off->symbol].value));
          uint8_t len = s->data.size() > base + *alt->replacement_length_field ? s->data[base + *alt->replacement_length_field] : 0;
          alt_ranges_.emplace_back(start, start + len);
        }
        for (const auto& r : repl->relas)
          if (in_alt_range(r.offset)) RR_CHECK(act(decide(r), *repl, r));
      }
    }
    return ok_status();
  }

  bool in_alt_range(uint64_t offset) const {
    for (auto [b, e] : alt_ranges_)
      if (offset >= b && offset < e) return true;
    return false;
  }

  std::vector<const obj::Rela*> entry_relas(const obj::Section& s, uint64_t entry, uint64_t size) const {
    std::vector<const obj::Rela*> out;
    for (const auto& r : s.relas)
      if (r.offset >= entry * size && r.offset < (entry + 1) * size) out.push_back(&r);
    return out;
  }

  Status check_unknown_tables() const {
    for (const auto& s : in_.sections) {
      if (s.relas.empty() || included_[s.index] || layouts_.find(s.name) || harmless_referrer(s.name)) continue;
      for (const auto& r : s.relas) {
        const obj::Symbol& sym = in_.symbols[r.symbol];
        if (sym.defined_in_section() && included_[sym.shndx] && in_.sections[sym.shndx].is_text())
          return make_error(ExitCode::refused,
                            "the table {} points into carried code, and relax-rmrr does not know its entry layout: "
                            "refusing to build a module that might lose its entries",
                            s.name);
      }
    }
    return ok_status();
  }

  Result<KlpObject> emit() {
    KlpObject k;
    obj::Object& out = k.object;
    out.path = "klp object";
    out.sections.emplace_back();
    out.symbols.emplace_back();
    std::map<uint32_t, uint32_t> new_section;  // old index -> new index
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> new_entry_offset;  // (old special, entry) -> new offset
    auto add_section = [&](const obj::Section& s) -> obj::Section& {
      obj::Section n;
      n.index = static_cast<uint32_t>(out.sections.size());
      n.name = s.name;
      n.type = s.type;
      n.flags = s.flags;
      n.align = s.align;
      n.entry_size = s.entry_size;
      new_section[s.index] = n.index;
      out.sections.push_back(std::move(n));
      return out.sections.back();
    };
    for (const auto& s : in_.sections) {
      if (!included_[s.index]) continue;
      obj::Section& n = add_section(s);
      n.data = s.data;
      n.size = s.size;
    }
    for (const auto& sp : layouts_.sections) {
      const obj::Section* s = in_.section(sp.name);
      if (!s || !kept_.count(s->index) || kept_[s->index].empty()) continue;
      obj::Section& n = add_section(*s);
      for (uint64_t e : kept_[s->index]) {
        new_entry_offset[{s->index, e}] = n.data.size();
        // A short last entry (entry_count) gets its trailing padding back: kept entries stay entry_size apart.
        uint64_t end = std::min<uint64_t>((e + 1) * sp.entry_size, s->data.size());
        n.data.insert(n.data.end(), s->data.begin() + static_cast<long>(e * sp.entry_size), s->data.begin() + static_cast<long>(end));
        n.data.resize(n.data.size() + ((e + 1) * sp.entry_size - end), 0);
      }
      n.size = n.data.size();
      k.special_entries.emplace_back(sp.name, kept_[s->index].size());
    }
    // Section symbols, then the carried functions' and objects' own symbols (all local to the module).
    std::map<uint32_t, uint32_t> new_symbol;
    for (auto& n : out.sections) {
      if (n.index == 0) continue;
      obj::Symbol sym;
      sym.index = static_cast<uint32_t>(out.symbols.size());
      sym.type = STT_SECTION;
      sym.bind = STB_LOCAL;
      sym.shndx = static_cast<uint16_t>(n.index);
      n.section_symbol = sym.index;
      out.symbols.push_back(sym);
    }
    for (const auto& s : in_.symbols) {
      if (s.is_section() || !s.defined_in_section() || !new_section.count(s.shndx)) continue;
      if (s.type != STT_FUNC && s.type != STT_OBJECT) continue;
      obj::Symbol c = s;
      c.bind = STB_LOCAL;
      c.shndx = static_cast<uint16_t>(new_section[s.shndx]);
      if (const SpecialSection* sp = layouts_.find(in_.sections[s.shndx].name)) {
        uint64_t e = s.value / sp->entry_size;
        auto it = new_entry_offset.find({s.shndx, e});
        if (it == new_entry_offset.end()) continue;  // an entry not kept
        c.value = it->second + (s.value - e * sp->entry_size);
      }
      c.index = static_cast<uint32_t>(out.symbols.size());
      new_symbol[s.index] = c.index;
      out.symbols.push_back(c);
      if (s.type == STT_FUNC && std::count(req_.functions.begin(), req_.functions.end(), s.name)) {
        obj::Symbol alias = c;
        alias.bind = STB_GLOBAL;
        alias.name = fmt::format("{}{}", req_.new_symbol_prefix, k.replaced.size());
        alias.index = static_cast<uint32_t>(out.symbols.size());
        out.symbols.push_back(alias);
        TargetSymbol t = target_(s.name);
        if (!t.found) return make_error(ExitCode::refused, "the target kernel has no function {} to replace", s.name);
        if (!t.problem.empty()) return make_error(ExitCode::refused, "{}: {}", s.name, t.problem);
        k.replaced.push_back({s.name, t.sympos, alias.name});
      }
    }
    for (const auto& s : in_.sections)
      if (included_[s.index] && s.is_text() && s.name != ".altinstr_replacement")
        for (uint32_t si : s.symbols)
          if (in_.symbols[si].is_function() && !is_cold_piece(in_.symbols[si].name) &&
              !std::count(req_.functions.begin(), req_.functions.end(), in_.symbols[si].name))
            k.carried_functions.push_back(in_.symbols[si].name);

    std::map<std::string, uint32_t> external;
    auto undefined_symbol = [&](const std::string& name) {
      obj::Symbol u;
      u.index = static_cast<uint32_t>(out.symbols.size());
      u.name = name;
      u.bind = STB_GLOBAL;
      u.type = STT_NOTYPE;
      u.shndx = SHN_UNDEF;
      out.symbols.push_back(u);
      external[name] = u.index;
      return u.index;
    };
    auto external_symbol = [&](const std::string& kernel_name) -> Result<uint32_t> {
      if (std::count(req_.glue_symbols.begin(), req_.glue_symbols.end(), kernel_name)) {
        if (auto it = external.find(kernel_name); it != external.end()) return it->second;
        k.glue_symbols.push_back(kernel_name);
        return undefined_symbol(kernel_name);
      }
      TargetSymbol t = target_(kernel_name);
      if (!t.problem.empty()) return make_error(ExitCode::refused, "{}: {}", kernel_name, t.problem);
      if (!t.found)
        return make_error(ExitCode::refused, "the replacement code needs {}, which the target kernel does not have", kernel_name);
      std::string name = t.exported ? kernel_name : klp_symbol_name(req_.target_object, kernel_name, t.sympos);
      if (auto it = external.find(name); it != external.end()) return it->second;
      (t.exported ? k.exported_symbols : k.klp_symbols).push_back(name);
      return undefined_symbol(name);
    };

    auto translate = [&](const obj::Section& from, const obj::Rela& r, uint64_t new_offset) -> Result<obj::Rela> {
      Decision d = decide(r);
      obj::Rela n{new_offset, r.type, 0, r.addend};
      const obj::Symbol& sym = in_.symbols[r.symbol];
      if (auto* refused = std::get_if<Refused>(&d))
        return make_error(ExitCode::refused, "cannot carry {}+{:#x}: {}", from.name, r.offset, refused->why);
      if (std::holds_alternative<InCarried>(d)) {
        if (!new_section.count(sym.shndx))
          return make_error(ExitCode::failure, "internal: {} was not carried", in_.sections[sym.shndx].name);
        auto it = new_symbol.find(sym.index);
        n.symbol = it != new_symbol.end() ? it->second : out.sections[new_section[sym.shndx]].section_symbol;
      } else if (auto* e = std::get_if<InEntry>(&d)) {
        const SpecialSection* sp = layouts_.find(in_.sections[e->section].name);
        auto it = new_entry_offset.find({e->section, e->entry});
        if (it == new_entry_offset.end()) return make_error(ExitCode::failure, "internal: entry {} of {} was not kept", e->entry, sp->name);
        int64_t old_total = r.addend + (sym.is_section() ? 0 : static_cast<int64_t>(sym.value));
        n.symbol = out.sections[new_section[e->section]].section_symbol;
        n.addend = old_total - static_cast<int64_t>(e->entry * sp->entry_size) + static_cast<int64_t>(it->second);
      } else {
        const auto& kref = std::get<InKernel>(d);
        RR_ASSIGN(n.symbol, external_symbol(kref.name));
        n.addend = kref.addend;
      }
      return n;
    };

    for (const auto& s : in_.sections) {
      if (!included_[s.index]) continue;
      obj::Section& n = out.sections[new_section[s.index]];
      bool alt = s.name == ".altinstr_replacement";
      for (const auto& r : s.relas) {
        if (alt && !in_alt_range(r.offset)) continue;
        RR_ASSIGN(obj::Rela t, translate(s, r, r.offset));
        n.relas.push_back(t);
      }
    }
    for (const auto& sp : layouts_.sections) {
      const obj::Section* s = in_.section(sp.name);
      if (!s || !new_section.count(s->index)) continue;
      obj::Section& n = out.sections[new_section[s->index]];
      for (uint64_t e : kept_[s->index])
        for (const auto* r : entry_relas(*s, e, sp.entry_size)) {
          RR_ASSIGN(obj::Rela t, translate(*s, *r, new_entry_offset[{s->index, e}] + (r->offset - e * sp.entry_size)));
          n.relas.push_back(t);
        }
    }
    for (auto& n : out.sections) {
      if (n.index == 0) continue;
      for (const auto& s : out.symbols)
        if ((s.type == STT_FUNC || s.type == STT_OBJECT) && s.shndx == n.index) n.symbols.push_back(s.index);
    }
    std::sort(k.carried_functions.begin(), k.carried_functions.end());
    std::sort(k.klp_symbols.begin(), k.klp_symbols.end());
    std::sort(k.exported_symbols.begin(), k.exported_symbols.end());
    return k;
  }

  const obj::Object& in_;
  const KlpObjectRequest& req_;
  const TargetLookup& target_;
  const SpecialLayouts& layouts_;
  std::vector<bool> included_;
  std::deque<uint32_t> queue_;
  std::map<uint32_t, std::set<uint64_t>> kept_;
  std::vector<std::pair<uint64_t, uint64_t>> alt_ranges_;
};

}  // namespace

Result<KlpObject> build_klp_object(const obj::Object& patched, const KlpObjectRequest& request, const TargetLookup& target,
                                   const SpecialLayouts& layouts) {
  if (request.functions.empty()) return make_error(ExitCode::bad_input, "nothing to replace: no changed function was given");
  return Builder(patched, request, target, layouts).run();
}

Json to_json(const KlpObject& k) {
  Json j = Json::object();
  j.set("replaced", Json::array_of(k.replaced, [](const ReplacedFunction& r) {
          return Json(Json::Object{{"name", r.name}, {"sympos", r.sympos}, {"new_symbol", r.new_symbol}});
        }));
  j.set("carried_functions", Json::strings(k.carried_functions));
  j.set("klp_symbols", Json::strings(k.klp_symbols));
  j.set("exported_symbols", Json::strings(k.exported_symbols));
  j.set("glue_symbols", Json::strings(k.glue_symbols));
  Json sp = Json::object();
  for (const auto& [name, n] : k.special_entries) sp.set(name, n);
  j.set("special_entries", std::move(sp));
  return j;
}

}  // namespace rr::klp
