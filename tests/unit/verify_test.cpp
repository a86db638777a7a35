// The verify step on objects the test compiles itself: what is masked (relocation fields; on kcore also the
// sites the kernel patches at run time), what must be equal, relocation values, sizes and padding, the kcore
// reader, and the struct layout probe.
#include "verify/verify.h"
#include "analysis/symbols.h"
#include "elf/object.h"
#include "klp/plan.h"
#include "test_util.h"
#include "verify/kernel_text.h"
#include "verify/layout_probe.h"
#include "verify/text_compare.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <map>

namespace fs = std::filesystem;
using namespace rr;
using namespace rr::verify;

namespace {

obj::Object compile_object(const test::TempDir& dir, const std::string& name, const std::string& text, const std::string& lang = "c",
                           const std::string& extra = "") {
  fs::path src = dir.path() / (name + "." + lang), o = dir.path() / (name + ".o");
  EXPECT_TRUE(write_file_text(src, text).ok());
  auto r =
      test::run_command(fmt::format("gcc -O2 -c -fno-pic -mcmodel=kernel -ffunction-sections -fdata-sections "
                                    "-fno-asynchronous-unwind-tables {} -o {} {}",
                                    extra, o.string(), src.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto loaded = obj::load(o);
  EXPECT_TRUE(loaded.ok()) << (loaded ? "" : loaded.error().message);
  return loaded ? std::move(*loaded) : obj::Object{};
}

constexpr uint64_t kBase = 0xffffffff81000000ull;

// A stand-in linker: the function's section placed at `at`, its relocations applied with `addresses`
// (symbol or section name -> address). Unknown targets get a made-up address.
Bytes link(const obj::Object& o, const obj::Symbol& fn, uint64_t at, const std::map<std::string, uint64_t>& addresses) {
  const obj::Section& sec = o.sections[fn.shndx];
  Bytes out(sec.data.begin() + static_cast<long>(fn.value), sec.data.begin() + static_cast<long>(fn.value + fn.size));
  for (const auto& r : sec.relas) {
    if (r.offset < fn.value || r.offset >= fn.value + fn.size) continue;
    const obj::Symbol& s = o.symbols[r.symbol];
    std::string key = s.is_section() ? o.sections[s.shndx].name : s.name;
    auto it = addresses.find(key);
    uint64_t S = it != addresses.end() ? it->second : kBase + 0x100000 + r.symbol * 0x40;
    uint64_t v = S + static_cast<uint64_t>(r.addend);
    if (obj::rela_is_pc_relative(r.type)) v -= at + (r.offset - fn.value);
    size_t w = obj::rela_width(r.type);
    for (size_t i = 0; i < w; ++i) out[r.offset - fn.value + i] = static_cast<uint8_t>(v >> (8 * i));
  }
  return out;
}

const obj::Symbol& fn_named(const obj::Object& o, const std::string& name) {
  const obj::Symbol* s = o.symbol(name);
  if (!s) throw std::runtime_error("no symbol " + name);
  return *s;
}

const char* kDriver = R"(
extern int other_state;
extern void helper(int);
int attach(int *p, int k) {
  if (k > 3) helper(k * 7);
  other_state += 0x1234;
  return *p + 40;
}
)";

}  // namespace

TEST(VerifyMask, ImageMasksExactlyTheRelocationFields) {
  test::TempDir dir;
  obj::Object o = compile_object(dir, "d", kDriver, "c", "-pg -mfentry -mrecord-mcount");
  const obj::Symbol& f = fn_named(o, "attach");
  auto masks = legitimate_differences(o, f.shndx, TextOrigin::image);
  const auto& relas = o.sections[f.shndx].relas;
  ASSERT_EQ(masks.size(), relas.size());
  for (size_t i = 0; i < masks.size(); ++i) {
    EXPECT_EQ(masks[i].offset, relas[i].offset);
    EXPECT_EQ(masks[i].length, 4u);
    EXPECT_TRUE(masks[i].why.starts_with("relocation")) << masks[i].why;
  }
  // On kcore the ftrace site (call __fentry__ at the entry) is masked as a whole instruction as well.
  auto kmasks = legitimate_differences(o, f.shndx, TextOrigin::kcore);
  bool ftrace = false;
  for (const auto& m : kmasks) ftrace |= m.offset == 0 && m.length == 5 && m.why.starts_with("ftrace");
  EXPECT_TRUE(ftrace);
}

TEST(VerifyCompare, LinkedCopyIsEqualAndRelocationValuesAreChecked) {
  test::TempDir dir;
  obj::Object o = compile_object(dir, "d", kDriver);
  const obj::Symbol& f = fn_named(o, "attach");
  std::map<std::string, uint64_t> addr{{"other_state", kBase + 0x200000}, {"helper", kBase + 0x500}};
  uint64_t at = kBase + 0x1000;
  Bytes k = link(o, f, at, addr);
  auto resolve = [&](const obj::Symbol& s) -> std::optional<uint64_t> {
    auto it = addr.find(s.name);
    if (it == addr.end()) return std::nullopt;
    return it->second;
  };
  auto c = compare_function(o, f, ByteView(k.data(), k.size()), at, f.size, true, TextOrigin::image, resolve);
  EXPECT_TRUE(c.equal()) << c.difference_note;
  EXPECT_EQ(c.relocations_checked, 2u);
  EXPECT_GT(c.masked_bytes, 0u);

  // The kernel's call goes elsewhere: named as a relocation whose value differs.
  addr["helper"] = kBase + 0x600;
  auto c2 = compare_function(o, f, ByteView(k.data(), k.size()), at, f.size, true, TextOrigin::image, resolve);
  ASSERT_FALSE(c2.equal());
  EXPECT_NE(c2.difference_note.find("helper"), std::string::npos) << c2.difference_note;
  // Without a resolver the same bytes only have their relocation fields masked: equal.
  auto c3 = compare_function(o, f, ByteView(k.data(), k.size()), at, f.size, true, TextOrigin::image, nullptr);
  EXPECT_TRUE(c3.equal());
}

TEST(VerifyCompare, OneChangedConstantIsFoundAtItsOffset) {
  test::TempDir dir;
  obj::Object mine = compile_object(dir, "a", kDriver);
  std::string other = kDriver;
  other.replace(other.find("0x1234"), 6, "0x1235");
  obj::Object theirs = compile_object(dir, "b", other);
  const obj::Symbol& f = fn_named(mine, "attach");
  Bytes k = link(theirs, fn_named(theirs, "attach"), kBase, {});
  auto c = compare_function(mine, f, ByteView(k.data(), k.size()), kBase, k.size(), true, TextOrigin::image, nullptr);
  ASSERT_FALSE(c.equal());
  ASSERT_TRUE(c.first_difference);
  // The differing byte is the immediate's low byte: 0x34 compiled, 0x35 in the "kernel".
  const auto& data = mine.sections[f.shndx].data;
  EXPECT_EQ(data[f.value + *c.first_difference], 0x34);
  EXPECT_EQ(k[*c.first_difference], 0x35);
}

TEST(VerifyCompare, SizesAndPadding) {
  test::TempDir dir;
  obj::Object o = compile_object(dir, "d", kDriver);
  const obj::Symbol& f = fn_named(o, "attach");
  Bytes k = link(o, f, kBase, {});
  // Distance to the next symbol: padding with NOPs/INT3 is fine, code is not, and neither is a shorter function.
  Bytes padded = k;
  for (uint8_t b : {0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xcc}) padded.push_back(b);
  EXPECT_TRUE(
      compare_function(o, f, ByteView(padded.data(), padded.size()), kBase, padded.size(), false, TextOrigin::image, nullptr).equal());
  Bytes code = k;
  code.push_back(0xe8);
  auto c = compare_function(o, f, ByteView(code.data(), code.size()), kBase, code.size(), false, TextOrigin::image, nullptr);
  EXPECT_FALSE(c.equal());
  EXPECT_NE(c.difference_note.find("not padding"), std::string::npos) << c.difference_note;
  auto exact = compare_function(o, f, ByteView(padded.data(), padded.size()), kBase, padded.size(), true, TextOrigin::image, nullptr);
  EXPECT_FALSE(exact.size_ok);
  auto shorter = compare_function(o, f, ByteView(k.data(), k.size() - 1), kBase, k.size() - 1, false, TextOrigin::image, nullptr);
  EXPECT_FALSE(shorter.equal());
}

// A function with one site of every runtime-patched kind, in assembly so that every table entry is exact.
const char* kSites = R"(
  .section .text.sites,"ax",@progbits
  .globl sites
  .type sites, @function
sites:
0: call __fentry__
1: .byte 0xe9
  .long 9f - 2f
2:
3: lock incl counter(%rip)
4: call __x86_indirect_thunk_rax
5: .byte 0x90, 0x90, 0x90
6: call *pv_op(%rip)
7: mov $5, %eax
9: jmp __x86_return_thunk
  .size sites, .-sites

