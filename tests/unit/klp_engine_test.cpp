// The diff and klp stages on small objects compiled by the test itself with gcc -ffunction-sections.
#include "diff/function_diff.h"
#include "elf/object.h"
#include "elf/writer.h"
#include "klp/klp_convert.h"
#include "klp/klp_object.h"
#include "klp/module.h"
#include "klp/special_sections.h"
#include "klp/templates.h"
#include "test_util.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace fs = std::filesystem;
using namespace rr;

namespace {

// Compiles C text to an object the way kbuild would for our purposes: split sections, no PIC.
obj::Object compile_object(const test::TempDir& dir, const std::string& name, const std::string& c, const std::string& extra = "") {
  // Same file name in its own directory, mapped away: __FILE__ is identical across variants, as in the build stage.
  fs::create_directories(dir.path() / name);
  fs::path src = dir.path() / name / "driver.c", o = dir.path() / (name + ".o");
  EXPECT_TRUE(write_file_text(src, c).ok());
  auto r = test::run_command(
      fmt::format("gcc -O2 -c -fno-pic -mcmodel=kernel -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables "
                  "-fmacro-prefix-map={}/= {} -o {} {}",
                  (dir.path() / name).string(), extra, o.string(), src.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto loaded = obj::load(o);
  EXPECT_TRUE(loaded.ok()) << (loaded ? "" : loaded.error().message);
  return loaded ? std::move(*loaded) : obj::Object{};
}

std::set<std::string> changed_names(const diff::ObjectDiff& d) {
  std::set<std::string> out;
  for (const auto& f : d.functions) out.insert(f.name);
  return out;
}

const char* kBase = R"(
extern int printk(const char *fmt, ...);
extern int shared_state;
static int counter;
struct dev { int class_code; int id; };
static __attribute__((noipa)) int helper(struct dev *d) { return d->id * 3 + counter; }
static int is_relaxable(struct dev *d) { return (d->class_code >> 8) == 0x0c03; }
int attach(struct dev *d) {
  if (!is_relaxable(d)) { printk("device %d is locked\n", d->id); return -1; }
  shared_state++;
  return helper(d);
}
int unrelated(struct dev *d) { printk("unrelated %d at %s:%d\n", d->id, __FILE__, __LINE__); return d->id; }
int other(int x) { counter += x; return x + 1; }
)";

}  // namespace

TEST(ObjectModel, LoadsSectionsSymbolsAndRelocations) {
  test::TempDir dir;
  auto o = compile_object(dir, "a", kBase);
  const obj::Section* text = o.section(".text.attach");
  ASSERT_NE(text, nullptr);
  EXPECT_TRUE(text->is_text());
  EXPECT_FALSE(text->relas.empty());
  const obj::Symbol* attach = o.symbol("attach");
  ASSERT_NE(attach, nullptr);
  EXPECT_TRUE(attach->is_function());
  EXPECT_EQ(o.symbol_at(attach->shndx, 0), attach);
}

TEST(ObjectModel, CorruptInputIsAnErrorNotACrash) {
  test::TempDir dir;
  auto o = compile_object(dir, "a", kBase);
  auto bytes = read_file_bytes(dir.path() / "a.o");
  ASSERT_TRUE(bytes.ok());
  for (size_t cut : {size_t{0}, size_t{10}, size_t{64}, bytes->size() / 2, bytes->size() - 1}) {
    Bytes b(bytes->begin(), bytes->begin() + static_cast<long>(cut));
    EXPECT_FALSE(obj::load_bytes(b, "cut").ok()) << cut;
  }
  Bytes garbled = *bytes;
  for (size_t i = 0x28; i < 0x40; ++i) garbled[i] = 0xff;  // section header offset, sizes, counts
  EXPECT_FALSE(obj::load_bytes(garbled, "garbled").ok());
}

TEST(FunctionDiff, FindsTheFunctionThatInlinedTheChange) {
  test::TempDir dir;
  auto a = compile_object(dir, "a", kBase);
  std::string patched = kBase;
  patched.replace(patched.find("return (d->class_code >> 8) == 0x0c03;"), 38, "return 1;");
  auto b = compile_object(dir, "b", patched);
  auto d = diff::compare(a, b);
  ASSERT_TRUE(d.ok()) << d.error().message;
  // is_relaxable is inlined into attach: attach changed; helper, unrelated, other did not.
  EXPECT_EQ(changed_names(*d), (std::set<std::string>{"attach"}));
}

TEST(FunctionDiff, LineNumbersAndStringMovesAreNotChanges) {
  test::TempDir dir;
  auto a = compile_object(dir, "a", kBase);
  // Two more lines above everything, and a new string that shifts every literal in .rodata.
  std::string shifted = "\n\nstatic const char *early(void) { return \"a new string first\"; }\n" + std::string(kBase);
  auto b = compile_object(dir, "b", shifted);
  auto d = diff::compare(a, b);
  ASSERT_TRUE(d.ok());
  std::set<std::string> changed = changed_names(*d);
  EXPECT_FALSE(changed.count("attach"));
  EXPECT_FALSE(changed.count("other"));
  // unrelated() prints __LINE__: that immediate really changed, and the diff must say so.
  EXPECT_TRUE(changed.count("unrelated"));
}

TEST(FunctionDiff, RealChangesAreSeen) {
  test::TempDir dir;
  auto a = compile_object(dir, "a", kBase);
  std::string s = kBase;
  s.replace(s.find("d->id * 3"), 9, "d->id * 4");
  auto b = compile_object(dir, "b", s);
  auto d = diff::compare(a, b);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(changed_names(*d), (std::set<std::string>{"helper"}));

  std::string t = kBase;
  t.replace(t.find("locked\\n"), 6, "LOCKED");
  auto c = compile_object(dir, "c", t);
  auto e = diff::compare(a, c);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(changed_names(*e), (std::set<std::string>{"attach"})) << "a changed string literal is a change";
}

TEST(FunctionDiff, RefusesObjectsWithoutFunctionSections) {
  test::TempDir dir;
  fs::path src = dir.path() / "x.c";
  ASSERT_TRUE(write_file_text(src, kBase).ok());
  ASSERT_EQ(test::run_command(fmt::format("gcc -O2 -c -o {0}/x.o {1}", dir.path().string(), src.string())).exit_code, 0);
  auto o = obj::load(dir.path() / "x.o");
  ASSERT_TRUE(o.ok());
  auto d = diff::compare(*o, *o);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("-ffunction-sections"), std::string::npos);
}

