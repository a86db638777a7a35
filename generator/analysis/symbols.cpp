#include "analysis/symbols.h"

#include "common/file.h"
#include "elf/elf_file.h"

#include <elf.h>

#include <algorithm>
#include <charconv>

namespace rr::analysis {

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// True when `rest` (what follows a '.') is a chain of gcc/clang clone suffixes: cold[.N], isra.N, constprop.N,
// part.N, lto_priv.N, llvm.N, each separated by '.'.
bool is_clone_suffix_chain(std::string_view rest) {
  auto next_part = [&rest]() {
    size_t dot = rest.find('.');
    std::string_view part = rest.substr(0, dot);
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    return part;
  };
  if (rest.empty()) return false;
  while (!rest.empty()) {
    std::string_view p = next_part();
    if (p == "cold") {
      // an optional number follows (older gcc: name.cold.12)
      std::string_view save = rest;
      if (!rest.empty() && !all_digits(next_part())) rest = save;
    } else if (p == "isra" || p == "constprop" || p == "part" || p == "lto_priv" || p == "llvm") {
      if (rest.empty() || !all_digits(next_part())) return false;
    } else {
      return false;
    }
  }
  return true;
}

// Plain loops: string_view::find_first_of calls memchr on the set for every character.
bool is_blank(char c) { return c == ' ' || c == '\t'; }
size_t first_blank(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (is_blank(s[i])) return i;
  return std::string_view::npos;
}
size_t first_non_blank(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i)
    if (!is_blank(s[i])) return i;
  return std::string_view::npos;
}

Error line_error(const std::string& origin, size_t line_no, std::string_view line) {
  std::string shown(line.substr(0, 80));
  return make_error(ExitCode::bad_input, "{} line {}: expected '<hex address> <type letter> <name> [[module]]', got '{}'", origin, line_no,
                    shown);
}

// What every x86_64 kernel's table has: _text (or _stext), and its functions linked in the kernel's half of the
// address space, or every address 0 (/proc/kallsyms read without CAP_SYSLOG). A table without them is not a
// kernel's, and nothing may be resolved against it.
Status check_kernel_table(const std::vector<Symbol>& symbols, const std::string& origin) {
  constexpr uint64_t kKernelHalf = 0xffff800000000000ull;
  bool has_text = false;
  for (const auto& s : symbols) {
    if (s.module.empty() && (s.name == "_text" || s.name == "_stext")) has_text = true;
    if (s.is_function() && s.address != 0 && s.address < kKernelHalf) {
      Error e =
          make_error(ExitCode::bad_input,
                     "{}: the function {} is at {:#x}, outside the kernel's half of the address space: not an x86_64 kernel's symbol table",
                     origin, s.name, s.address);
      e.hint = "give the target kernel's /proc/kallsyms dump (read as root) or its System.map";
      return e;
    }
  }
  if (!has_text) {
    Error e = make_error(ExitCode::bad_input, "{}: no _text symbol: not a kernel's symbol table (every x86_64 kernel has one)", origin);
    e.hint = "give the target kernel's /proc/kallsyms dump (read as root) or its System.map";
    return e;
  }
  return ok_status();
}

Result<SymbolTable> parse_lines(std::string_view text, std::string origin, SymbolSource source, bool allow_modules) {
  std::vector<Symbol> out;
  out.reserve(static_cast<size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first_non_blank(line) == std::string_view::npos) continue;

    // address
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 16) return line_error(origin, line_no, line);
    uint64_t address = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + sp, address, 16);
    if (ec != std::errc() || p != line.data() + sp) return line_error(origin, line_no, line);
    // type letter
    if (line.size() < sp + 4 || line[sp + 2] != ' ') return line_error(origin, line_no, line);
    char type = line[sp + 1];
    if (!((type >= 'a' && type <= 'z') || (type >= 'A' && type <= 'Z') || type == '?')) return line_error(origin, line_no, line);
    std::string_view rest = line.substr(sp + 3);
    // name, then optional [module] after a tab or spaces
    size_t end = first_blank(rest);
    std::string_view name = rest.substr(0, end);
    std::string_view module;
    if (end != std::string_view::npos) {
      std::string_view tail = rest.substr(end);
      size_t b = first_non_blank(tail);
      tail = b == std::string_view::npos ? std::string_view{} : tail.substr(b);
      while (!tail.empty() && (tail.back() == ' ' || tail.back() == '\t')) tail.remove_suffix(1);
      if (!tail.empty()) {
        if (!allow_modules || tail.size() < 3 || tail.front() != '[' || tail.back() != ']' || first_blank(tail) != std::string_view::npos)
          return line_error(origin, line_no, line);
        module = tail.substr(1, tail.size() - 2);
      }
    }
    if (name.empty()) return line_error(origin, line_no, line);
    Symbol s;
    s.name.assign(name);
    s.type = type;
    s.address = address;
    s.module.assign(module);
    out.push_back(std::move(s));
  }
  if (out.empty()) return make_error(ExitCode::bad_input, "{}: no symbols", origin);
  RR_CHECK(check_kernel_table(out, origin));
  return SymbolTable(std::move(out), source, std::move(origin));
}