  .section __mcount_loc,"a"
  .quad 0b
  .section __jump_table,"aw"
  .balign 8
  .long 1b - ., 9b - .
  .quad some_key - .
  .section .smp_locks,"a"
  .long 3b - .
  .section .retpoline_sites,"a"
  .long 4b - .
  .section .altinstructions,"a"
  .long 5b - ., 8f - .
  .word 42
  .byte 3, 3
  .section .altinstr_replacement,"ax"
8: .byte 0x0f, 0xae, 0xe8
  .section .parainstructions,"a"
  .balign 8
  .quad 6b
  .byte 7, 6
  .balign 8
  .section .return_sites,"a"
  .long 9b - .
)";

TEST(VerifyMask, KcoreMasksEveryRuntimePatchedSiteAndImageNone) {
  test::TempDir dir;
  obj::Object o = compile_object(dir, "s", kSites, "s");
  const obj::Symbol& f = fn_named(o, "sites");
  std::map<uint64_t, std::pair<uint64_t, std::string>> got;
  for (const auto& m : legitimate_differences(o, f.shndx, TextOrigin::kcore))
    if (!m.why.starts_with("relocation")) got[m.offset] = {m.length, m.why};
  // Offsets: call 0 (5), jmp 5 (5), lock 10 (1, then 6 more), call thunk 17 (5), nops 22 (3), call * 25 (6),
  // mov 31 (5), jmp 36 (5).
  ASSERT_TRUE(got.count(0)) << "ftrace";
  EXPECT_EQ(got[0].first, 5u);
  ASSERT_TRUE(got.count(5)) << "jump label";
  EXPECT_EQ(got[5].first, 5u);
  ASSERT_TRUE(got.count(10)) << "lock";
  EXPECT_EQ(got[10].first, 1u);
  ASSERT_TRUE(got.count(17)) << "retpoline";
  EXPECT_EQ(got[17].first, 5u);
  ASSERT_TRUE(got.count(22)) << "alternative";
  EXPECT_EQ(got[22].first, 3u);
  ASSERT_TRUE(got.count(25)) << "paravirt";
  EXPECT_EQ(got[25].first, 6u);
  ASSERT_TRUE(got.count(36)) << "return thunk";
  EXPECT_EQ(got[36].first, 5u);
  EXPECT_FALSE(got.count(31));  // plain code stays compared
  EXPECT_EQ(got.size(), 7u);
  // The image is compared before boot-time patching: relocation fields, and a jump label may be exactly a NOP of
  // its length (the link-time objtool's doing, seen on Debian 6.12), nothing else.
  for (const auto& m : legitimate_differences(o, f.shndx, TextOrigin::image)) {
    if (m.why.starts_with("relocation")) continue;
    EXPECT_EQ(m.offset, 5u) << m.why;
    EXPECT_EQ(m.alternative, (Bytes{0x0f, 0x1f, 0x44, 0x00, 0x00}));
  }
  {
    Bytes linked = link(o, f, kBase, {});
    const uint8_t nop5[] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    std::copy(nop5, nop5 + 5, linked.begin() + 5);
    auto c = compare_function(o, f, ByteView(linked.data(), linked.size()), kBase, f.size, true, TextOrigin::image, nullptr);
    EXPECT_TRUE(c.equal()) << c.difference_note;
    EXPECT_EQ(c.alternatives_accepted, 1u);
    linked[5] = 0xcc;  // anything else at the site is a difference
    auto c2 = compare_function(o, f, ByteView(linked.data(), linked.size()), kBase, f.size, true, TextOrigin::image, nullptr);
    ASSERT_FALSE(c2.equal());
    EXPECT_EQ(*c2.first_difference, 5u);
  }

  // A patched copy (NOPed ftrace call, jmp turned into a 5-byte NOP, alternative applied) equals on kcore only.
  Bytes k = link(o, f, kBase, {});
  const uint8_t nop5[] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
  std::copy(nop5, nop5 + 5, k.begin());
  std::copy(nop5, nop5 + 5, k.begin() + 5);
  k[22] = 0x0f, k[23] = 0xae, k[24] = 0xe8;
  EXPECT_TRUE(compare_function(o, f, ByteView(k.data(), k.size()), kBase, f.size, true, TextOrigin::kcore, nullptr).equal());
  auto img = compare_function(o, f, ByteView(k.data(), k.size()), kBase, f.size, true, TextOrigin::image, nullptr);
  ASSERT_FALSE(img.equal());
  EXPECT_EQ(*img.first_difference, 0u);
  // ... and a change outside the sites is still found on kcore.
  k[32] ^= 1;
  auto kc = compare_function(o, f, ByteView(k.data(), k.size()), kBase, f.size, true, TextOrigin::kcore, nullptr);
  ASSERT_FALSE(kc.equal());
  EXPECT_EQ(*kc.first_difference, 32u);
}

