#include "analysis/image_kallsyms.h"

#include "elf/elf_file.h"

#include <elf.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

namespace rr::analysis {

namespace {

constexpr size_t kTokenCount = 256;
constexpr size_t kTokenIndexBytes = kTokenCount * 2;
constexpr uint32_t kMaxSymbols = 1u << 24;  // far above any kernel (7.3: 210k); bounds a walk over garbage
constexpr uint64_t kKernelHalf = 0xffff800000000000ull;
// Each label of the generated tables is aligned to 8 bytes up to 6.19 and to 4 bytes from 7.0.
constexpr std::array<size_t, 2> kAlignments = {8, 4};
// Work allowed to the names search over all token tables: positions looked at plus name entries walked. The
// Debian 5.10 to 7.3 images need 0.2 to 0.3 per byte of .rodata; bytes crafted so that every position starts
// a long walk (quadratic: 64 KiB of .rodata took over a minute under ASan) are refused instead.
constexpr size_t names_search_budget(size_t rodata_size) { return 2 * rodata_size + 65536; }

// .rodata as offsets and the link-time address of its first byte.
struct Rodata {
  ByteView bytes;
  uint64_t address = 0;

  size_t align(size_t offset, size_t alignment) const {
    uint64_t a = address + offset;
    return static_cast<size_t>((a + alignment - 1) / alignment * alignment - address);
  }
  bool zeros(size_t from, size_t to) const {
    if (from > to || !bytes.has(from, to - from)) return false;
    for (size_t i = from; i < to; ++i)
      if (bytes.data()[i] != 0) return false;
    return true;
  }
  // The next table after `end`, aligned, with only zero padding in between; nullopt if the padding is not zero.
  std::optional<size_t> next_label(size_t end, size_t alignment) const {
    size_t at = align(end, alignment);
    if (!zeros(end, at)) return std::nullopt;
    return at;
  }
  uint32_t u32(size_t offset) const { return bytes.read<uint32_t>(offset).value_or(0); }
};

struct TokenTable {
  size_t table = 0;  // offsets in .rodata
  size_t end = 0;
  size_t index = 0;
  std::array<std::string_view, kTokenCount> tokens;
  std::array<bool, kTokenCount> starts_name{};  // the expansion can begin a name: its first character is a type letter
};

bool is_type_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_name_char(char c) { return c > 0x20 && c < 0x7f; }

// Token i (a NUL-terminated string) at `pos`; its end (the NUL) or nullopt when it runs out of .rodata or holds a
// character no symbol name has.
std::optional<size_t> token_end(const Rodata& r, size_t pos) {
  const uint8_t* d = r.bytes.data();
  for (size_t i = pos; i < r.bytes.size(); ++i) {
    if (d[i] == 0) return i;
    if (!is_name_char(static_cast<char>(d[i]))) return std::nullopt;
  }
  return std::nullopt;
}

// Token tables: the single characters '0'..'9' stand for themselves (every kernel has digits in its names), so the
// byte run "0\0001\000...9\0" is where token 0x30 starts. A candidate is believed only when the 256 u16 of a token
// index follow the table (after alignment padding) and give exactly the offset of every one of the 256 tokens.
std::vector<TokenTable> find_token_tables(const Rodata& r, unsigned& seeds) {
  static constexpr char kSeed[] = "0\0001\0002\0003\0004\0005\0006\0007\0008\0009";  // + the final NUL: 20 bytes
  const char* begin = reinterpret_cast<const char*>(r.bytes.data());
  const char* end = begin + r.bytes.size();
  std::vector<TokenTable> out;
  for (const char* hit = begin;; ++hit) {
    hit = std::search(hit, end, kSeed, kSeed + sizeof(kSeed));
    if (hit == end) break;
    ++seeds;
    size_t p = static_cast<size_t>(hit - begin);
    // Forward over tokens 0x30..0xff to the end of the table.
    size_t pos = p;
    bool ok = true;
    for (size_t i = '0'; i < kTokenCount && ok; ++i) {
      auto e = token_end(r, pos);
      if (!e) ok = false;
      else pos = *e + 1;
    }
    if (!ok) continue;
    size_t table_end = pos;
    for (size_t alignment : kAlignments) {
      auto index = r.next_label(table_end, alignment);
      if (!index || !r.bytes.has(*index, kTokenIndexBytes)) continue;
      auto entry = [&](size_t i) { return r.bytes.read<uint16_t>(*index + 2 * i).value_or(0); };
      if (entry(0) != 0 || entry('0') > p) continue;
      size_t start = p - entry('0');
      TokenTable t;
      t.table = start;
      t.end = table_end;
      t.index = *index;
      size_t at = start;
      bool match = true;
      for (size_t i = 0; i < kTokenCount && match; ++i) {
        auto e = at == start + entry(i) ? token_end(r, at) : std::nullopt;
        if (!e) {
          match = false;
          break;
        }
        t.tokens[i] = std::string_view(reinterpret_cast<const char*>(r.bytes.data()) + at, *e - at);
        t.starts_name[i] = !t.tokens[i].empty() && is_type_letter(t.tokens[i][0]);
        at = *e + 1;
      }
      if (!match || at != table_end) continue;
      bool seen = std::any_of(out.begin(), out.end(), [&](const TokenTable& o) { return o.index == t.index; });
      if (!seen) out.push_back(t);
    }
  }
  return out;
}

// One walk over the names stream: num_syms entries of (length, token bytes).
struct NamesStream {
  size_t num_syms_at = 0;  // offset of the u32 num_syms
  uint32_t count = 0;
  size_t start = 0, end = 0;
  size_t alignment = 8;
  bool two_byte_lengths = true;  // the 6.1+ rule: a first byte >= 0x80 carries 7 bits and a second byte follows
  bool long_seen = false;  // a length >= 0x80 was read
  std::vector<uint32_t> every_256th;  // offset in names of symbols 0, 256, 512, ...: what markers must hold
  size_t markers = 0;
  size_t markers_end = 0;
  std::optional<size_t> seqs_before_tokens;  // seqs_of_names between markers and the token table (6.1.42 to 6.3)
};

bool walk_names(const Rodata& r, const TokenTable& t, size_t limit, NamesStream& s, size_t& budget) {
  const uint8_t* d = r.bytes.data();
  size_t pos = s.start;
  s.every_256th.clear();
  s.long_seen = false;
  for (uint32_t i = 0; i < s.count; ++i) {
    if (budget == 0) return false;
    --budget;
    if (i % 256 == 0) s.every_256th.push_back(static_cast<uint32_t>(pos - s.start));
    if (pos >= limit) return false;
    size_t len = d[pos++];
    if (s.two_byte_lengths && (len & 0x80)) {
      if (pos >= limit) return false;
      len = (len & 0x7f) | (size_t{d[pos++]} << 7);
      s.long_seen = true;
    }
    if (len == 0 || len > limit - pos || !t.starts_name[d[pos]]) return false;
    pos += len;
  }
  s.end = pos;
  return true;
}

// The markers table follows the names (aligned, zero padding): one u32 per 256 symbols, each the offset in names of
// symbol 256k. After it comes the token table, or seqs_of_names and then the token table.
bool place_markers(const Rodata& r, const TokenTable& t, NamesStream& s) {
  auto at = r.next_label(s.end, s.alignment);
  if (!at) return false;
  size_t count = s.every_256th.size();
  if (!r.bytes.has(*at, 4 * count) || *at + 4 * count > t.table) return false;
  for (size_t k = 0; k < count; ++k)
    if (r.u32(*at + 4 * k) != s.every_256th[k]) return false;
  s.markers = *at;
  s.markers_end = *at + 4 * count;
  auto next = r.next_label(s.markers_end, s.alignment);
  if (!next) return false;
  if (*next == t.table) return true;
  size_t seqs_end = *next + 3 * size_t{s.count};
  auto after = r.next_label(seqs_end, s.alignment);
  if (after && *after == t.table) {
    s.seqs_before_tokens = *next;
    return true;
  }
  return false;
}

// Every position where a u32 could be num_syms with a names stream right after it that walks to markers that agree.
// Stops when `budget` runs out (the caller reports it).
std::vector<NamesStream> find_names(const Rodata& r, const TokenTable& t, unsigned& walks, size_t& budget) {
  std::vector<NamesStream> out;
  NamesStream s;
  for (size_t x = r.align(0, 4); x + 8 <= t.table && budget > 0; x += 4) {
    --budget;
    uint32_t n = r.u32(x);
    if (n == 0 || n > kMaxSymbols) continue;
    for (size_t alignment : kAlignments) {
      size_t start = r.align(x + 4, alignment);
      if (!r.zeros(x + 4, start) || start >= t.table || 2 * size_t{n} > t.table - start) continue;
      if (alignment == 4 && start != x + 4) continue;
      if (!t.starts_name[r.bytes.data()[start + 1]] && !t.starts_name[r.bytes.data()[start + 2]]) continue;
      for (bool two_byte : {true, false}) {
        s = NamesStream{};
        s.num_syms_at = x;
        s.count = n;
        s.start = start;
        s.alignment = alignment;
        s.two_byte_lengths = two_byte;
        ++walks;
        bool walked = walk_names(r, t, t.table, s, budget);
        // The one-byte rule differs only where a length byte is >= 0x80; try it only then.
        if (walked && place_markers(r, t, s)) out.push_back(s);
        if (!s.long_seen) break;
      }
    }
  }
  return out;
}

// Expanded names ("T_text"): the type letter, then the name. Nullopt when a name uses an empty token slot, holds a
// character no symbol has, or lacks its type letter.
std::optional<std::vector<std::string>> expand_names(const Rodata& r, const TokenTable& t, const NamesStream& s) {
  std::vector<std::string> names;
  names.reserve(s.count);
  const uint8_t* d = r.bytes.data();
  size_t pos = s.start;
  std::string name;
  for (uint32_t i = 0; i < s.count; ++i) {
    size_t len = d[pos++];
    if (s.two_byte_lengths && (len & 0x80)) len = (len & 0x7f) | (size_t{d[pos++]} << 7);
    name.clear();
    for (size_t k = 0; k < len; ++k) {
      std::string_view tok = t.tokens[d[pos + k]];
      if (tok.empty()) return std::nullopt;
      name.append(tok);
    }
    pos += len;
    if (name.empty() || !is_type_letter(name[0])) return std::nullopt;
    names.push_back(name);
  }
  return names;
}

// One hypothesis for where the address table is and how to read it.
struct AddressTable {
  KallsymsLayout layout;
  KallsymsAddressForm form;
  size_t entries = 0;  // offset of the first entry
  std::optional<size_t> relative_base;
  std::optional<size_t> seqs;
};

std::vector<AddressTable> address_hypotheses(const Rodata& r, const TokenTable& t, const NamesStream& s) {
  std::vector<AddressTable> out;
  size_t n = s.count, a = s.alignment;
  // Before num_syms: offsets, relative_base (the label before num_syms) ...
  if (s.num_syms_at >= 8) {
    size_t base = s.num_syms_at - 8;
    size_t span = (4 * n + a - 1) / a * a;
    if (base >= span && r.zeros(base - span + 4 * n, base)) {
      KallsymsLayout l = s.seqs_before_tokens ? KallsymsLayout::offsets_first_seqs : KallsymsLayout::offsets_first;
      for (auto form : {KallsymsAddressForm::absolute_percpu, KallsymsAddressForm::base_relative})
        out.push_back({l, form, base - span, base, s.seqs_before_tokens});
    }
  }
  // ... or the absolute addresses themselves.
  if (!s.seqs_before_tokens && s.num_syms_at >= 8 * n)
    out.push_back({KallsymsLayout::absolute, KallsymsAddressForm::absolute, s.num_syms_at - 8 * n, {}, {}});
  // After the token index: offsets, (relative_base,) seqs_of_names.
  if (!s.seqs_before_tokens) {
    if (auto offsets = r.next_label(t.index + kTokenIndexBytes, a)) {
      if (auto base = r.next_label(*offsets + 4 * n, a)) {
        if (auto seqs = r.next_label(*base + 8, a); seqs && r.bytes.has(*seqs, 3 * n))
          for (auto form : {KallsymsAddressForm::absolute_percpu, KallsymsAddressForm::base_relative})
            out.push_back({KallsymsLayout::num_syms_first, form, *offsets, *base, *seqs});
        if (r.bytes.has(*base, 3 * n))
          out.push_back({KallsymsLayout::num_syms_first_no_base, KallsymsAddressForm::place_relative, *offsets, {}, *base});
      }
    }
  }
  std::erase_if(out, [&](const AddressTable& h) { return !r.bytes.has(h.entries, (h.form == KallsymsAddressForm::absolute ? 8 : 4) * n); });
  return out;
}

std::vector<uint64_t> read_addresses(const Rodata& r, const AddressTable& h, size_t n) {
  std::vector<uint64_t> out(n);
  uint64_t base = h.relative_base ? r.bytes.read<uint64_t>(*h.relative_base).value_or(0) : 0;
  for (size_t i = 0; i < n; ++i) {
    if (h.form == KallsymsAddressForm::absolute) {
      out[i] = r.bytes.read<uint64_t>(h.entries + 8 * i).value_or(0);
      continue;
    }
    uint32_t raw = r.u32(h.entries + 4 * i);
    int32_t v = static_cast<int32_t>(raw);
    switch (h.form) {
      case KallsymsAddressForm::absolute_percpu:
        out[i] = v >= 0 ? static_cast<uint64_t>(v) : base - 1 - static_cast<uint64_t>(static_cast<int64_t>(v));
        break;
      case KallsymsAddressForm::base_relative: out[i] = base + raw; break;
      case KallsymsAddressForm::place_relative:
        out[i] = r.address + h.entries + 4 * i + static_cast<uint64_t>(static_cast<int64_t>(v));
        break;
      case KallsymsAddressForm::absolute: break;
    }
  }
  return out;
}

bool is_permutation_of_indices(const Rodata& r, size_t at, size_t n) {
  std::vector<bool> seen(n);
  const uint8_t* d = r.bytes.data() + at;
  for (size_t i = 0; i < n; ++i) {
    size_t v = (size_t{d[3 * i]} << 16) | (size_t{d[3 * i + 1]} << 8) | d[3 * i + 2];
    if (v >= n || seen[v]) return false;
    seen[v] = true;
  }
  return true;
}

std::vector<KallsymsTable> table_map(const Rodata& r, const TokenTable& t, const NamesStream& s, const AddressTable& h) {
  size_t n = s.count;
  auto at = [&](size_t off) { return r.address + off; };
  std::vector<KallsymsTable> v = {
      {h.form == KallsymsAddressForm::absolute ? "kallsyms_addresses" : "kallsyms_offsets", at(h.entries),
       (h.form == KallsymsAddressForm::absolute ? 8 : 4) * n},
      {"kallsyms_num_syms", at(s.num_syms_at), 4},
      {"kallsyms_names", at(s.start), s.end - s.start},
      {"kallsyms_markers", at(s.markers), s.markers_end - s.markers},
      {"kallsyms_token_table", at(t.table), t.end - t.table},
      {"kallsyms_token_index", at(t.index), kTokenIndexBytes},
  };
  if (h.relative_base) v.push_back({"kallsyms_relative_base", at(*h.relative_base), 8});
  if (h.seqs) v.push_back({"kallsyms_seqs_of_names", at(*h.seqs), 3 * n});
  std::sort(v.begin(), v.end(), [](const KallsymsTable& a, const KallsymsTable& b) { return a.address < b.address; });
  return v;
}

struct Decoding {
  AddressTable hypothesis;
  const NamesStream* names = nullptr;
  const TokenTable* tokens = nullptr;
  std::vector<Symbol> symbols;
  std::vector<KallsymsTable> tables;
  unsigned self_checked = 0;
};

// Every check an address hypothesis must pass; the reason for the first that fails goes to `why`.
std::optional<Decoding> try_hypothesis(const Rodata& r, const TokenTable& t, const NamesStream& s, const std::vector<std::string>& names,
                                       const AddressTable& h, uint64_t text_address, std::string& why) {
  std::vector<uint64_t> addresses = read_addresses(r, h, s.count);
  for (size_t i = 1; i < addresses.size(); ++i)
    if (addresses[i] < addresses[i - 1]) {
      why = fmt::format("{}/{}: addresses not sorted at entry {}", layout_name(h.layout), address_form_name(h.form), i);
      return std::nullopt;
    }
  if (h.seqs && !is_permutation_of_indices(r, *h.seqs, s.count)) {
    why = fmt::format("{}: seqs_of_names is not a permutation", layout_name(h.layout));
    return std::nullopt;
  }
  Decoding d{h, &s, &t, {}, table_map(r, t, s, h), 0};
  d.symbols.reserve(names.size());
  bool text_seen = false;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string_view name = std::string_view(names[i]).substr(1);
    if (name.empty()) continue;  // the kernel does not print nameless entries
    if (name == "_text" || name == "_stext") {
      if (addresses[i] != text_address) {
        why = fmt::format("{}/{}: {} decodes to {:#x}, the ELF's .text is at {:#x}", layout_name(h.layout), address_form_name(h.form), name,
                          addresses[i], text_address);
        return std::nullopt;
      }
      text_seen = true;
    }
    d.symbols.push_back(Symbol{std::string(name), names[i][0], addresses[i], 0, {}});
  }
  if (!text_seen) {
    why = "no _text or _stext symbol among the names";
    return std::nullopt;
  }
  // From 6.11 the tables are symbols of their own: where they decode to must be where they were found.
  for (const auto& table : d.tables)
    for (const auto& sym : d.symbols)
      if (sym.name == table.name) {
        if (sym.address != table.address) {
          why = fmt::format("{}/{}: the symbol {} decodes to {:#x}, the table is at {:#x}", layout_name(h.layout),
                            address_form_name(h.form), table.name, sym.address, table.address);
          return std::nullopt;
        }
        ++d.self_checked;
      }
  return d;
}

// The first few reasons candidates were rejected, for an error message.
std::string first_reasons(const std::vector<std::string>& reasons) {
  std::string out;
  for (size_t i = 0; i < reasons.size() && i < 6; ++i) out += (i ? "; " : "; rejected: ") + reasons[i];
  if (reasons.size() > 6) out += fmt::format("; and {} more", reasons.size() - 6);
  return out;
}

bool same_symbols(const std::vector<Symbol>& a, const std::vector<Symbol>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const Symbol& x, const Symbol& y) { return x.address == y.address && x.type == y.type && x.name == y.name; });
}

}  // namespace

