// Kernel symbols as livepatch sees them: one value type per symbol, a table with by-name lookups, and readers
// for /proc/kallsyms, kallsyms dumps, System.map and a vmlinux ELF symbol table.
#pragma once

#include "common/result.h"
#include "elf/elf_file.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rr::analysis {

struct Symbol {
  std::string name;
  char type = '?';  // nm/kallsyms letter: t/T text, d/D data, b/B bss, r/R read-only, w/W weak, ...
  uint64_t address = 0;  // 0 when kallsyms hides addresses (not root)
  uint64_t size = 0;  // known only from an ELF symtab
  std::string module;  // empty for vmlinux, else the module name kallsyms shows in brackets

  bool in_vmlinux() const { return module.empty(); }
  bool is_function() const;  // text (t/T) or weak text (w/W)
  bool is_global() const;  // upper-case letter
};

// "intel_iommu_attach_device.cold" → {"intel_iommu_attach_device", ".cold"}; a name gcc did not derive from
// another has an empty suffix. Recognised: .cold, .isra.N, .constprop.N, .part.N, .lto_priv.N (and chains).
struct NameParts {
  std::string base;
  std::string suffix;
};
NameParts split_variant(std::string_view name);
inline std::string base_name(std::string_view name) { return split_variant(name).base; }

// image: the kallsyms tables inside the kernel image (analysis/image_kallsyms.h), addresses as linked.
enum class SymbolSource { kallsyms, system_map, elf, image };
std::string_view source_name(SymbolSource source);

class SymbolTable {
 public:
  SymbolTable() = default;
  // Symbols in the source's order; addresses_known is false when every address is zero (kallsyms as non-root).
  SymbolTable(std::vector<Symbol> symbols, SymbolSource source, std::string origin);
  // The index refers into the symbols: a copy rebuilds it, a move keeps it (the symbols do not move).
  SymbolTable(const SymbolTable& other);
  SymbolTable& operator=(const SymbolTable& other);
  SymbolTable(SymbolTable&&) noexcept = default;
  SymbolTable& operator=(SymbolTable&&) noexcept = default;

  const std::vector<Symbol>& symbols() const { return symbols_; }
  size_t size() const { return symbols_.size(); }
  bool empty() const { return symbols_.empty(); }
  bool addresses_known() const { return addresses_known_; }
  SymbolSource source() const { return source_; }
  const std::string& origin() const { return origin_; }

  // Every symbol of that exact name; vmlinux ones first, in livepatch's order (address, then source order).
  std::vector<const Symbol*> find(std::string_view name) const;
  // The vmlinux symbols of that name in livepatch order.
  std::vector<const Symbol*> find_vmlinux(std::string_view name) const;
  bool contains(std::string_view name) const { return head_.count(name) != 0; }
  // The first vmlinux symbol of that name, else the first module one, else nullptr.
  const Symbol* first(std::string_view name) const;

  // sympos as klp counts it: 0 when the name is unique in the symbol's object (vmlinux or its module), else the
  // 1-based rank of `symbol` among same-name symbols of that object by address (source order breaks ties and
  // hidden addresses). nullopt for a symbol that is not in this table.
  std::optional<unsigned> sympos(const Symbol& symbol) const;

  // Symbols derived from `base` by gcc (base.cold, base.isra.0, ...), excluding `base` itself.
  std::vector<const Symbol*> variants(std::string_view base) const;

 private:
  std::vector<Symbol> symbols_;
  void build_index();
  // Indices of the symbols named `name`, in livepatch order.
  std::vector<uint32_t> same_name(std::string_view name) const;

  // Views into symbols_[i].name: name → first index in source order, then a chain through next_.
  std::unordered_map<std::string_view, uint32_t> head_;
  std::vector<uint32_t> next_;
  std::unordered_map<std::string_view, std::vector<uint32_t>> by_base_;  // base name → its variants
  SymbolSource source_ = SymbolSource::kallsyms;
  std::string origin_;
  bool addresses_known_ = false;
};

// "ffffffff81000000 T _text" lines, optionally "\t[module]" after the name. Empty lines are skipped; anything
// else malformed is an Error naming the line.
Result<SymbolTable> parse_kallsyms(std::string_view text, std::string origin = "kallsyms");
Result<SymbolTable> read_kallsyms(const std::filesystem::path& path);  // /proc/kallsyms or a dump of it

// System.map has the same lines without modules. Debian's image ships a one-line stand-in ("The real System.map
// is in the linux-image-<version>-dbg package"): that is an Error (missing) saying so.
Result<SymbolTable> parse_system_map(std::string_view text, std::string origin = "System.map");
Result<SymbolTable> read_system_map(const std::filesystem::path& path);
bool is_dummy_system_map(std::string_view text);

// The .symtab of a vmlinux (or any) ELF: functions and objects with nm-like type letters. Error (missing) when
// the ELF has no symbol table (a vmlinux extracted from vmlinuz is stripped).
Result<SymbolTable> symbols_from_elf(const elf::ElfFile& elf);

}  // namespace rr::analysis
