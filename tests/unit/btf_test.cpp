// Btf over synthetic BTF built with libbpf's btf__add_* API, and corrupt BTF.
#include "analysis/btf.h"
#include "analysis_fixtures.h"
#include "elf/elf_file.h"
#include "verify/layout_probe.h"

#include <bpf/btf.h>
#include <gtest/gtest.h>

using namespace rr;
using namespace rr::analysis;

namespace {

Btf load(const test::BtfSpec& spec) {
  Bytes raw = test::build_btf(spec);
  auto b = Btf::from_bytes(ByteView(raw.data(), raw.size()), "synthetic");
  if (!b) ADD_FAILURE() << b.error().message;
  return std::move(b).value();
}

TEST(Btf, StructSizesAndMembers) {
  Btf b = load({.dev_iommu = true, .require_direct = true});
  EXPECT_GT(b.type_count(), 10u);
  EXPECT_EQ(b.struct_size("dev_iommu"), 24u);
  EXPECT_EQ(b.struct_size("bug_entry"), 12u);
  EXPECT_FALSE(b.struct_size("no_such_struct").has_value());
  auto rd = b.member("dev_iommu", "require_direct");
  ASSERT_TRUE(rd.has_value());
  EXPECT_EQ(rd->bit_offset, 162u);
  EXPECT_EQ(rd->bitfield_size, 1u);
  auto lock = b.member("dev_iommu", "lock");
  ASSERT_TRUE(lock.has_value());
  EXPECT_EQ(lock->bit_offset, 0u);
  EXPECT_EQ(lock->bitfield_size, 0u);
  // A member of the anonymous union, at the union's offset.
  auto fw = b.member("dev_iommu", "iopf_param");
  ASSERT_TRUE(fw.has_value());
  EXPECT_EQ(fw->bit_offset, 64u);
  EXPECT_FALSE(b.member("dev_iommu", "nope").has_value());
  EXPECT_FALSE(b.member("nope", "lock").has_value());
}

// Type ids run from 1 to type_count() - 1 (void is id 0): libbpf before 0.7 counts without void
// (analysis/btf_compat.h). Off by one, the last type of the BTF would never be found by a scan of the ids.
TEST(Btf, TypeCountIncludesVoidAndTheLastTypeIsScanned) {
  struct btf* raw = btf__new_empty();
  ASSERT_NE(raw, nullptr);
  int intt = btf__add_int(raw, "int", 4, BTF_INT_SIGNED);  // id 1
  ASSERT_EQ(intt, 1);
  ASSERT_EQ(btf__add_struct(raw, "last_one", 8), 2);  // id 2, the last type
  ASSERT_EQ(btf__add_field(raw, "a", intt, 0, 0), 0);
  ASSERT_EQ(btf__add_field(raw, "b", intt, 32, 0), 0);
  uint32_t size = 0;
  const void* data = btf__raw_data(raw, &size);
  Bytes bytes(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + size);
  btf__free(raw);
  auto b = Btf::from_bytes(ByteView(bytes.data(), bytes.size()), "two types");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->type_count(), 3u);
  std::string why_not;
  auto layout = verify::btf_layout(*b, "last_one", why_not);
  ASSERT_TRUE(layout.has_value()) << why_not;
  EXPECT_EQ(layout->btf_size, 8u);
  ASSERT_EQ(layout->members.size(), 2u);
  EXPECT_EQ(layout->members[1].name, "b");
  EXPECT_EQ(layout->members[1].btf_offset, 4u);
}

// sizeof without the tail padding: what an asm-built table's last entry must at least hold.
TEST(Btf, StructDataEndLeavesOutTheTailPadding) {
  struct btf* raw = btf__new_empty();
  ASSERT_NE(raw, nullptr);
  int u8 = btf__add_int(raw, "u8", 1, 0);
  int ptr = btf__add_ptr(raw, u8);
  btf__add_struct(raw, "paravirt_patch_site", 16);
  btf__add_field(raw, "instr", ptr, 0, 0);
  btf__add_field(raw, "type", u8, 64, 0);
  btf__add_field(raw, "len", u8, 72, 0);
  btf__add_struct(raw, "flags", 4);
  btf__add_field(raw, "a", u8, 0, 3);  // bitfields: 3 bits, then 6 bits from bit 3
  btf__add_field(raw, "b", u8, 3, 6);
  uint32_t size = 0;
  const void* data = btf__raw_data(raw, &size);
  Bytes bytes(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + size);
  btf__free(raw);
  auto b = Btf::from_bytes(ByteView(bytes.data(), bytes.size()), "padding");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->struct_size("paravirt_patch_site"), 16u);
  EXPECT_EQ(b->struct_data_end("paravirt_patch_site"), 10u);
  EXPECT_EQ(b->struct_data_end("flags"), 2u);
  EXPECT_FALSE(b->struct_data_end("absent").has_value());
}