std::string_view layout_name(KallsymsLayout layout) {
  switch (layout) {
    case KallsymsLayout::absolute: return "absolute";
    case KallsymsLayout::offsets_first: return "offsets-first";
    case KallsymsLayout::offsets_first_seqs: return "offsets-first-seqs";
    case KallsymsLayout::num_syms_first: return "num_syms-first";
    case KallsymsLayout::num_syms_first_no_base: return "num_syms-first-no-base";
  }
  return "?";
}

std::string_view layout_kernels(KallsymsLayout layout) {
  switch (layout) {
    case KallsymsLayout::absolute: return "kernels without CONFIG_KALLSYMS_BASE_RELATIVE (never x86_64 5.10+)";
    case KallsymsLayout::offsets_first: return "5.10 to 6.1.41";
    case KallsymsLayout::offsets_first_seqs: return "6.1.42 to 6.3";
    case KallsymsLayout::num_syms_first: return "6.4 to 6.19";
    case KallsymsLayout::num_syms_first_no_base: return "7.0 on";
  }
  return "?";
}

std::string_view address_form_name(KallsymsAddressForm form) {
  switch (form) {
    case KallsymsAddressForm::absolute: return "absolute";
    case KallsymsAddressForm::absolute_percpu: return "absolute-percpu";
    case KallsymsAddressForm::base_relative: return "base-relative";
    case KallsymsAddressForm::place_relative: return "place-relative";
  }
  return "?";
}