namespace {

// A fake target kernel: every name in `present` exists once; `exported` ones are in Module.symvers.
klp::TargetLookup fake_kernel(std::set<std::string> present, std::set<std::string> exported) {
  return [present, exported](const std::string& n) {
    klp::TargetSymbol t;
    t.found = present.count(n) > 0;
    t.exported = exported.count(n) > 0;
    return t;
  };
}

klp::SpecialLayouts no_special_sections() { return {}; }

}  // namespace

TEST(KlpObject, CarriesTheFunctionAndResolvesEverythingElse) {
  test::TempDir dir;
  std::string patched = kBase;
  patched.replace(patched.find("return (d->class_code >> 8) == 0x0c03;"), 38, "return 1;");
  auto b = compile_object(dir, "b", patched);
  auto k = klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                                 fake_kernel({"attach", "helper", "shared_state", "printk", "counter"}, {"printk"}), no_special_sections());
  ASSERT_TRUE(k.ok()) << k.error().message;
  ASSERT_EQ(k->replaced.size(), 1u);
  EXPECT_EQ(k->replaced[0].name, "attach");
  EXPECT_EQ(k->replaced[0].new_symbol, "new_0");
  EXPECT_TRUE(k->carried_functions.empty());
  // printk is exported; the static helper and the kernel's variable are reached through livepatch.
  EXPECT_EQ(k->exported_symbols, (std::vector<std::string>{}));  // printk is dead code once is_relaxable is true
  EXPECT_NE(std::find(k->klp_symbols.begin(), k->klp_symbols.end(), ".klp.sym.vmlinux.shared_state,0"), k->klp_symbols.end());
  EXPECT_NE(std::find(k->klp_symbols.begin(), k->klp_symbols.end(), ".klp.sym.vmlinux.helper,0"), k->klp_symbols.end());

  // Round trip through the ELF writer.
  ASSERT_TRUE(obj::write_object(k->object, dir.path() / "klp.o").ok());
  auto back = obj::load(dir.path() / "klp.o");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_NE(back->section(".text.attach"), nullptr);
  EXPECT_EQ(back->section(".text.unrelated"), nullptr) << "only what the replacement needs is carried";
  const obj::Symbol* alias = back->symbol("new_0");
  ASSERT_NE(alias, nullptr);
  EXPECT_EQ(alias->bind, STB_GLOBAL);
  EXPECT_EQ(back->sections[alias->shndx].name, ".text.attach");
  // The linker accepts it.
  auto ld = test::run_command(fmt::format("ld -r -o {0}/linked.o {0}/klp.o", dir.path().string()));
  EXPECT_EQ(ld.exit_code, 0) << ld.output;
}

