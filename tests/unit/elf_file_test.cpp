// ElfFile over synthetic ELF objects written with libelf, and corrupt variants of them.
#include "elf/elf_file.h"
#include "analysis/symbols.h"
#include "analysis_fixtures.h"

#include <gtest/gtest.h>

using namespace rr;
using namespace rr::analysis;

namespace {

TEST(ElfFile, ReadsSectionsAndAddresses) {
  Bytes btf = test::to_bytes("BTFBYTES");
  auto elf = elf::ElfFile::from_bytes(test::build_vmlinux(btf, true), "synthetic");
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  EXPECT_TRUE(elf->is_64bit());
  EXPECT_EQ(elf->machine(), EM_X86_64);
  EXPECT_EQ(elf->file_type(), ET_EXEC);
  const elf::ElfSection* text = elf->section(".text");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->address, 0xffffffff81000000ull);
  EXPECT_EQ(text->size, 0x400u);
  EXPECT_TRUE(text->flags & SHF_EXECINSTR);
  auto b = elf->section_data(".BTF");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->string_at(0, b->size()), "BTFBYTES");
  EXPECT_EQ(elf->section(".nope"), nullptr);
  auto missing = elf->section_data(".nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ExitCode::missing);
  auto bss = elf->section_data(".bss");
  EXPECT_FALSE(bss.ok());  // NOBITS has no file contents
  // Bytes by virtual address: inside .text, and not across its end.
  auto code = elf->bytes_at(0xffffffff81000100ull, 16);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(code->data()[0], 0xcc);
  EXPECT_FALSE(elf->bytes_at(0xffffffff810003f8ull, 16).has_value());
  EXPECT_FALSE(elf->bytes_at(0x1000, 1).has_value());
}

TEST(ElfFile, SymbolsCarryNmLetters) {
  auto elf = elf::ElfFile::from_bytes(test::build_vmlinux({}, true), "synthetic");
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  ASSERT_TRUE(elf->has_symtab());
  auto raw = elf->symbols();
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(raw->size(), 10u);
  auto t = symbols_from_elf(*elf);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->source(), SymbolSource::elf);
  auto letter = [&](const char* n) { return t->first(n) ? t->first(n)->type : '-'; };
  EXPECT_EQ(letter("intel_iommu_attach_device"), 't');
  EXPECT_EQ(letter("dmar_rmrr_units"), 'd');
  EXPECT_EQ(letter("dmar_global_lock"), 'D');
  EXPECT_EQ(letter("some_const"), 'R');
  EXPECT_EQ(letter("_text"), 'T');
  EXPECT_EQ(letter("weak_fn"), 'W');
  EXPECT_EQ(t->first("intel_iommu_attach_device")->size, 0x80u);
  // Duplicates ranked by address although the symtab lists the higher one first.
  auto dups = t->find_vmlinux("dup_helper");
  ASSERT_EQ(dups.size(), 2u);
  EXPECT_EQ(dups[0]->address, 0xffffffff81000180ull);
  EXPECT_EQ(t->sympos(*dups[0]), 1u);
  EXPECT_EQ(t->sympos(*dups[1]), 2u);
  EXPECT_EQ(t->variants("intel_iommu_attach_device").size(), 1u);
}

TEST(ElfFile, StrippedElfHasNoSymbols) {
  auto elf = elf::ElfFile::from_bytes(test::build_vmlinux({}, false), "stripped");
  ASSERT_TRUE(elf.ok());
  EXPECT_FALSE(elf->has_symtab());
  auto t = symbols_from_elf(*elf);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::missing);
  EXPECT_NE(t.error().message.find("stripped"), std::string::npos);
}

TEST(ElfFile, NotAnElfIsACleanError) {
  auto e = elf::ElfFile::from_bytes(test::to_bytes("MZ this is not an ELF"), "x.bin");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, ExitCode::bad_input);
  EXPECT_NE(e.error().message.find("x.bin"), std::string::npos);
  EXPECT_FALSE(elf::ElfFile::from_bytes({}, "empty").ok());
  auto missing = elf::ElfFile::open("/nonexistent/vmlinux");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ExitCode::missing);
}

TEST(ElfFile, EveryTruncationIsAnErrorOrConsistent) {
  Bytes full = test::build_vmlinux(test::to_bytes("BTFBYTES"), true);
  // Cut at every 7th length: never a crash; either an Error, or a file whose sections all lie inside it.
  size_t errors = 0;
  for (size_t len = 0; len < full.size(); len += 7) {
    Bytes cut(full.begin(), full.begin() + static_cast<long>(len));
    auto e = elf::ElfFile::from_bytes(cut, "cut");
    if (!e) {
      ++errors;
      EXPECT_FALSE(e.error().message.empty());
      continue;
    }
    for (const auto& s : e->sections()) {
      if (s.has_file_data()) {
        EXPECT_TRUE(e->bytes().has(s.offset, s.size)) << s.name;
      }
    }
    (void)e->symbols();
  }
  EXPECT_GT(errors, 0u);
}

TEST(ElfFile, CorruptHeadersAreErrors) {
  Bytes full = test::build_vmlinux({}, true);
  auto shoff = *ByteView(full.data(), full.size()).read<uint64_t>(0x28);
  {
    // Section header table pointing past the end.
    Bytes b = full;
    uint64_t far = b.size() + 4096;
    std::memcpy(&b[0x28], &far, 8);
    EXPECT_FALSE(elf::ElfFile::from_bytes(b, "far").ok());
  }
  {
    // Section name table index out of range.
    Bytes b = full;
    uint16_t idx = 200;
    std::memcpy(&b[0x3e], &idx, 2);
    EXPECT_FALSE(elf::ElfFile::from_bytes(b, "strndx").ok());
  }
  {
    // .text's offset moved past the end of the file.
    Bytes b = full;
    uint64_t off = b.size() * 2;
    std::memcpy(&b[shoff + 64 * 1 + 0x18], &off, 8);  // section 1 is .text; sh_offset at +0x18
    auto e = elf::ElfFile::from_bytes(b, "offset");
    ASSERT_FALSE(e.ok());
    EXPECT_NE(e.error().message.find("outside"), std::string::npos) << e.error().message;
  }
  {
    // Bit flips all over the header area: no crash.
    for (size_t i = 0; i < 64; ++i) {
      Bytes b = full;
      b[i] ^= 0xff;
      auto e = elf::ElfFile::from_bytes(b, "flip");
      if (e) (void)e->symbols();
    }
  }
}

}  // namespace