Status check_kernel_elf(const elf::ElfFile& elf, const std::string& origin) {
  const elf::ElfSection* text = elf.section(".text");
  if (!elf.is_64bit() || elf.machine() != EM_X86_64 || elf.file_type() != ET_EXEC || !text || text->address < kKernelHalf) {
    Error e = make_error(ExitCode::bad_input,
                         "{}: not an x86_64 kernel image (a kernel is an ELF executable for x86_64 whose .text is "
                         "linked in the kernel's half of the address space)",
                         origin);
    e.hint = "pass the target's vmlinuz (/boot/vmlinuz-<release> or /usr/lib/modules/<release>/vmlinuz) or the vmlinux it decompresses to";
    return e;
  }
  return ok_status();
}

Result<ImageKallsyms> decode_image_kallsyms(const elf::ElfFile& elf, const std::string& origin) {
  RR_CHECK(check_kernel_elf(elf, origin));
  const elf::ElfSection* text = elf.section(".text");
  const elf::ElfSection* rodata = elf.section(".rodata");
  if (!rodata || !rodata->has_file_data())
    return make_error(ExitCode::bad_input, "{}: not a kernel image: no .rodata section with contents", origin);
  RR_ASSIGN(ByteView bytes, elf.section_data(*rodata));
  return decode_kallsyms_tables(bytes, rodata->address, text->address, origin);
}

