// Synthetic kallsyms tables: an encoder written from the table formats in docs/design.md, so the decoder's tests
// can lay out every layout, address form and alignment the kernel has used, and break them on purpose.
#pragma once

#include "analysis/image_kallsyms.h"
#include "analysis_fixtures.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <string>
#include <vector>

namespace rr::test {

struct KallsymsSymbol {
  uint64_t address;
  char type;
  std::string name;
};

struct KallsymsSpec {
  analysis::KallsymsLayout layout = analysis::KallsymsLayout::num_syms_first;
  analysis::KallsymsAddressForm form = analysis::KallsymsAddressForm::absolute_percpu;
  size_t alignment = 8;
  std::vector<KallsymsSymbol> symbols;  // sorted by address
  bool self_symbols = false;  // add kallsyms_* entries at the tables' own addresses (6.11 on)
  std::string prefix = "junk before the tables";  // .rodata bytes before the first table
};

constexpr uint64_t kTextAddress = 0xffffffff81000000ull;
constexpr uint64_t kRodataAddress = 0xffffffff82000000ull;

// Where the encoder put each table (offsets in .rodata).
struct KallsymsLayoutMap {
  std::map<std::string, size_t> at;
  size_t end = 0;
};

class KallsymsEncoder {
 public:
  explicit KallsymsEncoder(KallsymsSpec spec) : spec_(std::move(spec)) {}

  Bytes rodata() {
    std::vector<KallsymsSymbol> syms = spec_.symbols;
    if (spec_.self_symbols) {
      // Two passes: the kallsyms_* names take the same room wherever they point, so the tables do not move.
      for (const char* n : {"kallsyms_num_syms", "kallsyms_names", "kallsyms_markers", "kallsyms_token_table", "kallsyms_token_index",
                            "kallsyms_offsets", "kallsyms_relative_base", "kallsyms_seqs_of_names"})
        syms.push_back({kRodataAddress, 'D', n});
      std::stable_sort(syms.begin(), syms.end(), [](auto& a, auto& b) { return a.address < b.address; });
      encode(syms);
      for (auto& s : syms)
        if (auto it = map_.at.find(s.name); it != map_.at.end()) s.address = kRodataAddress + it->second;
      std::stable_sort(syms.begin(), syms.end(), [](auto& a, auto& b) { return a.address < b.address; });
    }
    encoded_ = syms;
    return encode(syms);
  }
  const KallsymsLayoutMap& map() const { return map_; }
  const std::vector<KallsymsSymbol>& encoded_symbols() const { return encoded_; }

 private:
  void build_tokens(const std::vector<std::string>& names) {
    tokens_.assign(256, "");
    std::vector<bool> used(256);
    for (const auto& n : names)
      for (unsigned char c : n) used[c] = true;
    for (unsigned c = '0'; c <= '9'; ++c) used[c] = true;  // the kernel's names always have digits
    for (unsigned c = 0; c < 256; ++c)
      if (used[c]) tokens_[c] = std::string(1, static_cast<char>(c));
    // Unused slots get frequent substrings, stored fully expanded like the kernel's.
    std::map<std::string, size_t> counts;
    for (const auto& n : names)
      for (size_t len : {2u, 3u, 5u})
        for (size_t i = 0; i + len <= n.size(); ++i) ++counts[n.substr(i, len)];
    std::vector<std::pair<size_t, std::string>> best;
    for (auto& [s, c] : counts) best.push_back({c, s});
    std::sort(best.rbegin(), best.rend());
    size_t b = 0;
    for (unsigned slot = 0; slot < 256 && b < best.size(); ++slot)
      if (!used[slot]) tokens_[slot] = best[b++].second;
  }

  Bytes encode_name(const std::string& full) const {
    Bytes out;
    for (size_t i = 0; i < full.size();) {
      size_t best_len = 0;
      unsigned best = 0;
      for (unsigned t = 0; t < 256; ++t) {
        const auto& tok = tokens_[t];
        if (!tok.empty() && tok.size() > best_len && full.compare(i, tok.size(), tok) == 0) {
          best_len = tok.size();
          best = t;
        }
      }
      out.push_back(static_cast<uint8_t>(best));
      i += best_len;
    }
    return out;
  }