char elf_type_letter(const elf::ElfSymbol& s, const std::vector<elf::ElfSection>& sections) {
  char c = '?';
  if (s.section_index == SHN_UNDEF) {
    c = 'U';
  } else if (s.section_index == SHN_ABS) {
    c = 'a';
  } else if (s.section_index == SHN_COMMON) {
    c = 'c';
  } else if (s.section_index < sections.size()) {
    const elf::ElfSection& sec = sections[s.section_index];
    if (s.type == STT_FUNC || (sec.flags & SHF_EXECINSTR)) c = 't';
    else if (sec.type == SHT_NOBITS) c = 'b';
    else if (!(sec.flags & SHF_WRITE)) c = 'r';
    else c = 'd';
  }
  if (s.bind == STB_WEAK) return (s.type == STT_OBJECT) ? (c == 'U' ? 'v' : 'V') : (c == 'U' ? 'w' : 'W');
  if (s.bind == STB_GLOBAL && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return c;
}

}  // namespace

bool Symbol::is_function() const { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }
bool Symbol::is_global() const { return type >= 'A' && type <= 'Z'; }

NameParts split_variant(std::string_view name) {
  // The base is never empty: start looking after the first character.
  for (size_t dot = name.find('.', 1); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (is_clone_suffix_chain(name.substr(dot + 1))) return {std::string(name.substr(0, dot)), std::string(name.substr(dot))};
  }
  return {std::string(name), {}};
}

std::string_view source_name(SymbolSource source) {
  switch (source) {
    case SymbolSource::kallsyms: return "kallsyms";
    case SymbolSource::system_map: return "System.map";
    case SymbolSource::elf: return "ELF symtab";
    case SymbolSource::image: return "image kallsyms";
  }
  return "?";
}

SymbolTable::SymbolTable(std::vector<Symbol> symbols, SymbolSource source, std::string origin)
    : symbols_(std::move(symbols)), source_(source), origin_(std::move(origin)) {
  build_index();
}

SymbolTable::SymbolTable(const SymbolTable& other) : symbols_(other.symbols_), source_(other.source_), origin_(other.origin_) {
  build_index();
}

SymbolTable& SymbolTable::operator=(const SymbolTable& other) {
  if (this != &other) {
    symbols_ = other.symbols_;
    source_ = other.source_;
    origin_ = other.origin_;
    build_index();
  }
  return *this;
}

void SymbolTable::build_index() {
  constexpr uint32_t kEnd = UINT32_MAX;
  head_.clear();
  by_base_.clear();
  addresses_known_ = false;
  head_.reserve(symbols_.size());
  next_.assign(symbols_.size(), kEnd);
  std::unordered_map<std::string_view, uint32_t> tail;
  for (uint32_t i = 0; i < symbols_.size(); ++i) {
    const Symbol& s = symbols_[i];
    if (s.address != 0) addresses_known_ = true;
    std::string_view name = s.name;
    auto [it, fresh] = head_.try_emplace(name, i);
    if (!fresh) {
      // A duplicate name (rare): append to its chain.
      auto [t, first_dup] = tail.try_emplace(name, it->second);
      next_[t->second] = i;
      t->second = i;
      (void)first_dup;
    }
    if (name.find('.', 1) != std::string_view::npos) {
      size_t dot = split_variant(name).base.size();
      if (dot < name.size()) by_base_[name.substr(0, dot)].push_back(i);
    }
  }
}