Result<ImageKallsyms> decode_kallsyms_tables(ByteView rodata, uint64_t rodata_address, uint64_t text_address, const std::string& origin) {
  Rodata r{rodata, rodata_address};
  unsigned seeds = 0, walks = 0;
  const size_t budget_total = names_search_budget(rodata.size());
  size_t budget = budget_total;
  std::vector<TokenTable> token_tables = find_token_tables(r, seeds);
  if (token_tables.empty()) {
    Error e = make_error(ExitCode::missing,
                         "{}: no kallsyms tables in .rodata: looked for a token table (the run \"0\",\"1\",...,\"9\" of "
                         "single-character tokens, found {} time{}) followed by a token index that matches it, found none",
                         origin, seeds, seeds == 1 ? "" : "s");
    e.hint =
        "the kernel was built without CONFIG_KALLSYMS, or the image is damaged: give the symbols another way "
        "(--kallsyms with a /proc/kallsyms dump of that kernel, --system-map, or --vmlinux from the -dbg package)";
    return e;
  }

  std::vector<Decoding> accepted;
  std::vector<std::string> rejected;
  std::vector<std::vector<NamesStream>> streams_per_table;
  streams_per_table.reserve(token_tables.size());
  for (const auto& t : token_tables) {
    streams_per_table.push_back(find_names(r, t, walks, budget));
    if (budget == 0) {
      Error e = make_error(ExitCode::bad_input,
                           "{}: the kallsyms tables do not decode consistently: the search for the names stream gave "
                           "up after {} steps ({} token table{}, {} walks tried; a kernel's tables need less than one "
                           "step per byte of .rodata)",
                           origin, budget_total, token_tables.size(), token_tables.size() == 1 ? "" : "s", walks);
      e.hint =
          "the image is damaged: give the symbols another way (--kallsyms with a /proc/kallsyms dump of that "
          "kernel, --system-map, or --vmlinux from the -dbg package)";
      return e;
    }
    for (const auto& s : streams_per_table.back()) {
      auto names = expand_names(r, t, s);
      if (!names) {
        rejected.push_back(fmt::format("names at {:#x}: a name uses an empty token or lacks its type letter", r.address + s.start));
        continue;
      }
      auto hypotheses = address_hypotheses(r, t, s);
      if (hypotheses.empty())
        rejected.push_back(fmt::format("names at {:#x}: no address table where any layout puts it", r.address + s.start));
      for (const auto& h : hypotheses) {
        std::string why;
        if (auto d = try_hypothesis(r, t, s, *names, h, text_address, why)) accepted.push_back(std::move(*d));
        else rejected.push_back(why);
      }
    }
  }
  size_t streams = 0;
  for (const auto& v : streams_per_table) streams += v.size();

  if (accepted.empty()) {
    Error e = make_error(ExitCode::bad_input,
                         "{}: the kallsyms tables do not decode consistently: {} token table{}, {} names stream{} whose "
                         "markers agree ({} walks tried){}",
                         origin, token_tables.size(), token_tables.size() == 1 ? "" : "s", streams, streams == 1 ? "" : "s", walks,
                         first_reasons(rejected));
    e.hint =
        "the image is damaged or of a layout this version does not know: give the symbols another way (--kallsyms "
        "with a /proc/kallsyms dump of that kernel, --system-map, or --vmlinux from the -dbg package)";
    return e;
  }
  for (size_t i = 1; i < accepted.size(); ++i)
    if (!same_symbols(accepted[0].symbols, accepted[i].symbols))
      return make_error(ExitCode::bad_input,
                        "{}: the kallsyms tables decode in {} different ways that all pass the checks ({} at {:#x} and "
                        "{} at {:#x}): refusing to guess",
                        origin, accepted.size(), layout_name(accepted[0].hypothesis.layout), accepted[0].tables.front().address,
                        layout_name(accepted[i].hypothesis.layout), accepted[i].tables.front().address);

  Decoding& d = accepted.front();
  ImageKallsyms out;
  out.layout = d.hypothesis.layout;
  out.address_form = d.hypothesis.form;
  out.long_names = d.names->long_seen;
  out.table_entries = d.names->count;
  out.tables = d.tables;
  out.self_checked = d.self_checked;
  out.checks = {
      "token index gives the offset of each of the 256 tokens",
      fmt::format("{} names walk to the end of the names table; all {} markers agree", d.names->count, d.names->every_256th.size()),
      "every name expands from used tokens and starts with its type letter",
      "addresses are sorted",
      fmt::format("_text at the ELF's .text ({:#x})", text_address),
  };
  if (d.hypothesis.seqs) out.checks.push_back("seqs_of_names is a permutation of the symbols");
  if (d.self_checked)
    out.checks.push_back(fmt::format("{} kallsyms_* tables listed as symbols decode to where they were found", d.self_checked));
  std::string table_origin = fmt::format("{} ({} layout)", origin, layout_name(out.layout));
  out.symbols = SymbolTable(std::move(d.symbols), SymbolSource::image, std::move(table_origin));
  return out;
}

Json to_json(const ImageKallsyms& k, bool with_symbols) {
  Json j = Json::object();
  j.set("layout", std::string(layout_name(k.layout)));
  j.set("layout_kernels", std::string(layout_kernels(k.layout)));
  j.set("address_form", std::string(address_form_name(k.address_form)));
  j.set("name_lengths", k.long_names ? "one or two bytes (some name needed two)" : "one byte (no name needed two)");
  j.set("num_syms", k.table_entries);
  j.set("count", k.symbols.size());
  Json tables = Json::array();
  for (const auto& t : k.tables) {
    Json o = Json::object();
    o.set("name", t.name);
    o.set("address", fmt::format("{:016x}", t.address));
    o.set("size", t.size);
    tables.push(std::move(o));
  }
  j.set("tables", std::move(tables));
  j.set("checks", Json::strings(k.checks));
  if (with_symbols) {
    Json syms = Json::array();
    for (const auto& s : k.symbols.symbols()) {
      Json o = Json::object();
      o.set("address", fmt::format("{:016x}", s.address));
      o.set("type", std::string(1, s.type));
      o.set("name", s.name);
      syms.push(std::move(o));
    }
    j.set("symbols", std::move(syms));
  }
  return j;
}

}  // namespace rr::analysis
