// The IBT guard (klp/ibt_guard.h) on objects compiled by the test with gcc -fcf-protection and a synthetic
// vmlinux whose .ibt_endbr_seal seals one function; symbols come as a kallsyms dump with a KASLR slide.
#include "klp/ibt_guard.h"
#include "analysis_fixtures.h"
#include "elf/object.h"
#include "klp/klp_object.h"
#include "test_util.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace fs = std::filesystem;
using namespace rr;

namespace {

constexpr uint64_t kText = 0xffffffff81000000ull;
constexpr uint64_t kSeal = 0xffffffff82200000ull;
constexpr uint64_t kSlide = 0x2000000ull;

// Kernel functions at link addresses; those with `endbr` start with ENDBR64 in the image.
struct KernelFn {
  const char* name;
  uint64_t offset;
  bool endbr;
};
const KernelFn kFns[] = {
    {"sealed_fn", 0x100, true},   {"open_fn", 0x200, true},   {"take_sealed", 0x300, true},
    {"call_sealed", 0x340, true}, {"take_open", 0x380, true}, {"plain", 0x3c0, false},
};

obj::Object compile_object(const test::TempDir& dir, const std::string& name, const std::string& c, const std::string& cf) {
  fs::path src = dir.path() / (name + ".c"), o = dir.path() / (name + ".o");
  EXPECT_TRUE(write_file_text(src, c).ok());
  auto r =
      test::run_command(fmt::format("gcc -O2 -c -fno-pic -mcmodel=kernel -ffunction-sections -fdata-sections "
                                    "-fno-asynchronous-unwind-tables {} -o {} {}",
                                    cf, o.string(), src.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto loaded = obj::load(o);
  EXPECT_TRUE(loaded.ok()) << (loaded ? "" : loaded.error().message);
  return loaded ? std::move(*loaded) : obj::Object{};
}

const char* kDriver = R"(
extern void sealed_fn(void);
extern void open_fn(void);
extern void (*hook)(void);
extern int flag;
void take_sealed(void) { hook = sealed_fn; }
void call_sealed(void) { if (flag) sealed_fn(); else open_fn(); sealed_fn(); }
void take_open(void) { hook = open_fn; }
int plain(int x) { return x + flag; }
)";

// The image: .text with the functions, a seal list naming sealed_fn only (optionally leaving the section out).
Bytes image_bytes(bool seal_section = true) {
  Bytes text(0x400, 0xcc);
  for (const auto& f : kFns)
    if (f.endbr) std::memcpy(text.data() + f.offset, klp::kEndbr64, 4);
  std::vector<test::SectionSpec> secs{{".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, kText, text}};
  Bytes seal(4);
  int32_t rel = static_cast<int32_t>(static_cast<int64_t>(kText + 0x100) - static_cast<int64_t>(kSeal));
  std::memcpy(seal.data(), &rel, 4);
  secs.push_back({seal_section ? ".ibt_endbr_seal" : ".init.data", SHT_PROGBITS, SHF_ALLOC, kSeal, seal});
  return test::build_elf(secs, {});
}

analysis::SymbolTable kallsyms(bool with_seal_symbols = false) {
  std::vector<analysis::Symbol> syms{{"_text", 'T', kText + kSlide, 0, ""}};
  for (const auto& f : kFns) syms.push_back({f.name, 't', kText + kSlide + f.offset, 0, ""});
  syms.push_back({"hook", 'd', 0xffffffff82a00000ull + kSlide, 0, ""});
  syms.push_back({"flag", 'd', 0xffffffff82a00008ull + kSlide, 0, ""});
  if (with_seal_symbols) {
    syms.push_back({"__ibt_endbr_seal", 'd', kSeal + kSlide, 0, ""});
    syms.push_back({"__ibt_endbr_seal_end", 'd', kSeal + kSlide + 4, 0, ""});
  }
  return analysis::SymbolTable(std::move(syms), analysis::SymbolSource::kallsyms, "kallsyms-test");
}

struct Kernel {
  analysis::LoadedKernel k;
  explicit Kernel(std::optional<std::string> ibt, bool image = true, bool seal_section = true) {
    if (ibt) {
      k.config.emplace();
      k.config->set("X86_KERNEL_IBT", *ibt);
      k.config->set_origin("config-test");
    }
    if (image) {
      auto e = elf::ElfFile::from_bytes(image_bytes(seal_section), "vmlinux-test");
      EXPECT_TRUE(e.ok());
      k.image.emplace(std::move(*e));
    }
    k.symbols.emplace(kallsyms(!seal_section));
  }
};

klp::KlpObject cut(const obj::Object& o, std::vector<std::string> functions) {
  klp::KlpObjectRequest req;
  req.functions = std::move(functions);
  klp::TargetLookup lookup = [](const std::string& n) {
    klp::TargetSymbol t;
    for (const char* k : {"sealed_fn", "open_fn", "take_sealed", "call_sealed", "take_open", "plain", "hook", "flag"})
      if (n == k) t.found = true;
    return t;
  };
  auto k = klp::build_klp_object(o, req, lookup, klp::SpecialLayouts{});
  EXPECT_TRUE(k.ok()) << (k ? "" : k.error().message);
  return k ? std::move(*k) : klp::KlpObject{};
}

}  // namespace

TEST(IbtGuard, SealListIsEntryAddressPlusItsOffset) {
  auto image = elf::ElfFile::from_bytes(image_bytes(), "vmlinux-test");
  ASSERT_TRUE(image.ok());
  auto seals = klp::read_seal_list(*image);
  ASSERT_TRUE(seals.ok()) << seals.error().message;
  ASSERT_EQ(seals->size(), 1u);
  EXPECT_EQ((*seals)[0], kText + 0x100);
  // Without the section, the list is found through kallsyms' bounds (runtime addresses, minus the slide).
  auto bare = elf::ElfFile::from_bytes(image_bytes(false), "vmlinux-test");
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(klp::read_seal_list(*bare).ok());
  auto syms = kallsyms(true);
  auto via_symbols = klp::read_seal_list(*bare, &syms, static_cast<int64_t>(kSlide));
  ASSERT_TRUE(via_symbols.ok()) << via_symbols.error().message;
  EXPECT_EQ(*via_symbols, *seals);
}

TEST(IbtGuard, AddressOfASealedKernelFunctionIsRefused) {
  test::TempDir dir;
  auto o = compile_object(dir, "d", kDriver, "-fcf-protection=branch");
  Kernel kernel(std::string("y"));
  auto target = klp::ibt_target(kernel.k);
  ASSERT_TRUE(target.enabled);
  EXPECT_EQ(target.slide, static_cast<int64_t>(kSlide));
  klp::IbtReport rep;
  auto s = klp::check_klp_object(cut(o, {"take_sealed"}), klp::SpecialLayouts{}, target, rep);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ExitCode::refused);
  EXPECT_NE(s.error().message.find("sealed_fn"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("#CP"), std::string::npos);
  EXPECT_FALSE(s.error().hint.empty());
  EXPECT_EQ(rep.sealed_hits, 1u);
}

TEST(IbtGuard, DirectCallsToASealedFunctionAreFine) {
  test::TempDir dir;
  auto o = compile_object(dir, "d", kDriver, "-fcf-protection=branch");
  Kernel kernel(std::string("y"));
  klp::IbtReport rep;
  auto s = klp::check_klp_object(cut(o, {"call_sealed"}), klp::SpecialLayouts{}, klp::ibt_target(kernel.k), rep);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(rep.address_taken.empty());
  EXPECT_GE(rep.direct_branches, 2u);
  EXPECT_EQ(rep.sealed_hits, 0u);
  EXPECT_EQ(rep.endbr_checked, std::vector<std::string>{"call_sealed"});
}

TEST(IbtGuard, AddressOfAnUnsealedFunctionIsReported) {
  test::TempDir dir;
  auto o = compile_object(dir, "d", kDriver, "-fcf-protection=branch");
  Kernel kernel(std::string("y"));
  klp::IbtReport rep;
  auto s = klp::check_klp_object(cut(o, {"take_open"}), klp::SpecialLayouts{}, klp::ibt_target(kernel.k), rep);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ(rep.address_taken.size(), 1u);
  EXPECT_EQ(rep.address_taken[0].symbol, "open_fn");
  EXPECT_EQ(rep.address_taken[0].link_address, kText + 0x200);
  EXPECT_FALSE(rep.address_taken[0].sealed);
  Json j = klp::to_json(rep);
  EXPECT_NE(j.dump().find("\"sealed_hits\""), std::string::npos);
}

TEST(IbtGuard, NonIbtTargetSkipsTheChecks) {
  test::TempDir dir;
  auto o = compile_object(dir, "d", kDriver, "-fcf-protection=none");
  Kernel kernel(std::string("n"));
  klp::IbtReport rep;
  auto s = klp::check_klp_object(cut(o, {"take_sealed"}), klp::SpecialLayouts{}, klp::ibt_target(kernel.k), rep);
  EXPECT_TRUE(s.ok());
  EXPECT_FALSE(rep.enabled);
  EXPECT_TRUE(rep.address_taken.empty());
}

TEST(IbtGuard, WithoutAConfigTheImageDecidesAndSaysSo) {
  Kernel with_seal(std::nullopt);
  auto t = klp::ibt_target(with_seal.k);
  EXPECT_TRUE(t.enabled);
  ASSERT_FALSE(t.notes.empty());
  EXPECT_NE(t.notes[0].find("image"), std::string::npos);
  Kernel without(std::nullopt, true, false);
  EXPECT_FALSE(klp::ibt_target(without.k).enabled);
}

TEST(IbtGuard, ReplacementWithoutEndbrIsRefusedWhenTheKernelsCopyHasOne) {
  test::TempDir dir;
  auto o = compile_object(dir, "d", kDriver, "-fcf-protection=none");
  Kernel kernel(std::string("y"));
  auto target = klp::ibt_target(kernel.k);
  klp::IbtReport rep;
  auto s = klp::check_klp_object(cut(o, {"call_sealed"}), klp::SpecialLayouts{}, target, rep);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ExitCode::refused);
  EXPECT_NE(s.error().message.find("ENDBR64"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("call_sealed"), std::string::npos);
  // A kernel copy without ENDBR (only ever called directly): the replacement needs none either.
  klp::IbtReport rep2;
  EXPECT_TRUE(klp::check_klp_object(cut(o, {"plain"}), klp::SpecialLayouts{}, target, rep2).ok());
  EXPECT_EQ(rep2.endbr_not_needed, std::vector<std::string>{"plain"});
  // No image to compare with: every replacement must have it.
  Kernel no_image(std::string("y"), false);
  klp::IbtReport rep3;
  EXPECT_FALSE(klp::check_klp_object(cut(o, {"plain"}), klp::SpecialLayouts{}, klp::ibt_target(no_image.k), rep3).ok());
}

TEST(IbtGuard, ModuleFunctionsReachedThroughPointersNeedEndbr) {
  const char* glue = R"(
struct callbacks { void (*post)(void *); };
void notify(void);
static void post_patch(void *o) { (void)o; notify(); }
struct callbacks cbs = { .post = post_patch };
)";
  test::TempDir dir;
  Kernel kernel(std::string("y"));
  auto target = klp::ibt_target(kernel.k);
  auto good = compile_object(dir, "g", glue, "-fcf-protection=branch");
  klp::IbtReport rep;
  auto s = klp::check_module_endbr(good, {}, target, rep);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(rep.endbr_checked, std::vector<std::string>{"post_patch"});
  auto bad = compile_object(dir, "b", glue, "-fcf-protection=none");
  klp::IbtReport rep2;
  auto refused = klp::check_module_endbr(bad, {}, target, rep2);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("post_patch"), std::string::npos) << refused.error().message;
  // A non-IBT target does not look.
  Kernel off(std::string("n"));
  klp::IbtReport rep3;
  EXPECT_TRUE(klp::check_module_endbr(bad, {}, klp::ibt_target(off.k), rep3).ok());
}

TEST(IbtGuard, DirectBranchDecoding) {
  obj::Section s;
  s.flags = SHF_EXECINSTR;
  s.data = {0xe8, 0, 0, 0, 0, 0x0f, 0x85, 0, 0, 0, 0, 0x48, 0x8d, 0x05, 0, 0, 0, 0, 0x48, 0xc7, 0x45, 0xe8, 0, 0, 0, 0};
  EXPECT_TRUE(klp::is_direct_branch(s, {1, R_X86_64_PLT32, 0, -4}));  // call
  EXPECT_TRUE(klp::is_direct_branch(s, {7, R_X86_64_PC32, 0, -4}));  // jne
  EXPECT_FALSE(klp::is_direct_branch(s, {14, R_X86_64_PC32, 0, -4}));  // lea rip-relative
  EXPECT_FALSE(klp::is_direct_branch(s, {22, R_X86_64_32S, 0, 0}));  // movq $imm32 after a disp8 of 0xe8
}