TEST(Btf, Functions) {
  Btf b = load({});
  auto f = b.function("intel_iommu_attach_device");
  ASSERT_TRUE(f.has_value());
  EXPECT_FALSE(f->global);
  EXPECT_EQ(f->params, (std::vector<std::string>{"domain", "dev"}));
  auto g = b.function("iommu_alloc_resv_region");
  ASSERT_TRUE(g.has_value());
  EXPECT_TRUE(g->global);
  EXPECT_FALSE(b.function("device_rmrr_is_relaxable").has_value());
  Btf without = load({.attach_func = false});
  EXPECT_FALSE(without.function("intel_iommu_attach_device").has_value());
}

TEST(Btf, FactsTellTheEraField) {
  std::vector<std::string> fns{"intel_iommu_attach_device", "device_rmrr_is_relaxable"};
  auto modern = collect_btf_facts(load({.dev_iommu = true, .require_direct = true}), fns);
  EXPECT_TRUE(modern.has_dev_iommu);
  ASSERT_TRUE(modern.require_direct.has_value());
  EXPECT_EQ(modern.require_direct->bit_offset, 162u);
  auto old = collect_btf_facts(load({.dev_iommu = true, .require_direct = false}), fns);
  EXPECT_TRUE(old.has_dev_iommu);
  EXPECT_FALSE(old.require_direct.has_value());
  auto ancient = collect_btf_facts(load({.dev_iommu = false}), fns);
  EXPECT_FALSE(ancient.has_dev_iommu);
  EXPECT_FALSE(ancient.require_direct.has_value());
  // Entry sizes in the documented order; absent ones are nullopt.
  ASSERT_EQ(old.entry_sizes.size(), special_section_structs().size());
  EXPECT_EQ(old.entry_sizes[0], (std::pair<std::string, std::optional<uint64_t>>{"bug_entry", 12}));
  EXPECT_EQ(old.entry_sizes[1].second, 16u);
  EXPECT_EQ(old.entry_sizes[2].second, 12u);
  EXPECT_EQ(old.entry_sizes[3].second, 8u);
  EXPECT_EQ(old.entry_sizes[4].second, 6u);
  EXPECT_EQ(old.entry_sizes[5].second, 12u);
  EXPECT_FALSE(old.entry_sizes[6].second.has_value());  // paravirt_patch_site not in the synthetic BTF
  ASSERT_EQ(old.functions.size(), 2u);
  EXPECT_TRUE(old.functions[0].second.has_value());
  EXPECT_FALSE(old.functions[1].second.has_value());
}

TEST(Btf, FromElfSectionAndFile) {
  Bytes raw = test::build_btf({.require_direct = true});
  test::TempDir dir;
  auto elf_path = dir.path() / "vmlinux";
  Bytes elf = test::build_vmlinux(raw, false);
  ASSERT_TRUE(write_file_text(elf_path, std::string_view(reinterpret_cast<const char*>(elf.data()), elf.size())));
  auto from_elf = Btf::open(elf_path);
  ASSERT_TRUE(from_elf.ok()) << from_elf.error().message;
  EXPECT_TRUE(from_elf->member("dev_iommu", "require_direct").has_value());
  auto raw_path = dir.path() / "btf";
  ASSERT_TRUE(write_file_text(raw_path, std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size())));
  auto from_raw = Btf::open(raw_path);
  ASSERT_TRUE(from_raw.ok()) << from_raw.error().message;
  EXPECT_EQ(from_raw->type_count(), from_elf->type_count());
  // An ELF without .BTF says so.
  auto plain = elf::ElfFile::from_bytes(test::build_vmlinux({}, false), "nobtf");
  ASSERT_TRUE(plain.ok());
  auto none = Btf::from_elf(*plain);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ExitCode::missing);
  EXPECT_NE(none.error().message.find("CONFIG_DEBUG_INFO_BTF"), std::string::npos);
}

TEST(Btf, CorruptBtfIsAnError) {
  Bytes raw = test::build_btf({});
  auto empty = Btf::from_bytes(ByteView(), "empty");
  EXPECT_FALSE(empty.ok());
  Bytes junk = test::to_bytes("definitely not BTF at all, just some text");
  auto j = Btf::from_bytes(ByteView(junk.data(), junk.size()), "junk");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, ExitCode::bad_input);
  EXPECT_NE(j.error().message.find("junk"), std::string::npos);
  size_t errors = 0;
  for (size_t len = 0; len < raw.size(); len += 5) {
    auto b = Btf::from_bytes(ByteView(raw.data(), len), "cut");
    if (!b) ++errors;
  }
  EXPECT_GT(errors, 0u);
  // Bit flips in the header and type section: an error or a usable object, never a crash.
  for (size_t i = 0; i < std::min<size_t>(raw.size(), 160); ++i) {
    Bytes b = raw;
    b[i] ^= 0x5a;
    auto r = Btf::from_bytes(ByteView(b.data(), b.size()), "flip");
    if (r) {
      (void)r->struct_size("dev_iommu");
      (void)r->member("dev_iommu", "require_direct");
      (void)r->function("intel_iommu_attach_device");
    }
  }
}

}  // namespace
