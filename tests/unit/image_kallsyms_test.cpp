// The kallsyms decoder on synthetic tables of every layout the kernel has used, and on broken ones: each decoding
// must reproduce the symbols exactly, and a table that fails any cross-check must be an error, never a guess.
#include "analysis/image_kallsyms.h"
#include "elf/elf_file.h"
#include "kallsyms_fixtures.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace rr;
using namespace rr::test;
using analysis::KallsymsAddressForm;
using analysis::KallsymsLayout;

namespace {

Result<analysis::ImageKallsyms> decode(const Bytes& rodata, uint64_t text_address = kTextAddress) {
  auto elf = elf::ElfFile::from_bytes(kallsyms_vmlinux(rodata, text_address), "synthetic-vmlinux");
  if (!elf) return elf.error();
  return analysis::decode_image_kallsyms(*elf, "synthetic-vmlinux");
}

void expect_same(const analysis::SymbolTable& got, const std::vector<KallsymsSymbol>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto& s = got.symbols()[i];
    EXPECT_EQ(s.name, want[i].name) << i;
    EXPECT_EQ(s.type, want[i].type) << want[i].name;
    EXPECT_EQ(s.address, want[i].address) << want[i].name;
  }
}

struct LayoutCase {
  const char* label;
  KallsymsLayout layout;
  KallsymsAddressForm form;
  size_t alignment;
  bool percpu;
};

class EveryLayout : public ::testing::TestWithParam<LayoutCase> {};

TEST_P(EveryLayout, DecodesExactlyWhatWasEncoded) {
  const LayoutCase& c = GetParam();
  KallsymsEncoder enc({c.layout, c.form, c.alignment, sample_kallsyms(1000, c.percpu), false, "junk"});
  auto k = decode(enc.rodata());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->layout, c.layout);
  EXPECT_EQ(k->address_form, c.form);
  EXPECT_EQ(k->symbols.source(), analysis::SymbolSource::image);
  expect_same(k->symbols, enc.encoded_symbols());
  // Every table is reported where the encoder put it.
  for (const auto& t : k->tables) {
    ASSERT_TRUE(enc.map().at.count(t.name)) << t.name;
    EXPECT_EQ(t.address, kRodataAddress + enc.map().at.at(t.name)) << t.name;
  }
  EXPECT_EQ(k->tables.size(), enc.map().at.size());
}

INSTANTIATE_TEST_SUITE_P(
    Kallsyms, EveryLayout,
    ::testing::Values(LayoutCase{"absolute", KallsymsLayout::absolute, KallsymsAddressForm::absolute, 8, false},
                      LayoutCase{"v5_10", KallsymsLayout::offsets_first, KallsymsAddressForm::absolute_percpu, 8, true},
                      LayoutCase{"v6_1_42", KallsymsLayout::offsets_first_seqs, KallsymsAddressForm::absolute_percpu, 8, true},
                      LayoutCase{"v6_4", KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, true},
                      LayoutCase{"v6_15", KallsymsLayout::num_syms_first, KallsymsAddressForm::base_relative, 8, false},
                      LayoutCase{"v7_0", KallsymsLayout::num_syms_first_no_base, KallsymsAddressForm::place_relative, 4, false}),
    [](const ::testing::TestParamInfo<LayoutCase>& p) { return std::string(p.param.label); });

TEST(ImageKallsyms, TwoByteNameLengthsOfNewerKernels) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(600, true, 40)});
  auto k = decode(enc.rodata());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_TRUE(k->long_names);
  expect_same(k->symbols, enc.encoded_symbols());
}

TEST(ImageKallsyms, TablesListedAsSymbolsMustBeWhereTheyWereFound) {
  KallsymsSpec spec{KallsymsLayout::num_syms_first_no_base, KallsymsAddressForm::place_relative, 4, sample_kallsyms(700, false)};
  spec.self_symbols = true;
  KallsymsEncoder enc(spec);
  Bytes rodata = enc.rodata();
  auto k = decode(rodata);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->self_checked, 7u);  // no relative_base in this layout: seven tables, all named and found
  expect_same(k->symbols, enc.encoded_symbols());

  // Move the address of kallsyms_markers by 4: every other check still passes, this one must not.
  const auto& syms = enc.encoded_symbols();
  size_t idx = 0;
  while (syms[idx].name != "kallsyms_markers") ++idx;
  size_t entry = enc.map().at.at("kallsyms_offsets") + 4 * idx;
  uint32_t v;
  std::memcpy(&v, rodata.data() + entry, 4);
  v += 4;
  std::memcpy(rodata.data() + entry, &v, 4);
  auto bad = decode(rodata);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ExitCode::bad_input);
  EXPECT_NE(bad.error().message.find("kallsyms_markers"), std::string::npos) << bad.error().message;
}