TEST(KlpObject, CarriesHelpersTheKernelInlined) {
  test::TempDir dir;
  auto b = compile_object(dir, "b", kBase);
  // The "kernel" has no helper(): it was inlined there, so the module must bring its own copy.
  auto k = klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                                 fake_kernel({"attach", "shared_state", "printk", "counter"}, {"printk"}), no_special_sections());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->carried_functions, (std::vector<std::string>{"helper"}));
  EXPECT_EQ(k->exported_symbols, (std::vector<std::string>{"printk"}));
  // helper's own state is the kernel's counter, never a copy.
  EXPECT_NE(std::find(k->klp_symbols.begin(), k->klp_symbols.end(), ".klp.sym.vmlinux.counter,0"), k->klp_symbols.end());
}

TEST(KlpObject, RefusesWhatTheKernelLacksOrCannotBeToldApart) {
  test::TempDir dir;
  auto b = compile_object(dir, "b", kBase);
  auto missing_var = klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                                           fake_kernel({"attach", "helper", "printk", "counter"}, {"printk"}), no_special_sections());
  ASSERT_FALSE(missing_var.ok());
  EXPECT_NE(missing_var.error().message.find("shared_state"), std::string::npos);
  EXPECT_EQ(missing_var.error().code, ExitCode::refused);

  auto ambiguous = klp::build_klp_object(
      b, {{"attach"}, "vmlinux", "new_"},
      [](const std::string& n) {
        klp::TargetSymbol t;
        t.found = true;
        if (n == "helper") t.problem = "2 symbols are named helper";
        return t;
      },
      no_special_sections());
  ASSERT_FALSE(ambiguous.ok());
  EXPECT_NE(ambiguous.error().message.find("helper"), std::string::npos);

  auto no_such = klp::build_klp_object(b, {{"nonexistent"}, "vmlinux", "new_"}, fake_kernel({}, {}), no_special_sections());
  EXPECT_FALSE(no_such.ok());
}

TEST(KlpObject, KeepsOnlyTheEntriesOfCarriedCode) {
  test::TempDir dir;
  // __mcount_loc-style table: one 8-byte address per function, as -mrecord-mcount writes it.
  auto b = compile_object(dir, "b", kBase, "-pg -mrecord-mcount -mfentry");
  const obj::Section* mcount = b.section("__mcount_loc");
  ASSERT_NE(mcount, nullptr);
  ASSERT_GE(mcount->size / 8, 3u);
  klp::SpecialLayouts layouts;
  layouts.sections.push_back({"__mcount_loc", 8, klp::EntryKind::points_to_code, {}, {}, {}});
  auto k = klp::build_klp_object(
      b, {{"attach"}, "vmlinux", "new_"},
      fake_kernel({"attach", "helper", "shared_state", "printk", "counter", "__fentry__"}, {"printk", "__fentry__"}), layouts);
  ASSERT_TRUE(k.ok()) << k.error().message;
  const obj::Section* kept = k->object.section("__mcount_loc");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->size, 8u) << "exactly attach's entry";
  ASSERT_EQ(kept->relas.size(), 1u);
  EXPECT_EQ(k->object.sections[k->object.symbols[kept->relas[0].symbol].shndx].name, ".text.attach");

  // A table we do not know that points into carried code: refuse rather than drop its entries.
  auto unknown = klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                                       fake_kernel({"attach", "helper", "shared_state", "printk", "counter", "__fentry__"}, {"printk"}),
                                       no_special_sections());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("__mcount_loc"), std::string::npos);
}