  void label(Bytes& r, const std::string& name) {
    size_t a = spec_.alignment;
    while ((kRodataAddress + r.size()) % a) r.push_back(0);
    map_.at[name] = r.size();
  }
  static void put32(Bytes& r, uint32_t v) {
    for (int i = 0; i < 4; ++i) r.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  static void put64(Bytes& r, uint64_t v) {
    for (int i = 0; i < 8; ++i) r.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }

  Bytes encode(const std::vector<KallsymsSymbol>& syms) {
    using analysis::KallsymsAddressForm;
    using analysis::KallsymsLayout;
    map_ = {};
    std::vector<std::string> full;
    for (const auto& s : syms) full.push_back(std::string(1, s.type) + s.name);
    build_tokens(full);
    size_t n = syms.size();
    uint64_t base = ~0ull;
    for (const auto& s : syms)
      if (s.address >= 0xffff800000000000ull) base = std::min(base, s.address);

    Bytes r(spec_.prefix.begin(), spec_.prefix.end());
    auto offsets = [&] {
      label(r, spec_.form == KallsymsAddressForm::absolute ? "kallsyms_addresses" : "kallsyms_offsets");
      for (size_t i = 0; i < n; ++i) {
        uint64_t a = syms[i].address;
        switch (spec_.form) {
          case KallsymsAddressForm::absolute: put64(r, a); break;
          case KallsymsAddressForm::absolute_percpu:
            put32(r, a < 0xffff800000000000ull ? static_cast<uint32_t>(a) : static_cast<uint32_t>(base - 1 - a));
            break;
          case KallsymsAddressForm::base_relative: put32(r, static_cast<uint32_t>(a - base)); break;
          case KallsymsAddressForm::place_relative: put32(r, static_cast<uint32_t>(a - (kRodataAddress + r.size()))); break;
        }
      }
    };
    auto relative_base = [&] {
      label(r, "kallsyms_relative_base");
      put64(r, base);
    };
    auto num_syms = [&] {
      label(r, "kallsyms_num_syms");
      put32(r, static_cast<uint32_t>(n));
    };
    std::vector<uint32_t> markers;
    auto names = [&] {
      label(r, "kallsyms_names");
      size_t start = r.size();
      for (size_t i = 0; i < n; ++i) {
        if (i % 256 == 0) markers.push_back(static_cast<uint32_t>(r.size() - start));
        Bytes e = encode_name(full[i]);
        if (e.size() >= 0x80) {
          r.push_back(static_cast<uint8_t>(0x80 | (e.size() & 0x7f)));
          r.push_back(static_cast<uint8_t>(e.size() >> 7));
        } else {
          r.push_back(static_cast<uint8_t>(e.size()));
        }
        r.insert(r.end(), e.begin(), e.end());
      }
    };
    auto markers_table = [&] {
      label(r, "kallsyms_markers");
      for (uint32_t m : markers) put32(r, m);
    };
    auto seqs = [&] {
      label(r, "kallsyms_seqs_of_names");
      std::vector<size_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return syms[a].name < syms[b].name; });
      for (size_t i : order) {
        r.push_back(static_cast<uint8_t>(i >> 16));
        r.push_back(static_cast<uint8_t>(i >> 8));
        r.push_back(static_cast<uint8_t>(i));
      }
    };
    auto token_tables = [&] {
      label(r, "kallsyms_token_table");
      size_t start = r.size();
      std::vector<uint16_t> index;
      for (const auto& t : tokens_) {
        index.push_back(static_cast<uint16_t>(r.size() - start));
        r.insert(r.end(), t.begin(), t.end());
        r.push_back(0);
      }
      label(r, "kallsyms_token_index");
      for (uint16_t v : index) {
        r.push_back(static_cast<uint8_t>(v));
        r.push_back(static_cast<uint8_t>(v >> 8));
      }
    };
    switch (spec_.layout) {
      case KallsymsLayout::absolute:
        offsets();
        num_syms();
        names();
        markers_table();
        token_tables();
        break;
      case KallsymsLayout::offsets_first:
        offsets();
        relative_base();
        num_syms();
        names();
        markers_table();
        token_tables();
        break;
      case KallsymsLayout::offsets_first_seqs:
        offsets();
        relative_base();
        num_syms();
        names();
        markers_table();
        seqs();
        token_tables();
        break;
      case KallsymsLayout::num_syms_first:
        num_syms();
        names();
        markers_table();
        token_tables();
        offsets();
        relative_base();
        seqs();
        break;
      case KallsymsLayout::num_syms_first_no_base:
        num_syms();
        names();
        markers_table();
        token_tables();
        offsets();
        seqs();
        break;
    }
    map_.end = r.size();
    std::string tail = "trailing rodata";
    r.insert(r.end(), tail.begin(), tail.end());
    return r;
  }