TEST(ImageKallsyms, DecoySeedRunsAreRejectedByTheTokenIndex) {
  // "0\0" "1\0" ... as a u16 array (as real images have twice) before the tables.
  std::string decoy;
  for (char c = '0'; c <= '9'; ++c) decoy += std::string{c, '\0'};
  KallsymsEncoder enc(
      {KallsymsLayout::offsets_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(300), false, "x" + decoy + "yy" + decoy});
  auto k = decode(enc.rodata());
  ASSERT_TRUE(k.ok()) << k.error().message;
  expect_same(k->symbols, enc.encoded_symbols());
}

// ---- broken tables ----------------------------------------------------------------------------------------------

TEST(ImageKallsyms, ZeroedTokenTableIsMissingTables) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(500)});
  Bytes r = enc.rodata();
  size_t t = enc.map().at.at("kallsyms_token_table"), i = enc.map().at.at("kallsyms_token_index");
  std::fill(r.begin() + static_cast<long>(t), r.begin() + static_cast<long>(i), 0);
  auto k = decode(r);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::missing);
  EXPECT_NE(k.error().message.find("no kallsyms tables"), std::string::npos) << k.error().message;
}

TEST(ImageKallsyms, AWrongMarkerIsRefused) {
  KallsymsEncoder enc({KallsymsLayout::offsets_first_seqs, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(900)});
  Bytes r = enc.rodata();
  r[enc.map().at.at("kallsyms_markers") + 8] ^= 1;  // markers[2]
  auto k = decode(r);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::bad_input);
  EXPECT_NE(k.error().message.find("do not decode consistently"), std::string::npos) << k.error().message;
}

TEST(ImageKallsyms, UnsortedAddressesAreRefused) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::base_relative, 8, sample_kallsyms(400, false)});
  Bytes r = enc.rodata();
  size_t off = enc.map().at.at("kallsyms_offsets") + 4 * 100;
  std::swap_ranges(r.begin() + static_cast<long>(off), r.begin() + static_cast<long>(off + 4), r.begin() + static_cast<long>(off + 4));
  auto k = decode(r);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("not sorted"), std::string::npos) << k.error().message;
}

TEST(ImageKallsyms, TextThatIsNotWhereTheElfSaysIsRefused) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(400)});
  auto k = decode(enc.rodata(), kTextAddress + 0x200000);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::bad_input);
  EXPECT_NE(k.error().message.find("_text"), std::string::npos) << k.error().message;
}

TEST(ImageKallsyms, SeqsThatAreNoPermutationAreRefused) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first_no_base, KallsymsAddressForm::place_relative, 4, sample_kallsyms(400, false)});
  Bytes r = enc.rodata();
  size_t s = enc.map().at.at("kallsyms_seqs_of_names");
  std::copy(r.begin() + static_cast<long>(s), r.begin() + static_cast<long>(s + 3), r.begin() + static_cast<long>(s + 3));
  auto k = decode(r);
  ASSERT_FALSE(k.ok());
  EXPECT_NE(k.error().message.find("permutation"), std::string::npos) << k.error().message;
}

TEST(ImageKallsyms, NamesCutShortAreRefused) {
  KallsymsEncoder enc({KallsymsLayout::offsets_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(600)});
  Bytes r = enc.rodata();
  // The .rodata ends in the middle of the names: no table after them can be found.
  r.resize(enc.map().at.at("kallsyms_names") + 2000);
  auto k = decode(r);
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::missing);  // the token table went with the cut
}

TEST(ImageKallsyms, AnElfThatIsNoKernelIsBadInput) {
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(100)});
  Bytes rodata = enc.rodata();
  // A user-space program: .text at a low address.
  auto elf = elf::ElfFile::from_bytes(kallsyms_vmlinux(rodata, 0x401000), "a.out");
  ASSERT_TRUE(elf.ok());
  auto k = analysis::decode_image_kallsyms(*elf, "a.out");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::bad_input);
  EXPECT_NE(k.error().message.find("not an x86_64 kernel image"), std::string::npos);
}

TEST(ImageKallsyms, KernelWithoutKallsymsIsMissing) {
  auto k = decode(to_bytes(std::string("Linux version 6.1.0 (x@y) #1 SMP") + std::string(4096, '\0')));
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::missing);
  EXPECT_FALSE(k.error().hint.empty());
}