// Tables written in asm align every entry but leave the last one without its trailing padding: 5.10's
// .parainstructions (struct paravirt_patch_site, 16 bytes, of which the asm writes 12) is 16 * (n - 1) + 12 bytes.
TEST(KlpObject, KeepsTheShortLastEntryOfAnAsmTable) {
  test::TempDir dir;
  const char* site = R"(asm volatile("771: nop\n .pushsection .parainstructions,\"a\"\n .balign 8\n .quad 771b\n"
                         " .byte 1\n .byte 1\n .short 0\n .popsection");)";
  std::string code = "int first(int x) { " + std::string(site) + " return x + 1; }\n" + "int second(int x) { " + site +
                     " return x * 3; }\n" + "int attach(int x) { " + site + " return x - 7; }\n";
  auto b = compile_object(dir, "b", code);
  const obj::Section* para = b.section(".parainstructions");
  ASSERT_NE(para, nullptr);
  ASSERT_EQ(para->size, 44u) << "two 16-byte entries and a last one of 12";
  klp::SpecialSection sp{".parainstructions", 16, klp::EntryKind::points_to_code, {}, {}, {}, 10};
  EXPECT_EQ(klp::entry_count(sp, 44), 3u);
  EXPECT_EQ(klp::entry_count(sp, 48), 3u);
  EXPECT_FALSE(klp::entry_count(sp, 40).has_value()) << "8 bytes cannot hold the 10 that an entry needs";
  klp::SpecialLayouts layouts;
  layouts.sections.push_back(sp);
  // The function whose entry is the short last one.
  const obj::Symbol* last_target = nullptr;
  for (const auto& r : para->relas)
    if (r.offset == 32) last_target = &b.symbols[r.symbol];
  ASSERT_NE(last_target, nullptr);
  std::string last_fn = b.sections[last_target->shndx].name.substr(std::string(".text.").size());
  auto k = klp::build_klp_object(b, {{last_fn}, "vmlinux", "new_"}, fake_kernel({"first", "second", "attach"}, {}), layouts);
  ASSERT_TRUE(k.ok()) << k.error().message;
  const obj::Section* kept = k->object.section(".parainstructions");
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->size, 16u) << "the short entry, padded back to its stride";
  ASSERT_EQ(kept->relas.size(), 1u);
  EXPECT_EQ(k->object.sections[k->object.symbols[kept->relas[0].symbol].shndx].name, ".text." + last_fn);
  // Without the minimum from BTF the same table is refused, never cut at a guessed boundary.
  layouts.sections[0].last_entry_min = 0;
  auto refused = klp::build_klp_object(b, {{last_fn}, "vmlinux", "new_"}, fake_kernel({"first", "second", "attach"}, {}), layouts);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("not a whole number"), std::string::npos) << refused.error().message;
}

TEST(KlpConvert, MovesLivepatchRelocationsAndMarksSymbols) {
  test::TempDir dir;
  std::string patched = kBase;
  patched.replace(patched.find("return (d->class_code >> 8) == 0x0c03;"), 38, "return 1;");
  auto b = compile_object(dir, "b", patched);
  auto k = klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                                 fake_kernel({"attach", "helper", "shared_state", "printk", "counter"}, {"printk"}), no_special_sections());
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(obj::write_object(k->object, dir.path() / "klp.o").ok());
  ASSERT_EQ(test::run_command(fmt::format("ld -r -o {0}/mod.ko {0}/klp.o", dir.path().string())).exit_code, 0);
  auto report = klp::convert_to_klp_module(dir.path() / "mod.ko", "vmlinux");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->klp_symbols, k->klp_symbols.size());
  EXPECT_GE(report->klp_relocations, 2u);
  EXPECT_EQ(report->klp_sections, 1u);
  auto out = test::run_command(fmt::format("readelf -SW -sW -rW {}/mod.ko", dir.path().string()));
  EXPECT_NE(out.output.find(".klp.rela.vmlinux..text.attach"), std::string::npos) << out.output;
  // Every relocation left in .rela.text.attach names an ordinary symbol; the klp ones moved.
  auto back = obj::load(dir.path() / "mod.ko");
  ASSERT_TRUE(back.ok()) << back.error().message;
  for (const auto& s : back->symbols)
    if (s.name.starts_with(".klp.sym.")) {
      EXPECT_EQ(s.shndx, 0xff20) << s.name;
    }
}