TEST(VerifyKcore, ReadsLoadSegmentsAndRefusesUnderLockdown) {
  test::TempDir dir;
  // A minimal ELF core: one PT_LOAD of 16 bytes at a kernel address.
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  Elf64_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_offset = 0x100;
  ph.p_vaddr = kBase;
  ph.p_filesz = ph.p_memsz = 16;
  std::string file(0x110, '\0');
  std::memcpy(file.data(), &eh, sizeof eh);
  std::memcpy(file.data() + sizeof eh, &ph, sizeof ph);
  for (int i = 0; i < 16; ++i) file[0x100 + i] = static_cast<char>(0xa0 + i);
  fs::path core = dir.path() / "kcore", lockdown = dir.path() / "lockdown";
  ASSERT_TRUE(write_file_text(core, file).ok());
  ASSERT_TRUE(write_file_text(lockdown, "none [integrity] confidentiality\n").ok());
  auto t = KernelText::from_kcore(core, lockdown);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->origin(), TextOrigin::kcore);
  auto b = t->read(kBase + 4, 8);
  ASSERT_TRUE(b);
  EXPECT_EQ((*b)[0], 0xa4);
  EXPECT_FALSE(t->read(kBase + 12, 8));  // past the segment
  EXPECT_FALSE(t->read(kBase - 1, 2));

  ASSERT_TRUE(write_file_text(lockdown, "none integrity [confidentiality]\n").ok());
  auto locked = KernelText::from_kcore(core, lockdown);
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, ExitCode::environment);
  EXPECT_NE(locked.error().message.find("lockdown"), std::string::npos);
  auto absent = KernelText::from_kcore(dir.path() / "nope", lockdown.string() + ".absent");
  EXPECT_FALSE(absent.ok());
  ASSERT_TRUE(write_file_text(core, "not an elf").ok());
  EXPECT_FALSE(KernelText::from_kcore(core, lockdown.string() + ".absent").ok());
}