TEST(ImageKallsyms, JsonNamesTheLayoutAndEveryTable) {
  KallsymsEncoder enc({KallsymsLayout::offsets_first_seqs, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(300)});
  auto k = decode(enc.rodata());
  ASSERT_TRUE(k.ok());
  Json j = analysis::to_json(*k);
  EXPECT_EQ(j["layout"].as_string(), "offsets-first-seqs");
  EXPECT_EQ(j["tables"].size(), 8u);
  EXPECT_EQ(j["symbols"].size(), enc.encoded_symbols().size());
  EXPECT_EQ(j["symbols"][0]["name"].as_string(), "fixed_percpu_data");
  EXPECT_EQ(j["symbols"][2]["address"].as_string(), "ffffffff81000000");
}

}  // namespace

// ---- relax-rmrr kallsyms ------------------------------------------------------------------------------------------

namespace {

std::filesystem::path write_file(const TempDir& dir, const std::string& name, const Bytes& bytes) {
  auto p = dir.path() / name;
  EXPECT_TRUE(write_file_text(p, std::string(bytes.begin(), bytes.end())).ok());
  return p;
}

TEST(KallsymsCommand, PrintsProcKallsymsLines) {
  TempDir dir;
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(50)});
  auto image = write_file(dir, "vmlinux", kallsyms_vmlinux(enc.rodata()));
  auto r = run_command(fmt::format("{} kallsyms {} 2>/dev/null", RELAX_RMRR_BINARY, image.string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string want;
  for (const auto& s : enc.encoded_symbols()) want += fmt::format("{:016x} {} {}\n", s.address, s.type, s.name);
  EXPECT_EQ(r.output, want);

  auto j = run_command(fmt::format("{} kallsyms --json {} 2>/dev/null", RELAX_RMRR_BINARY, image.string()));
  ASSERT_EQ(j.exit_code, 0) << j.output;
  auto parsed = Json::parse(j.output);
  ASSERT_TRUE(parsed.ok()) << j.output;
  EXPECT_EQ((*parsed)["layout"].as_string(), "num_syms-first");
  EXPECT_EQ((*parsed)["count"].as_uint(), enc.encoded_symbols().size());
  EXPECT_EQ((*parsed)["compression"].as_string(), "none");
}

TEST(KallsymsCommand, BadImagesExitNonZeroWithAMessage) {
  TempDir dir;
  KallsymsEncoder enc({KallsymsLayout::num_syms_first, KallsymsAddressForm::absolute_percpu, 8, sample_kallsyms(50)});
  Bytes good = kallsyms_vmlinux(enc.rodata());
  Bytes cut(good.begin(), good.begin() + static_cast<long>(good.size() / 3));
  struct Case {
    std::string file;
    int code;
    std::string says;
  };
  std::vector<Case> cases = {
      {"/bin/ls", 2, "not an x86_64 kernel image"},
      {write_file(dir, "truncated", cut).string(), 2, "truncated"},
      {write_file(dir, "text", to_bytes("hello, world\n")).string(), 2, ""},
      {(dir.path() / "absent").string(), 3, ""},
      {write_file(dir, "nokallsyms", kallsyms_vmlinux(to_bytes(std::string(512, 'z')))).string(), 3, "no kallsyms tables"},
  };
  for (const auto& c : cases) {
    auto r = run_command(fmt::format("{} kallsyms {}", RELAX_RMRR_BINARY, c.file));
    EXPECT_EQ(r.exit_code, c.code) << c.file << ": " << r.output;
    EXPECT_NE(r.output.find("relax-rmrr: error:"), std::string::npos) << r.output;
    if (!c.says.empty()) {
      EXPECT_NE(r.output.find(c.says), std::string::npos) << c.file << ": " << r.output;
    }
  }
}

}  // namespace

namespace {

// Bytes crafted so that almost every position starts a long names walk: the search has a work budget
// proportional to .rodata and refuses the input when it runs out, instead of working for hours.
TEST(ImageKallsyms, CraftedWalkBombIsRefusedQuickly) {
  Bytes r = names_walk_bomb(16);
  auto k = analysis::decode_kallsyms_tables(ByteView(r.data(), r.size()), kRodataAddress, kTextAddress, "bomb");
  ASSERT_FALSE(k.ok());
  EXPECT_EQ(k.error().code, ExitCode::bad_input);
  EXPECT_NE(k.error().message.find("gave up"), std::string::npos) << k.error().message;
}

}  // namespace