// kbuild's module link started before the plan (klp/module.h, EarlyModuleLink), through a stand-in kbuild that
// reads our Kbuild file as kbuild does ($(obj) = M) and "links" by `ld -r` of the klp object.
namespace {

void fake_module_kbuild(const fs::path& dir) {
  fs::create_directories(dir);
  std::string mk =
      "obj := $(M)\n"
      "include $(M)/Kbuild\n"
      "modules: $(obj)/livepatch_code.o\n"
      "\t@echo make >> $(M)/../make.log\n"
      "\t@if grep -q relax_rmrr_gate $(M)/Kbuild; then echo gated >> $(M)/../make.log; fi\n"
      "\t@if [ -n \"$(FAIL_GATED)\" ] && grep -q relax_rmrr_gate $(M)/Kbuild; then echo 'early make broken' >&2; exit 2; fi\n"
      "\t@test -f $(M)/klp_glue.c\n"
      "\t@ld -r -o $(M)/relax_rmrr.ko $(M)/livepatch_code.o\n";
  ASSERT_TRUE(write_file_text(dir / "Makefile", mk).ok());
}

Result<klp::KlpObject> small_klp_object(const test::TempDir& dir) {
  std::string patched = kBase;
  patched.replace(patched.find("return (d->class_code >> 8) == 0x0c03;"), 38, "return 1;");
  auto b = compile_object(dir, "b", patched);
  return klp::build_klp_object(b, {{"attach"}, "vmlinux", "new_"},
                               fake_kernel({"attach", "helper", "shared_state", "printk", "counter"}, {"printk"}), no_special_sections());
}

// A request against the stand-in kbuild, which it writes into `dir`.
klp::ModuleRequest fake_kbuild_request(const test::TempDir& dir) {
  fake_module_kbuild(dir.path() / "kbuild");
  klp::ModuleRequest r;
  r.kbuild_dir = dir.path() / "kbuild";
  r.work_dir = dir.path() / "module";
  return r;
}

size_t log_lines(const fs::path& log, std::string_view word) {
  auto text = read_file_text(log);
  size_t n = 0;
  if (text)
    for (const auto& l : split_lines(*text)) n += l == word;
  return n;
}

}  // namespace

TEST(EarlyModuleLink, MakeWaitsAtTheGateUntilTheObjectIsWritten) {
  test::TempDir dir;
  auto k = small_klp_object(dir);
  ASSERT_TRUE(k.ok()) << k.error().message;
  klp::ModuleRequest r = fake_kbuild_request(dir);
  auto link = klp::EarlyModuleLink::start(r);
  ASSERT_TRUE(link.ok()) << link.error().message;
  auto built = (*link)->finish(*k, r);
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_FALSE((*link)->fell_back()) << (*link)->fallback_reason();
  EXPECT_EQ(log_lines(dir.path() / "make.log", "gated"), 1u);
  EXPECT_EQ(log_lines(dir.path() / "make.log", "make"), 1u) << "one make run: the gated one";
  EXPECT_EQ(built->conversion.klp_sections, 1u);
  EXPECT_TRUE(fs::exists(r.work_dir / "klp_glue.c"));
}

