// Kernel symbol tables: kallsyms/System.map parsing, sympos as livepatch counts it, gcc's clone suffixes.
#include "analysis/symbols.h"
#include "test_util.h"

#include <gtest/gtest.h>

using namespace rr;
using namespace rr::analysis;

namespace {

// Lines as /proc/kallsyms prints them, in address order for vmlinux, modules after.
const char* kKallsyms =
    "ffffffff81000000 T _text\n"
    "ffffffff81000000 T _stext\n"
    "ffffffff81234560 t dup_fn\n"
    "ffffffff81300000 t intel_iommu_attach_device\n"
    "ffffffff81300400 t intel_iommu_get_resv_regions\n"
    "ffffffff81400000 t dup_fn\n"
    "ffffffff81500000 t intel_iommu_attach_device.cold\n"
    "ffffffff81500100 t helper.isra.0\n"
    "ffffffff81500200 t helper.constprop.0.isra.0\n"
    "ffffffff81500300 t helper.part.1.cold\n"
    "ffffffff81500400 t __func__.12\n"
    "ffffffff81500500 t helperx.cold\n"
    "ffffffff82a00000 d dmar_rmrr_units\n"
    "ffffffff82a00100 D dmar_global_lock\n"
    "ffffffff81100000 t dup_fn\n"  // out of order on purpose: sympos goes by address, not by line
    "ffffffffc0001000 t dup_fn\t[kvm]\n"
    "ffffffffc0002000 t dup_fn\t[kvm]\n"
    "ffffffffc0003000 T vfio_pin_pages\t[vfio]\n";

TEST(Symbols, ParsesKallsymsWithModules) {
  auto t = parse_kallsyms(kKallsyms);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->size(), 18u);
  EXPECT_TRUE(t->addresses_known());
  const Symbol* a = t->first("intel_iommu_attach_device");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->type, 't');
  EXPECT_EQ(a->address, 0xffffffff81300000ull);
  EXPECT_TRUE(a->in_vmlinux());
  EXPECT_TRUE(a->is_function());
  EXPECT_FALSE(a->is_global());
  const Symbol* v = t->first("vfio_pin_pages");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->module, "vfio");
  EXPECT_FALSE(v->in_vmlinux());
  const Symbol* d = t->first("dmar_rmrr_units");
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(d->is_function());
  EXPECT_EQ(t->first("no_such_symbol"), nullptr);
  EXPECT_FALSE(t->contains("no_such_symbol"));
}

TEST(Symbols, SymposIsZeroForUniqueNames) {
  auto t = parse_kallsyms(kKallsyms);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->sympos(*t->first("intel_iommu_attach_device")), 0u);
  EXPECT_EQ(t->sympos(*t->first("dmar_rmrr_units")), 0u);
  // Unique inside its module even though vmlinux has none.
  EXPECT_EQ(t->sympos(*t->first("vfio_pin_pages")), 0u);
}

TEST(Symbols, SymposRanksDuplicatesByAddress) {
  auto t = parse_kallsyms(kKallsyms);
  ASSERT_TRUE(t.ok());
  auto dups = t->find_vmlinux("dup_fn");
  ASSERT_EQ(dups.size(), 3u);
  EXPECT_EQ(dups[0]->address, 0xffffffff81100000ull);
  EXPECT_EQ(dups[1]->address, 0xffffffff81234560ull);
  EXPECT_EQ(dups[2]->address, 0xffffffff81400000ull);
  for (unsigned i = 0; i < 3; ++i) EXPECT_EQ(t->sympos(*dups[i]), i + 1) << i;
  // The module copies count within their module only.
  auto all = t->find("dup_fn");
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[3]->module, "kvm");
  EXPECT_EQ(t->sympos(*all[3]), 1u);
  EXPECT_EQ(t->sympos(*all[4]), 2u);
  // A symbol from elsewhere is not in the table.
  Symbol stranger{"dup_fn", 't', 0x1234, 0, ""};
  EXPECT_FALSE(t->sympos(stranger).has_value());
}

TEST(Symbols, HiddenAddressesKeepFileOrder) {
  auto t = parse_kallsyms(
      "0000000000000000 T _text\n"
      "0000000000000000 t dup_fn\n"
      "0000000000000000 t other\n"
      "0000000000000000 t dup_fn\n");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->addresses_known());
  auto dups = t->find_vmlinux("dup_fn");
  ASSERT_EQ(dups.size(), 2u);
  EXPECT_EQ(dups[0], &t->symbols()[1]);
  EXPECT_EQ(dups[1], &t->symbols()[3]);
  EXPECT_EQ(t->sympos(*dups[0]), 1u);
  EXPECT_EQ(t->sympos(*dups[1]), 2u);
}

TEST(Symbols, SplitsGccCloneSuffixes) {
  EXPECT_EQ(split_variant("intel_iommu_attach_device.cold").base, "intel_iommu_attach_device");
  EXPECT_EQ(split_variant("intel_iommu_attach_device.cold").suffix, ".cold");
  EXPECT_EQ(split_variant("f.cold.12").base, "f");
  EXPECT_EQ(split_variant("f.isra.0").base, "f");
  EXPECT_EQ(split_variant("f.constprop.0.isra.0").base, "f");
  EXPECT_EQ(split_variant("f.constprop.0.isra.0").suffix, ".constprop.0.isra.0");
  EXPECT_EQ(split_variant("f.part.3.cold").base, "f");
  EXPECT_EQ(split_variant("f.lto_priv.0").base, "f");
  // Not clones: compiler-generated statics and plain names.
  EXPECT_EQ(split_variant("__func__.12").suffix, "");
  EXPECT_EQ(split_variant("CSWTCH.123").suffix, "");
  EXPECT_EQ(split_variant("f.isra").suffix, "");
  EXPECT_EQ(split_variant("f.isra.x").suffix, "");
  EXPECT_EQ(split_variant("f.coldness").suffix, "");
  EXPECT_EQ(split_variant(".cold").base, ".cold");
  EXPECT_EQ(base_name("plain"), "plain");
}