  KallsymsSpec spec_;
  std::vector<std::string> tokens_;
  KallsymsLayoutMap map_;
  std::vector<KallsymsSymbol> encoded_;
};

// A kernel-like symbol list: per-CPU symbols at small addresses (type A) first, then text from _text, then data.
inline std::vector<KallsymsSymbol> sample_kallsyms(size_t text_symbols, bool percpu = true, size_t long_names = 0) {
  std::vector<KallsymsSymbol> s;
  if (percpu) {
    s.push_back({0x0, 'A', "fixed_percpu_data"});
    s.push_back({0x1000, 'A', "cpu_debug_store"});
  }
  s.push_back({kTextAddress, 'T', "_text"});
  s.push_back({kTextAddress, 'T', "startup_64"});
  for (size_t i = 0; i < text_symbols; ++i) {
    std::string name = fmt::format("{}_{}_{}", i % 3 ? "intel_iommu" : "dmar_unit", i % 7 ? "probe" : "attach", i);
    if (i < long_names) {  // 400 varied characters stay over 127 bytes once compressed: two-byte lengths
      uint32_t x = static_cast<uint32_t>(i) * 2654435761u + 1;
      name += '_';
      for (int k = 0; k < 400; ++k, x = x * 1103515245u + 12345u) name += "abcdefghijklmnopqrstuvwxyz_0123456789"[(x >> 16) % 37];
    }
    s.push_back({kTextAddress + 0x100 + 0x10 * i, (i % 4) ? 't' : 'T', name});
  }
  s.push_back({kRodataAddress + 0x800000, 'D', "dmar_global_lock"});
  s.push_back({kRodataAddress + 0x800010, 'd', "dmar_rmrr_units"});
  return s;
}

// Bytes crafted so that almost every position starts a long names walk (`03 20 00 00` repeated), followed by
// `tables` token tables: the decoder's work budget must refuse them quickly.
inline Bytes names_walk_bomb(size_t tables) {
  Bytes r;
  for (size_t i = 0; i < 9216; ++i) r.insert(r.end(), {0x03, 0x20, 0x00, 0x00});
  for (size_t k = 0; k < tables; ++k) {
    while (r.size() % 8) r.push_back(0);
    size_t start = r.size();
    std::vector<uint16_t> index;
    for (unsigned t = 0; t < 256; ++t) {
      index.push_back(static_cast<uint16_t>(r.size() - start));
      std::string tok = t == 0x20 ? "T" : (t > 0x20 && t < 0x7f) ? std::string(1, static_cast<char>(t)) : fmt::format("z{:02x}", t);
      r.insert(r.end(), tok.begin(), tok.end());
      r.push_back(0);
    }
    while (r.size() % 8) r.push_back(0);
    for (uint16_t v : index) r.insert(r.end(), {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)});
  }
  return r;
}

// A vmlinux-like ELF whose .rodata holds `rodata`.
inline Bytes kallsyms_vmlinux(const Bytes& rodata, uint64_t text_address = kTextAddress) {
  std::vector<SectionSpec> secs;
  secs.push_back({".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_address, Bytes(0x100, 0xcc)});
  secs.push_back({".rodata", SHT_PROGBITS, SHF_ALLOC, kRodataAddress, rodata});
  return build_elf(secs, {});
}

}  // namespace rr::test