TEST(EarlyModuleLink, AbandonedMakeFailsAtTheGateInsteadOfHanging) {
  test::TempDir dir;
  klp::ModuleRequest r = fake_kbuild_request(dir);
  {
    auto link = klp::EarlyModuleLink::start(r);
    ASSERT_TRUE(link.ok()) << link.error().message;
  }  // destroyed without finish(): the gate reads end-of-file, make fails, the destructor returns
  EXPECT_EQ(log_lines(dir.path() / "make.log", "make"), 0u) << "make must not have linked anything";
  EXPECT_FALSE(fs::exists(r.work_dir / "relax_rmrr.ko"));
}

TEST(EarlyModuleLink, AFailingEarlyMakeFallsBackToTheUsualLink) {
  test::TempDir dir;
  auto k = small_klp_object(dir);
  ASSERT_TRUE(k.ok()) << k.error().message;
  klp::ModuleRequest r = fake_kbuild_request(dir);
  r.make_variables = {"FAIL_GATED=1"};
  auto link = klp::EarlyModuleLink::start(r);
  ASSERT_TRUE(link.ok()) << link.error().message;
  auto built = (*link)->finish(*k, r);
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_TRUE((*link)->fell_back());
  EXPECT_NE((*link)->fallback_reason().find("early make broken"), std::string::npos) << (*link)->fallback_reason();
  EXPECT_EQ(log_lines(dir.path() / "make.log", "make"), 2u) << "the gated make, then the usual one";
  EXPECT_TRUE(fs::exists(built->ko));
  auto kbuild = read_file_text(r.work_dir / "Kbuild");
  ASSERT_TRUE(kbuild.ok());
  EXPECT_EQ(kbuild->find("relax_rmrr_gate"), std::string::npos) << "the usual link has no gate";
}

TEST(KlpConvert, RejectsNonElfInput) {
  test::TempDir dir;
  ASSERT_TRUE(write_file_text(dir.path() / "bad.ko", "not an elf").ok());
  EXPECT_FALSE(klp::convert_to_klp_module(dir.path() / "bad.ko", "vmlinux").ok());
  EXPECT_EQ(klp::convert_to_klp_module(dir.path() / "none.ko", "vmlinux").error().code, ExitCode::missing);
}

TEST(KlpGlue, RendersOneKlpFuncPerReplacement) {
  klp::KlpObject k;
  k.replaced.push_back({"intel_iommu_attach_device", 0, "relax_rmrr_new_0"});
  k.replaced.push_back({"intel_iommu_get_resv_regions", 2, "relax_rmrr_new_1"});
  klp::ModuleRequest r;
  r.kernel_release = "6.1.0-56-amd64";
  r.tool_version = "test";
  auto glue = klp::render_glue(k, r);
  ASSERT_TRUE(glue.ok()) << glue.error().message;
  EXPECT_NE(glue->find(".old_name = \"intel_iommu_attach_device\""), std::string::npos);
  EXPECT_NE(glue->find(".old_sympos = 2"), std::string::npos);
  EXPECT_NE(glue->find("MODULE_INFO(livepatch, \"Y\")"), std::string::npos);
  EXPECT_NE(glue->find(".replace = true"), std::string::npos);
  EXPECT_NE(glue->find("instability or data loss"), std::string::npos);
  EXPECT_EQ(glue->find('@'), std::string::npos) << "every placeholder filled";
  r.module_name = "Bad-Name";
  EXPECT_FALSE(klp::render_glue(k, r).ok());
}

TEST(Templates, UnknownPlaceholdersAndUnusedValuesAreErrors) {
  EXPECT_FALSE(klp::render("Kbuild.in", {{"MODULE_NAME", "x"}}).ok());
  EXPECT_FALSE(klp::render("Kbuild.in", {{"MODULE_NAME", "x"}, {"PATCH_OBJECT", "y"}, {"GATE", ""}, {"EXTRA", "z"}}).ok());
  auto ok = klp::render("Kbuild.in", {{"MODULE_NAME", "x"}, {"PATCH_OBJECT", "y.o"}, {"GATE", ""}});
  ASSERT_TRUE(ok.ok());
  EXPECT_NE(ok->find("x-y := klp_glue.o y.o"), std::string::npos) << *ok;
  EXPECT_FALSE(klp::template_text("no-such-template").ok());
}