TEST(VerifyLayout, ProbeReadsTheCompilersOffsetsAndNamesMismatches) {
  test::TempDir dir;
  fs::path src = dir.path() / "driver.c", o = dir.path() / "driver.o";
  ASSERT_TRUE(write_file_text(src,
                              "struct info { long a; int b; union { int c; long d; }; char e[3]; };\n"
                              "struct other { int x; };\nint use(struct info *i) { return i->b; }\n")
                  .ok());
  std::string cmd = fmt::format("gcc -Wp,-MMD,{0}/.driver.o.d -O2 -c -o {1} {2}", dir.path().string(), o.string(), src.string());
  ASSERT_EQ(test::run_command(cmd).exit_code, 0);
  ProbeCompiler pc{cmd, dir.path(), o, src, dir.path() / "probe"};

  std::vector<StructLayout> good{{"info", 32, std::nullopt, {{"a", 0}, {"b", 8}, {"c", 16}, {"d", 16}, {"e", 24}}, "", true}};
  ASSERT_TRUE(run_probe(good, pc).ok());
  EXPECT_TRUE(good[0].ok()) << good[0].problem;
  EXPECT_EQ(good[0].compiled_size.value_or(0), 32u);
  EXPECT_EQ(good[0].members[4].compiled_offset.value_or(0), 24u);

  // The target's layout differs: a member moved, a member the source lacks, a struct the source lacks.
  std::vector<StructLayout> bad{{"info", 32, std::nullopt, {{"a", 0}, {"b", 12}}, "", true},
                                {"other", 4, std::nullopt, {{"x", 0}, {"y", 4}}, "", true},
                                {"absent", 8, std::nullopt, {{"z", 0}}, "", true}};
  ASSERT_TRUE(run_probe(bad, pc).ok());
  EXPECT_NE(bad[0].problem.find("info.b"), std::string::npos) << bad[0].problem;
  EXPECT_NE(bad[1].problem.find("member y"), std::string::npos) << bad[1].problem;
  EXPECT_NE(bad[2].problem.find("does not define struct absent"), std::string::npos) << bad[2].problem;

  // A command that does not name the object it built is an Error, not a pass.
  ProbeCompiler wrong = pc;
  wrong.object = dir.path() / "elsewhere.o";
  EXPECT_FALSE(run_probe(good, wrong).ok());
}

