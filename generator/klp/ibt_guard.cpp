#include "klp/ibt_guard.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace rr::klp {

namespace {

constexpr std::string_view kKlpSymPrefix = ".klp.sym.";

bool starts_with_endbr(const obj::Section& s, uint64_t offset) {
  return offset <= s.data.size() && s.data.size() - offset >= 4 && std::memcmp(s.data.data() + offset, kEndbr64, 4) == 0;
}

// A kernel symbol the klp object names: an exported name, or ".klp.sym.<object>.<name>,<sympos>".
struct KernelName {
  std::string name;
  uint64_t sympos = 0;
};
std::optional<KernelName> kernel_name(const std::string& symbol) {
  if (!symbol.starts_with(kKlpSymPrefix)) return KernelName{symbol, 0};
  std::string_view rest = std::string_view(symbol).substr(kKlpSymPrefix.size());
  size_t dot = rest.find('.');
  size_t comma = rest.rfind(',');
  if (dot == std::string_view::npos || comma == std::string_view::npos || comma < dot) return std::nullopt;
  if (rest.substr(0, dot) != "vmlinux") return std::nullopt;  // a module's symbol: not in this image's seal list
  KernelName k{std::string(rest.substr(dot + 1, comma - dot - 1)), 0};
  for (char c : rest.substr(comma + 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    k.sympos = k.sympos * 10 + static_cast<uint64_t>(c - '0');
  }
  return k;
}

// The kernel's symbol livepatch would resolve (sympos 0: the only one of that name).
const analysis::Symbol* resolve(const analysis::SymbolTable& symbols, const KernelName& k) {
  auto found = symbols.find_vmlinux(k.name);
  if (k.sympos == 0) return found.size() == 1 ? found[0] : nullptr;
  return k.sympos <= found.size() ? found[k.sympos - 1] : nullptr;
}

// Tables the kernel reads at load time that point at code without taking a callable address of it.
bool bookkeeping_section(const std::string& n, const SpecialLayouts* layouts) {
  if (layouts && layouts->find(n)) return true;
  for (const char* p : {".orc_unwind",
                        "__mcount_loc",
                        "__patchable_function_entries",
                        ".ibt_endbr_seal",
                        ".retpoline_sites",
                        ".return_sites",
                        ".call_sites",
                        ".cfi_sites",
                        ".smp_locks",
                        "__jump_table",
                        ".static_call_sites",
                        "__ex_table",
                        "__bug_table",
                        ".altinstructions",
                        ".parainstructions",
                        ".debug",
                        ".klp.rela",
                        ".discard",
                        ".note",
                        ".BTF",
                        ".comment",
                        ".eh_frame"})
    if (n.starts_with(p)) return true;
  return false;
}

std::string site_of(const obj::Section& s, const obj::Rela& r) { return fmt::format("{}+{:#x}", s.name, r.offset); }

}  // namespace

bool is_direct_branch(const obj::Section& code, const obj::Rela& r) {
  if (!code.is_text() || (r.type != R_X86_64_PC32 && r.type != R_X86_64_PLT32)) return false;
  const Bytes& b = code.data;
  if (r.offset < 1 || r.offset > b.size()) return false;
  uint8_t op = b[r.offset - 1];
  if (op == 0xe8 || op == 0xe9) return true;  // call / jmp rel32
  return r.offset >= 2 && b[r.offset - 2] == 0x0f && (op & 0xf0) == 0x80;  // jcc rel32
}

Result<std::vector<uint64_t>> read_seal_list(const elf::ElfFile& image, const analysis::SymbolTable* symbols, int64_t slide) {
  ByteView data;
  uint64_t base = 0;
  if (const elf::ElfSection* s = image.section(".ibt_endbr_seal")) {
    RR_ASSIGN(data, image.section_data(*s));
    base = s->address;
  } else {
    const analysis::Symbol* start = symbols ? symbols->first("__ibt_endbr_seal") : nullptr;
    const analysis::Symbol* end = symbols ? symbols->first("__ibt_endbr_seal_end") : nullptr;
    if (!start || !end || !symbols->addresses_known() || end->address < start->address)
      return make_error(ExitCode::missing, "{} has no .ibt_endbr_seal section and the symbols do not locate the seal list", image.origin());
    base = start->address - static_cast<uint64_t>(slide);
    auto bytes = image.bytes_at(base, end->address - start->address);
    if (!bytes) return make_error(ExitCode::bad_input, "{}: the seal list at {:#x} is not in the image", image.origin(), base);
    data = *bytes;
  }
  if (data.size() % 4 != 0)
    return make_error(ExitCode::bad_input, "{}: .ibt_endbr_seal is {} bytes, not a whole number of 4-byte entries", image.origin(),
                      data.size());
  std::vector<uint64_t> out;
  out.reserve(data.size() / 4);
  for (size_t i = 0; i < data.size(); i += 4) out.push_back(base + i + static_cast<uint64_t>(static_cast<int64_t>(*data.read<int32_t>(i))));
  return out;
}

IbtTarget ibt_target(const analysis::LoadedKernel& kernel) {
  IbtTarget t;
  const elf::ElfFile* image = kernel.image ? &*kernel.image : nullptr;
  if (kernel.config) {
    t.enabled = kernel.config->enabled("X86_KERNEL_IBT");
    t.enabled_from = fmt::format("config ({})", kernel.config->origin());
  } else if (image) {
    t.enabled = image->section(".ibt_endbr_seal") != nullptr;
    t.enabled_from = fmt::format("image ({}): no config, .ibt_endbr_seal {}", image->origin(), t.enabled ? "present" : "absent");
    t.notes.push_back(fmt::format("IBT decided from the image: no kernel config, and {} {} an .ibt_endbr_seal section", image->origin(),
                                  t.enabled ? "has" : "has no"));
  } else {
    t.enabled_from = "unknown: neither a config nor an image";
    t.notes.push_back("IBT unknown (no kernel config, no image): the IBT checks were skipped; pass --config or --image");
  }
  if (!t.enabled) return t;
  t.symbols = kernel.symbols ? &*kernel.symbols : nullptr;
  t.image = image;
  if (t.symbols && image && t.symbols->source() != analysis::SymbolSource::elf)
    t.slide = analysis::kaslr_offset(*t.symbols, *image).value_or(0);
  if (image) {
    auto seals = read_seal_list(*image, t.symbols, t.slide);
    if (seals) {
      t.sealed.emplace(seals->begin(), seals->end());
      t.sealed_from = image->origin();
    } else {
      t.notes.push_back(seals.error().message);
    }
  }
  return t;
}

Status check_klp_object(const KlpObject& klp, const SpecialLayouts& layouts, const IbtTarget& target, IbtReport& report) {
  report.enabled = target.enabled;
  report.enabled_from = target.enabled_from;
  for (const auto& n : target.notes) report.notes.push_back(n);
  if (!target.enabled) return ok_status();
  if (target.sealed) report.seal_entries = target.sealed->size();
  const obj::Object& o = klp.object;
  bool addresses = target.symbols && target.symbols->addresses_known();

  // 1. Every reference to a kernel function that takes its address (not a direct call/jmp/jcc) must not be sealed.
  for (const auto& s : o.sections) {
    if (s.relas.empty() || bookkeeping_section(s.name, &layouts)) continue;
    for (const auto& r : s.relas) {
      const obj::Symbol& sym = o.symbols[r.symbol];
      if (!sym.is_undefined()) continue;  // the module's own code and data
      auto kn = kernel_name(sym.name);
      if (!kn) continue;
      const analysis::Symbol* ks = target.symbols ? resolve(*target.symbols, *kn) : nullptr;
      if (!ks) {
        if (!target.symbols || target.symbols->find_vmlinux(kn->name).empty()) continue;  // not vmlinux's: a module symbol
        Error e = make_error(ExitCode::refused, "IBT: cannot tell which kernel symbol {} is (referenced at {})", sym.name, site_of(s, r));
        e.hint = "pass a kallsyms dump (--kallsyms) of the target kernel";
        return e;
      }
      if (!ks->is_function()) continue;
      if (is_direct_branch(s, r)) {
        ++report.direct_branches;
        continue;
      }
      AddressTaken a{kn->name, site_of(s, r), obj::rela_type_name(r.type), {}, false};
      if (addresses) a.link_address = ks->address - static_cast<uint64_t>(target.slide);
      if (!a.link_address || !target.sealed) {
        Error e =
            make_error(ExitCode::refused,
                       "IBT: the livepatch takes the address of the kernel function {} (at {}, {}), and whether the kernel seals "
                       "its ENDBR cannot be proven: {}",
                       kn->name, a.site, a.reloc_type, !a.link_address ? "symbol addresses are unknown" : "no seal list from the image");
        e.hint =
            !a.link_address ? "run as root or pass --kallsyms with addresses" : "pass the kernel image (--image /boot/vmlinuz-<release>)";
        return e;
      }
      a.sealed = target.sealed->count(*a.link_address) != 0;
      if (a.sealed) ++report.sealed_hits;
      report.address_taken.push_back(a);
    }
  }
  for (const auto& a : report.address_taken)
    if (a.sealed) {
      Error e = make_error(ExitCode::refused,
                           "IBT: the livepatch takes the address of {} (at {}, {}), a function the kernel seals at boot (listed in "
                           ".ibt_endbr_seal of {}): an indirect call there would raise #CP (control protection fault) and crash the kernel",
                           a.symbol, a.site, a.reloc_type, target.sealed_from);
      e.hint = "the replacement must call it directly; report this kernel and source to relax-rmrr";
      return e;
    }

  // 2. Replacements keep the ENDBR64 their kernel copy has (the symbol is the entry: kbuild's
  // -fpatchable-function-entry=16,16 puts the padding NOPs before it, under __pfx_<name>).
  for (const auto& rep : klp.replaced) {
    const obj::Symbol* f = o.symbol(rep.new_symbol);
    if (!f || !f->defined_in_section()) return make_error(ExitCode::failure, "internal: no replacement symbol {}", rep.new_symbol);
    bool has = starts_with_endbr(o.sections[f->shndx], f->value);
    std::optional<bool> kernel_has;
    if (target.image && addresses)
      if (const analysis::Symbol* ks = resolve(*target.symbols, {rep.name, rep.sympos}))
        if (auto b = target.image->bytes_at(ks->address - static_cast<uint64_t>(target.slide), 4))
          kernel_has = std::memcmp(b->data(), kEndbr64, 4) == 0;
    if (has) {
      report.endbr_checked.push_back(rep.name);
    } else if (kernel_has == false) {
      report.endbr_not_needed.push_back(rep.name);
    } else {
      Error e = make_error(ExitCode::refused,
                           "IBT: the replacement for {} does not start with ENDBR64 (f3 0f 1e fa){}: a call through a pointer to it "
                           "would raise #CP (control protection fault) and crash the kernel",
                           rep.name, kernel_has ? ", while the kernel's copy does" : " and the kernel's copy cannot be read");
      e.hint = kernel_has ? "compile with the kernel's flags (-fcf-protection=branch): use its kbuild tree and compiler"
                          : "pass the kernel image (--image) so the kernel's copy can be compared";
      return e;
    }
  }
  return ok_status();
}

Status check_module_endbr(const obj::Object& module, const std::vector<std::string>& replacements, const IbtTarget& target,
                          IbtReport& report) {
  if (!target.enabled) return ok_status();
  // The module's own seal list (objtool's, at module link): (section, offset) of each ENDBR sealed at load.
  std::set<std::pair<uint32_t, uint64_t>> sealed;
  if (const obj::Section* seal = module.section(".ibt_endbr_seal"))
    for (const auto& r : seal->relas) {
      const obj::Symbol& t = module.symbols[r.symbol];
      if (t.defined_in_section()) sealed.insert({t.shndx, static_cast<uint64_t>(static_cast<int64_t>(t.value) + r.addend)});
    }
  std::set<std::string> checked;
  for (const auto& s : module.sections) {
    if (s.relas.empty() || bookkeeping_section(s.name, nullptr)) continue;
    for (const auto& r : s.relas) {
      const obj::Symbol& sym = module.symbols[r.symbol];
      if (!sym.defined_in_section() || sym.shndx >= module.sections.size() || is_direct_branch(s, r)) continue;
      const obj::Section& ts = module.sections[sym.shndx];
      if (!ts.is_text()) continue;
      // The function whose entry the relocation names (a section symbol plus the function's offset).
      int64_t off = static_cast<int64_t>(sym.value) + (sym.is_section() ? r.addend + (obj::rela_is_pc_relative(r.type) ? 4 : 0) : 0);
      if (off < 0) continue;
      const obj::Symbol* f = sym.is_function() ? &sym : module.symbol_at(sym.shndx, static_cast<uint64_t>(off));
      if (!f || !f->is_function() || f->value != static_cast<uint64_t>(off)) continue;
      if (std::count(replacements.begin(), replacements.end(), f->name) || checked.count(f->name)) continue;
      if (!starts_with_endbr(ts, f->value)) {
        Error e = make_error(ExitCode::refused,
                             "IBT: the module takes the address of its function {} (at {}) but it does not start with ENDBR64: "
                             "the kernel calls it through that pointer and would raise #CP (control protection fault)",
                             f->name, site_of(s, r));
        e.hint = "the glue must be compiled with the kernel's flags (-fcf-protection=branch) through its kbuild tree";
        return e;
      }
      if (sealed.count({f->shndx, f->value})) {
        Error e = make_error(ExitCode::refused,
                             "IBT: the module takes the address of its function {} (at {}) but seals its ENDBR (.ibt_endbr_seal): "
                             "a call through that pointer would raise #CP (control protection fault)",
                             f->name, site_of(s, r));
        e.hint = "report this kernel and build to relax-rmrr";
        return e;
      }
      checked.insert(f->name);
      report.endbr_checked.push_back(f->name);
    }
  }
  return ok_status();
}

Json to_json(const IbtReport& r) {
  Json j = Json::object();
  j.set("enabled", r.enabled);
  j.set("enabled_from", r.enabled_from);
  if (r.seal_entries) j.set("seal_entries", *r.seal_entries);
  j.set("direct_branches", r.direct_branches);
  Json at = Json::array();
  for (const auto& a : r.address_taken) {
    Json e = Json::object();
    e.set("symbol", a.symbol);
    e.set("site", a.site);
    e.set("type", a.reloc_type);
    if (a.link_address) e.set("link_address", fmt::format("{:#x}", *a.link_address));
    e.set("sealed", a.sealed);
    at.push(std::move(e));
  }
  j.set("address_taken", std::move(at));
  j.set("sealed_hits", r.sealed_hits);
  j.set("endbr_checked", r.endbr_checked.size());
  j.set("endbr_functions", Json::strings(r.endbr_checked));
  j.set("endbr_not_needed", Json::strings(r.endbr_not_needed));
  j.set("notes", Json::strings(r.notes));
  return j;
}

}  // namespace rr::klp