std::vector<uint32_t> SymbolTable::same_name(std::string_view name) const {
  std::vector<uint32_t> out;
  auto it = head_.find(name);
  if (it == head_.end()) return out;
  for (uint32_t i = it->second; i != UINT32_MAX; i = next_[i]) out.push_back(i);
  // Livepatch order: vmlinux first, then by module name; by address inside one object; source order for
  // equal (or hidden) addresses.
  if (out.size() > 1)
    std::stable_sort(out.begin(), out.end(), [this](uint32_t a, uint32_t b) {
      const Symbol& x = symbols_[a];
      const Symbol& y = symbols_[b];
      if (x.module != y.module) {
        if (x.module.empty() != y.module.empty()) return x.module.empty();
        return x.module < y.module;
      }
      return x.address < y.address;
    });
  return out;
}

std::vector<const Symbol*> SymbolTable::find(std::string_view name) const {
  std::vector<const Symbol*> out;
  for (uint32_t i : same_name(name)) out.push_back(&symbols_[i]);
  return out;
}

std::vector<const Symbol*> SymbolTable::find_vmlinux(std::string_view name) const {
  std::vector<const Symbol*> out = find(name);
  std::erase_if(out, [](const Symbol* s) { return !s->in_vmlinux(); });
  return out;
}

const Symbol* SymbolTable::first(std::string_view name) const {
  auto it = head_.find(name);
  if (it == head_.end()) return nullptr;
  if (next_[it->second] == UINT32_MAX) return &symbols_[it->second];
  return &symbols_[same_name(name).front()];
}

std::optional<unsigned> SymbolTable::sympos(const Symbol& symbol) const {
  unsigned rank = 0, same_object = 0;
  bool found = false;
  for (uint32_t i : same_name(symbol.name)) {
    const Symbol& s = symbols_[i];
    if (s.module != symbol.module) continue;
    ++same_object;
    if (&s == &symbol) {
      rank = same_object;
      found = true;
    }
  }
  if (!found) return std::nullopt;
  return same_object == 1 ? 0u : rank;
}

std::vector<const Symbol*> SymbolTable::variants(std::string_view base) const {
  std::vector<const Symbol*> out;
  auto it = by_base_.find(base);
  if (it == by_base_.end()) return out;
  for (uint32_t i : it->second) out.push_back(&symbols_[i]);
  return out;
}

Result<SymbolTable> parse_kallsyms(std::string_view text, std::string origin) {
  return parse_lines(text, std::move(origin), SymbolSource::kallsyms, true);
}

Result<SymbolTable> read_kallsyms(const std::filesystem::path& path) {
  RR_ASSIGN(std::string text, read_file_text(path));
  return parse_kallsyms(text, path.string());
}

bool is_dummy_system_map(std::string_view text) {
  return text.size() < 4096 && text.find("The real System.map is in") != std::string_view::npos;
}

Result<SymbolTable> parse_system_map(std::string_view text, std::string origin) {
  if (is_dummy_system_map(text)) {
    Error e = make_error(ExitCode::missing, "{} is Debian's placeholder, not a symbol map (\"{}\")", origin,
                         trim(text.substr(text.find("The real"))));
    e.hint =
        "install the linux-image-<release>-dbg package for the real System.map (large), or pass --kallsyms "
        "with a dump of /proc/kallsyms from the target kernel";
    return e;
  }
  return parse_lines(text, std::move(origin), SymbolSource::system_map, false);
}

Result<SymbolTable> read_system_map(const std::filesystem::path& path) {
  RR_ASSIGN(std::string text, read_file_text(path));
  return parse_system_map(text, path.string());
}

Result<SymbolTable> symbols_from_elf(const elf::ElfFile& elf) {
  RR_ASSIGN(std::vector<elf::ElfSymbol> raw, elf.symbols());
  std::vector<Symbol> out;
  out.reserve(raw.size());
  for (const auto& r : raw) {
    if (r.type == STT_SECTION || r.type == STT_FILE || r.name.empty()) continue;
    if (r.section_index == SHN_UNDEF) continue;  // a reference, not a definition
    Symbol s;
    s.name = r.name;
    s.address = r.value;
    s.size = r.size;
    s.type = elf_type_letter(r, elf.sections());
    out.push_back(std::move(s));
  }
  if (out.empty()) return make_error(ExitCode::missing, "{}: the symbol table defines no symbols", elf.origin());
  return SymbolTable(std::move(out), SymbolSource::elf, elf.origin());
}

}  // namespace rr::analysis