TEST(Symbols, FindsVariantsOfABaseName) {
  auto t = parse_kallsyms(kKallsyms);
  ASSERT_TRUE(t.ok());
  auto v = t->variants("intel_iommu_attach_device");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0]->name, "intel_iommu_attach_device.cold");
  std::vector<std::string> names;
  for (const Symbol* s : t->variants("helper")) names.push_back(s->name);
  EXPECT_EQ(names, (std::vector<std::string>{"helper.isra.0", "helper.constprop.0.isra.0", "helper.part.1.cold"}));
  EXPECT_TRUE(t->variants("intel_iommu_get_resv_regions").empty());
  EXPECT_TRUE(t->variants("__func__").empty());
}

TEST(Symbols, MalformedKallsymsLinesAreErrorsWithLineNumbers) {
  struct Case {
    const char* text;
    const char* expect;
  } cases[] = {
      {"ffffffff81000000 T _text\nnot a symbol line\n", "line 2"},
      {"zzzz T x\n", "line 1"},
      {"ffffffff81000000 TT x\n", "line 1"},
      {"ffffffff81000000 T\n", "line 1"},
      {"ffffffff810000001234 T x\n", "line 1"},  // wider than 64 bits
      {"ffffffff81000000 T x [mod\n", "line 1"},
      {"ffffffff81000000 T x\t[a b]\n", "line 1"},
      {"ffffffff81000000 1 x\n", "line 1"},
      {"", "no symbols"},
      {"\n\n", "no symbols"},
  };
  for (const auto& c : cases) {
    auto t = parse_kallsyms(c.text, "dump");
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.error().code, ExitCode::bad_input);
    EXPECT_NE(t.error().message.find(c.expect), std::string::npos) << t.error().message;
  }
}

TEST(Symbols, ToleratesCrlfAndBlankLines) {
  auto t = parse_kallsyms("ffffffff81000000 T _text\r\n\r\nffffffff81000010 t foo\r\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->size(), 2u);
  EXPECT_NE(t->first("foo"), nullptr);
}

TEST(Symbols, SystemMapHasNoModules) {
  auto t = parse_system_map("ffffffff81000000 T _text\nffffffff81000100 t intel_iommu_attach_device\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->source(), SymbolSource::system_map);
  EXPECT_EQ(t->sympos(*t->first("intel_iommu_attach_device")), 0u);
  auto bad = parse_system_map("ffffffff81000000 T x\t[mod]\n");
  EXPECT_FALSE(bad.ok());
}

TEST(Symbols, DebianDummySystemMapIsReportedAsSuch) {
  // The one line Debian's linux-image package ships as /boot/System.map-*.
  test::TempDir dir;
  auto path = dir.path() / "System.map-6.1.0-56-amd64";
  ASSERT_TRUE(write_file_text(path, "ffffffffffffffff B The real System.map is in the linux-image-<version>-dbg package\n"));
  auto t = read_system_map(path);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::missing);
  EXPECT_NE(t.error().message.find("placeholder"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().hint.find("-dbg"), std::string::npos);
  EXPECT_NE(t.error().hint.find("--kallsyms"), std::string::npos);
}

TEST(Symbols, ReadKallsymsNamesTheMissingFile) {
  auto t = read_kallsyms("/nonexistent/kallsyms");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::missing);
  EXPECT_NE(t.error().message.find("/nonexistent/kallsyms"), std::string::npos);
}

TEST(Symbols, RandomBytesNeverCrashTheParser) {
  uint32_t seed = 12345;
  for (int round = 0; round < 200; ++round) {
    std::string text;
    for (int i = 0; i < 300; ++i) {
      seed = seed * 1103515245u + 12345u;
      text.push_back(static_cast<char>((seed >> 16) & 0xff));
    }
    auto t = parse_kallsyms(text);
    if (!t) {
      EXPECT_FALSE(t.error().message.empty());
    }
  }
}

}  // namespace

namespace {

TEST(Symbols, CopiesAndMovesKeepWorkingIndexes) {
  std::optional<SymbolTable> copy;
  SymbolTable moved;
  {
    auto t = parse_kallsyms(kKallsyms);
    ASSERT_TRUE(t.ok());
    copy = *t;  // copy: its index must point at its own names
    moved = std::move(t).value();  // move: the index travels with the symbols
  }
  for (const SymbolTable* t : {&*copy, &moved}) {
    ASSERT_NE(t->first("intel_iommu_attach_device"), nullptr);
    EXPECT_EQ(t->find_vmlinux("dup_fn").size(), 3u);
    EXPECT_EQ(t->variants("helper").size(), 3u);
    EXPECT_EQ(t->sympos(*t->find_vmlinux("dup_fn")[2]), 3u);
  }
  // The copy's answers are its own symbols, not the original's.
  EXPECT_EQ(copy->first("dmar_rmrr_units"), &copy->symbols()[12]);
}

}  // namespace
