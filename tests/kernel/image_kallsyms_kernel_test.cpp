// The kallsyms decoder on real Debian images (label `kernel`): the decoded table must equal, entry for entry, the
// /proc/kallsyms that tests/setup/kernel.sh dumped from the same kernel booted in QEMU with KASLR on. Debian 6.1
// and 6.12 are set up by tests/run-all.sh and must be there; 5.10 and 7.3 (tests/run-eras.sh) are compared when
// set up and skipped otherwise.
#include "../unit/test_util.h"
#include "analysis/bzimage.h"
#include "analysis/image_kallsyms.h"
#include "analysis/symbols.h"
#include "elf/elf_file.h"
#include "kernel_env.h"

#include <gtest/gtest.h>

#include <cstring>
#include <iostream>

using namespace rr;

namespace {

struct Era {
  const char* kernel;
  bool required;
  analysis::KallsymsLayout layout;
};

class RealImage : public ::testing::TestWithParam<Era> {};

TEST_P(RealImage, DecodedTableEqualsTheBootDump) {
  const Era& era = GetParam();
  auto env = test::read_kernel_env(era.kernel);
  if (env.get("VMLINUZ").empty() || env.get("KALLSYMS").empty()) {
    if (era.required) FAIL() << test::kernel_env_setup_hint(era.kernel);
    GTEST_SKIP() << era.kernel << " is not set up here: " << test::kernel_env_setup_hint(era.kernel);
  }
  auto image = analysis::read_kernel_image(env.get("VMLINUZ"));
  ASSERT_TRUE(image.ok()) << image.error().message;
  auto elf = elf::ElfFile::from_bytes(std::move(image->elf), env.get("VMLINUZ"));
  ASSERT_TRUE(elf.ok()) << elf.error().message;
  auto decoded = analysis::decode_image_kallsyms(*elf, env.get("VMLINUZ"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->layout, era.layout);

  auto dump = analysis::read_kallsyms(env.get("KALLSYMS"));
  ASSERT_TRUE(dump.ok()) << dump.error().message;
  std::vector<const analysis::Symbol*> vmlinux;
  for (const auto& s : dump->symbols())
    if (s.in_vmlinux()) vmlinux.push_back(&s);
  const analysis::Symbol* text = dump->first("_text");
  ASSERT_NE(text, nullptr);
  uint64_t slide = text->address - elf->section(".text")->address;

  const auto& got = decoded->symbols.symbols();
  ASSERT_EQ(got.size(), vmlinux.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& d = *vmlinux[i];
    // Per-CPU symbols (absolute, below the kernel half) are not moved by KASLR.
    uint64_t want = d.address >= 0xffff800000000000ull ? d.address - slide : d.address;
    if (got[i].name != d.name || got[i].type != d.type || got[i].address != want) {
      if (++mismatches <= 5)
        ADD_FAILURE() << era.kernel << " entry " << i << ": decoded " << got[i].name << " " << got[i].type << " " << std::hex
                      << got[i].address << ", dump " << d.name << " " << d.type << " " << want;
    }
  }
  EXPECT_EQ(mismatches, 0u);
  std::cout << era.kernel << ": " << got.size() << " symbols compared (names, types, order, addresses less the KASLR slide " << std::hex
            << slide << std::dec << "), " << mismatches << " differ; layout " << analysis::layout_name(decoded->layout) << ", "
            << decoded->self_checked << " tables self-checked\n";
  RecordProperty("symbols_compared", static_cast<int>(got.size()));
}

INSTANTIATE_TEST_SUITE_P(Debian, RealImage,
                         ::testing::Values(Era{"debian-5.10", false, analysis::KallsymsLayout::offsets_first},
                                           Era{"debian-6.1", true, analysis::KallsymsLayout::offsets_first_seqs},
                                           Era{"debian-6.12", true, analysis::KallsymsLayout::num_syms_first},
                                           Era{"debian-7.3", false, analysis::KallsymsLayout::num_syms_first_no_base}),
                         [](const ::testing::TestParamInfo<Era>& p) {
                           std::string n = p.param.kernel;
                           for (char& c : n)
                             if (c == '-' || c == '.') c = '_';
                           return n;
                         });

// The real 6.1 image with its token table zeroed, with one marker changed, and cut short: each an error, not a table.
TEST(RealImageDamaged, EveryDamageIsAnError) {
  auto env = test::read_kernel_env("debian-6.1");
  ASSERT_FALSE(env.get("VMLINUZ").empty()) << test::kernel_env_setup_hint("debian-6.1");
  auto image = analysis::read_kernel_image(env.get("VMLINUZ"));
  ASSERT_TRUE(image.ok());
  Bytes pristine = image->elf;
  auto elf = elf::ElfFile::from_bytes(Bytes(pristine), "vmlinux");
  ASSERT_TRUE(elf.ok());
  auto decoded = analysis::decode_image_kallsyms(*elf, "vmlinux");
  ASSERT_TRUE(decoded.ok());
  auto file_offset = [&](const std::string& table) {
    for (const auto& t : decoded->tables)
      if (t.name == table) {
        const auto* ro = elf->section(".rodata");
        return std::make_pair(static_cast<size_t>(ro->offset + (t.address - ro->address)), static_cast<size_t>(t.size));
      }
    ADD_FAILURE() << "no " << table;
    return std::make_pair(size_t{0}, size_t{0});
  };
  auto decode_bytes = [](Bytes b) {
    auto e = elf::ElfFile::from_bytes(std::move(b), "damaged");
    if (!e) return Result<analysis::ImageKallsyms>(e.error());
    return analysis::decode_image_kallsyms(*e, "damaged");
  };
  {
    Bytes b = pristine;
    auto [at, size] = file_offset("kallsyms_token_table");
    std::memset(b.data() + at, 0, size);
    auto r = decode_bytes(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ExitCode::missing) << r.error().message;
  }
  {
    Bytes b = pristine;
    auto [at, size] = file_offset("kallsyms_markers");
    b[at + size - 4] ^= 0x10;  // the last marker
    auto r = decode_bytes(std::move(b));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ExitCode::bad_input) << r.error().message;
  }
  {
    Bytes b = pristine;
    auto [at, size] = file_offset("kallsyms_names");
    b[at + size / 2] = 0xff;  // a length byte or a token in the middle of the names: the walk or the markers break
    b[at + size / 2 + 1] = 0xff;
    auto r = decode_bytes(std::move(b));
    EXPECT_FALSE(r.ok());
  }
}

}  // namespace