// Later kbuild compiles an external module from the module's directory, naming the object and the source
// relative to it (Debian's 7.3 headers: "-c -o iommu.o iommu.c"); the probe must run there, not in the tree.
TEST(VerifyLayout, ProbeRunsARelativeKbuildCommandInTheObjectsDirectory) {
  test::TempDir dir;
  fs::path src = dir.path() / "driver.c", o = dir.path() / "driver.o", tree = dir.path() / "kbuild-tree";
  fs::create_directories(tree);
  ASSERT_TRUE(write_file_text(src, "struct info { long a; int b; };\nint use(struct info *i) { return i->b; }\n").ok());
  std::string cmd = "gcc -Wp,-MMD,./.driver.o.d -O2 -c -o driver.o driver.c";
  ASSERT_EQ(test::run_command(fmt::format("cd {} && {}", dir.path().string(), cmd)).exit_code, 0);
  ProbeCompiler pc{cmd, tree, o, src, dir.path() / "probe"};

  auto where = locate_probe_paths(cmd, pc);
  ASSERT_TRUE(where.ok()) << where.error().message;
  EXPECT_EQ(where->object, "driver.o");
  EXPECT_EQ(where->source, "driver.c");
  EXPECT_EQ(where->cwd, dir.path());

  std::vector<StructLayout> good{{"info", 16, std::nullopt, {{"a", 0}, {"b", 8}}, "", true}};
  auto r = run_probe(good, pc);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(good[0].ok()) << good[0].problem;
  std::vector<StructLayout> moved{{"info", 16, std::nullopt, {{"a", 0}, {"b", 12}}, "", true}};
  ASSERT_TRUE(run_probe(moved, pc).ok());
  EXPECT_NE(moved[0].problem.find("info.b"), std::string::npos) << moved[0].problem;

  // The absolute form still runs in the kbuild tree; a name that is only part of a word does not count.
  std::string abs = fmt::format("gcc -O2 -c -o {} {}", o.string(), src.string());
  auto a = locate_probe_paths(abs, ProbeCompiler{abs, tree, o, src, dir.path() / "probe"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->cwd, tree);
  EXPECT_EQ(a->object, o.string());
  EXPECT_FALSE(locate_probe_paths("gcc -c -o xdriver.o xdriver.c", pc).ok());
  // Relative names only mean something when object and source share a directory.
  ProbeCompiler split = pc;
  split.object = tree / "driver.o";
  EXPECT_FALSE(locate_probe_paths(cmd, split).ok());
  // One make for both variants (M= the work directory above them): names relative to that directory.
  ProbeCompiler paired = pc;
  paired.object = dir.path() / "original/driver.o";
  paired.source = dir.path() / "original/driver.c";
  auto p = locate_probe_paths("gcc -O2 -c -o original/driver.o original/driver.c", paired);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->cwd, dir.path());
  EXPECT_EQ(p->object, "original/driver.o");
  EXPECT_FALSE(locate_probe_paths("gcc -O2 -c -o patched/driver.o patched/driver.c", paired).ok()) << "the other variant's names";
}

// What the replacement relies on: this driver's functions it calls that the kernel has (compared), and through
// a function the kernel inlined (carried along) the ones that function calls; not other objects' functions.
TEST(VerifyScope, ReliedOnFunctionsFollowCarriedCode) {
  test::TempDir dir;
  obj::Object o = compile_object(dir, "d", R"(
extern int elsewhere(int);
__attribute__((noinline)) static int kept(int x) { return x * 3 + elsewhere(x); }
__attribute__((noinline)) static int inlined_in_kernel(int x) { return kept(x) + 1; }
__attribute__((noinline)) int global_callee(int x) { return elsewhere(x + 2); }
__attribute__((noinline)) static int unrelated(int x) { return elsewhere(x - 9); }
int replaced(int x) { return inlined_in_kernel(x) + global_callee(x); }
int user(int x) { return unrelated(x); }
)");
  auto table = analysis::parse_kallsyms(
      "ffffffff81000000 T _text\nffffffff81000000 t kept\nffffffff81000100 T replaced\nffffffff81000200 T global_callee\n"
      "ffffffff81000300 t unrelated\nffffffff81000400 T user\nffffffff81000500 T elsewhere\n");
  ASSERT_TRUE(table.ok());
  klp::KernelSymbols ks(*table, nullptr, o);
  auto got = relied_on_functions(o, o, {"replaced"}, ks);
  EXPECT_EQ(got, (std::vector<std::string>{"global_callee", "kept"}));
}
