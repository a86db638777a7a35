// kernel-patch/ and kpatch/ on real kernel sources (ctest label `kernel`).
//
// Trees: Debian 6.1 from tests/setup/kernel.sh debian-6.1 (kernel.env: SOURCE_TARBALL, KBUILD), and one tree per
// other layout/era from tests/setup/kernel-patch-sources.sh (sources.env: UBUNTU_5_4, DEBIAN_5_10, DEBIAN_6_12,
// DEBIAN_7). Missing inputs FAIL with the setup step to run.
//
//   - `relax-rmrr patch` writes both formats for every tree, names the right era, and `patch -p1 --dry-run`
//     (run here again, independently of the tool's own check) applies them to the extracted tree;
//   - the reference patches in kernel-patch/ and kpatch/ are what the tool produces today for their trees;
//   - on 6.1, against the 6.1 headers: the full patch compiles cleanly, the kpatch patch too, and the full
//     patch with the option forced on changes the same (non-__init) functions as the livepatch transform:
//     intel_iommu_attach_device and intel_iommu_get_resv_regions (diff::compare on the objects).
#include "source/kernel_patch.h"
#include "../unit/test_util.h"
#include "common/file.h"
#include "compile/compile.h"
#include "diff/function_diff.h"
#include "elf/object.h"
#include "kernel_env.h"
#include "source/source.h"
#include "source/transform.h"

#include <gtest/gtest.h>

#include <set>

namespace fs = std::filesystem;
using namespace rr;

namespace {

constexpr const char* kExtraSetup =
    "run `tests/setup/kernel-patch-sources.sh` (it downloads the linux-source "
    "tarballs and writes sources.env)";

fs::path cache_root() {
  const char* c = std::getenv("RELAX_RMRR_CACHE");
  return c && *c ? fs::path(c) : fs::path("/var/cache/relax-rmrr");
}

std::map<std::string, std::string> read_sources_env() {
  std::map<std::string, std::string> out;
  auto text = read_file_text(cache_root() / "kernel-patch-sources/sources.env");
  if (!text) return out;
  for (const auto& line : split_lines(*text)) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

struct TreeCase {
  std::string key;  // sources.env key, or "DEBIAN_6_1" (kernel.env)
  std::string era;  // what `patch` must report
  std::string layout_path;  // the driver's path
};

void PrintTo(const TreeCase& c, std::ostream* os) { *os << c.key; }

// The tarball of a case; empty with `why` set when its setup step has not run.
fs::path tarball_of(const std::string& key, std::string& why) {
  if (key == "DEBIAN_6_1") {
    auto env = test::read_kernel_env("debian-6.1");
    const std::string tarball = env["SOURCE_TARBALL"];  // operator[]: the one accessor every version of kernel_env.h has
    if (tarball.empty()) {
      why = "no SOURCE_TARBALL in debian-6.1's kernel.env: " + test::kernel_env_setup_hint("debian-6.1");
      return {};
    }
    if (!fs::is_regular_file(tarball)) {
      why = tarball + " is missing: " + test::kernel_env_setup_hint("debian-6.1");
      return {};
    }
    return tarball;
  }
  auto env = read_sources_env();
  auto it = env.find(key);
  if (it == env.end()) {
    why = fmt::format("{} not in {}: {}", key, (cache_root() / "kernel-patch-sources/sources.env").string(), kExtraSetup);
    return {};
  }
  if (!fs::is_regular_file(it->second)) {
    why = it->second + " is missing: " + kExtraSetup;
    return {};
  }
  return it->second;
}

std::string run_ok(const std::string& cmd) {
  auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  return r.output;
}

class RealTrees : public ::testing::TestWithParam<TreeCase> {};

TEST_P(RealTrees, BothFormatsAreWrittenAndApply) {
  const TreeCase& c = GetParam();
  std::string why;
  fs::path tarball = tarball_of(c.key, why);
  ASSERT_FALSE(tarball.empty()) << why;
  test::TempDir d;
  for (const char* format : {"full", "kpatch"}) {
    fs::path out = d.path() / (std::string(format) + ".patch");
    auto r = test::run_command(fmt::format("{{ {} patch --format {} --source {} -o {} --json 2>/dev/null; }}", RELAX_RMRR_BINARY, format,
                                           tarball.string(), out.string()));
    ASSERT_EQ(r.exit_code, 0) << format << " for " << tarball << ":\n" << r.output;
    auto j = Json::parse(r.output);
    ASSERT_TRUE(j.ok()) << r.output;
    EXPECT_EQ((*j)["era"].as_string(), c.era) << tarball;
    EXPECT_EQ((*j)["path"].as_string(), c.layout_path);
    EXPECT_TRUE((*j)["checked"].as_bool());
    // Independently of the tool's own check: patch --dry-run at the top of the extracted tree.
    auto tree = source::locate(tarball);
    ASSERT_TRUE(tree.ok()) << tree.error().message;
    run_ok(fmt::format("patch -p1 --dry-run --batch -F0 -d {} -i {}", tree->root.string(), out.string()));
    auto text = read_file_text(out);
    ASSERT_TRUE(text.ok());
    if (std::string(format) == "full") {
      EXPECT_NE(text->find("+\t\t} else if (!strncmp(str, \"relax_rmrr\", 10)) {"), std::string::npos) << *text;
      EXPECT_NE(text->find("+\tif (intel_iommu_relax_rmrr)\n+\t\treturn true;"), std::string::npos) << *text;
    } else {
      EXPECT_EQ(test::changed_lines(*text).find("__init"), std::string::npos) << *text;
      EXPECT_EQ(test::changed_lines(*text).find("+static"), std::string::npos) << *text;
      // The file keeps its line count: a patched copy has as many lines as the original.
      auto original = read_file_text(tree->iommu_c);
      ASSERT_TRUE(original.ok());
      fs::path copy = d.path() / "copy" / c.layout_path;
      fs::create_directories(copy.parent_path());
      ASSERT_TRUE(write_file_text(copy, *original).ok());
      run_ok(fmt::format("patch -p1 --batch -F0 -d {} -i {}", (d.path() / "copy").string(), out.string()));
      EXPECT_EQ(split_lines(*read_file_text(copy)).size(), split_lines(*original).size());
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Eras, RealTrees,
                         ::testing::Values(TreeCase{"UBUNTU_5_4", "5.3-5.7", "drivers/iommu/intel-iommu.c"},
                                           TreeCase{"DEBIAN_5_10", "5.8-6.5", "drivers/iommu/intel/iommu.c"},
                                           TreeCase{"DEBIAN_6_1", "5.8-6.5", "drivers/iommu/intel/iommu.c"},
                                           TreeCase{"DEBIAN_6_12", "6.6+", "drivers/iommu/intel/iommu.c"},
                                           TreeCase{"DEBIAN_7", "6.6+", "drivers/iommu/intel/iommu.c"}),
                         [](const ::testing::TestParamInfo<TreeCase>& i) { return i.param.key; });

// The reference outputs in the repository are the tool's output for the trees they name.
struct Reference {
  std::string file, key, format;
};

void PrintTo(const Reference& r, std::ostream* os) { *os << r.file; }

class ReferencePatches : public ::testing::TestWithParam<Reference> {};

TEST_P(ReferencePatches, MatchTheToolsOutput) {
  const Reference& ref = GetParam();
  std::string why;
  fs::path tarball = tarball_of(ref.key, why);
  ASSERT_FALSE(tarball.empty()) << why;
  fs::path file = fs::path(RELAX_RMRR_SOURCE_DIR) / ref.file;
  auto want = read_file_text(file);
  ASSERT_TRUE(want.ok()) << file << " is missing";
  test::TempDir d;
  fs::path out = d.path() / "p.patch";
  run_ok(fmt::format("{} patch --format {} --source {} -o {} >/dev/null", RELAX_RMRR_BINARY, ref.format, tarball.string(), out.string()));
  auto got = read_file_text(out);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, *want) << ref.file << " is stale: regenerate it with `relax-rmrr patch --format " << ref.format << " --source "
                         << tarball.string() << " -o " << ref.file << "`";
}

INSTANTIATE_TEST_SUITE_P(Files, ReferencePatches,
                         ::testing::Values(Reference{"kernel-patch/relax-rmrr-5.3-5.7.patch", "UBUNTU_5_4", "full"},
                                           Reference{"kernel-patch/relax-rmrr-5.8-6.5.patch", "DEBIAN_6_1", "full"},
                                           Reference{"kernel-patch/relax-rmrr-6.6-7.x.patch", "DEBIAN_7", "full"},
                                           Reference{"kpatch/relax-rmrr-kpatch-debian-6.1.patch", "DEBIAN_6_1", "kpatch"},
                                           Reference{"kpatch/relax-rmrr-kpatch-debian-7.patch", "DEBIAN_7", "kpatch"}),
                         [](const ::testing::TestParamInfo<Reference>& i) { return i.param.key + "_" + i.param.format; });

// Compiles against the Debian 6.1 headers, and the equivalence of the two ways to relax.
class Debian61Compile : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    tarball_ = tarball_of("DEBIAN_6_1", why);
    ASSERT_FALSE(tarball_.empty()) << why;
    auto env = test::read_kernel_env("debian-6.1");
    kbuild_ = env["KBUILD"];
    ASSERT_FALSE(kbuild_.empty()) << "no KBUILD in debian-6.1's kernel.env: " << test::kernel_env_setup_hint("debian-6.1");
    ASSERT_TRUE(fs::is_regular_file(kbuild_ / "Makefile"))
        << kbuild_ << " is not a kbuild tree: " << test::kernel_env_setup_hint("debian-6.1");
  }
  fs::path tarball_, kbuild_;
};

// Non-__init functions whose code changed.
std::set<std::string> changed_functions(const fs::path& a, const fs::path& b, std::string* all = nullptr) {
  auto oa = obj::load(a);
  auto ob = obj::load(b);
  EXPECT_TRUE(oa.ok() && ob.ok());
  if (!oa || !ob) return {};
  auto d = diff::compare(*oa, *ob);
  EXPECT_TRUE(d.ok()) << d.error().message;
  if (!d) return {};
  std::set<std::string> out;
  for (const auto& f : d->functions) {
    if (all) *all += fmt::format("\n    {}({}{}): {}", f.name, diff::status_name(f.status), f.is_init ? ",init" : "", f.reason);
    if (!f.is_init) out.insert(f.name);
  }
  return out;
}

TEST_F(Debian61Compile, FullAndKpatchCompileAndTheOptionChangesWhatTheLivepatchChanges) {
  auto tree = source::locate(tarball_);
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  auto text = read_file_text(tree->iommu_c);
  ASSERT_TRUE(text.ok());

  auto always = source::relax_transform(*text, tree->iommu_c_relative);
  ASSERT_TRUE(always.ok()) << always.error().message;
  auto livepatched = source::apply_edits(*text, always->edits);
  ASSERT_TRUE(livepatched.ok());

  // The two patches exactly as `relax-rmrr patch` writes them, applied with patch(1) to a copy.
  auto apply = [&](source::PatchFormat format) -> std::string {
    auto p = source::make_kernel_patch(*tree, *text, format, "test");
    EXPECT_TRUE(p.ok()) << p.error().message;
    if (!p) return {};
    test::TempDir d;
    fs::path f = d.path() / tree->iommu_c_relative;
    fs::create_directories(f.parent_path());
    EXPECT_TRUE(write_file_text(f, *text).ok());
    EXPECT_TRUE(write_file_text(d.path() / "p.patch", p->text).ok());
    run_ok(fmt::format("patch -p1 --batch -F0 -d {} -i {}", d.path().string(), (d.path() / "p.patch").string()));
    return *read_file_text(f);
  };
  std::string full = apply(source::PatchFormat::full);
  std::string kpatch = apply(source::PatchFormat::kpatch);
  ASSERT_FALSE(full.empty());
  ASSERT_FALSE(kpatch.empty());
  // Forced on: the variable initialised to true, as if intel_iommu=relax_rmrr had been given.
  const std::string decl = "static bool intel_iommu_relax_rmrr;";
  ASSERT_EQ(full.find(decl), full.rfind(decl)) << "exactly one declaration";
  ASSERT_NE(full.find(decl), std::string::npos);
  std::string full_on = full;
  full_on.replace(full_on.find(decl), decl.size(), "static bool intel_iommu_relax_rmrr = true;");

  test::TempDir work;
  compile::CompileOptions o;
  o.kbuild = kbuild_;
  o.work_dir = work.path();
  o.source_relative = tree->iommu_c_relative;
  o.include_dirs = tree->include_dirs;
  o.parallel = true;
  auto base = compile::compile_pair(o, *text, *livepatched);
  ASSERT_TRUE(base.ok()) << base.error().message << "\nhint: " << base.error().hint;
  o.cc = base->cc.empty() ? "-" : base->cc;
  struct Variant {
    const char* name;
    const std::string* text;
    fs::path object;
  } variants[] = {{"full", &full, {}}, {"full-on", &full_on, {}}, {"kpatch", &kpatch, {}}};
  for (auto& v : variants) {
    auto r = compile::compile_variant(o, v.name, *v.text);
    ASSERT_TRUE(r.ok()) << v.name << ": " << r.error().message;
    EXPECT_EQ(r->make_output.find("warning:"), std::string::npos) << v.name << " must compile cleanly:\n" << r->make_output;
    v.object = r->object;
  }

  std::string log_live, log_full, log_on, log_kpatch;
  auto live = changed_functions(base->original.object, base->patched.object, &log_live);
  auto with_option_off = changed_functions(base->original.object, variants[0].object, &log_full);
  auto with_option_on = changed_functions(base->original.object, variants[1].object, &log_on);
  auto kp = changed_functions(base->original.object, variants[2].object, &log_kpatch);
  fmt::print(stderr, "changed functions\n  livepatch transform:{}\n  full patch:{}\n  full patch, option on:{}\n  kpatch patch:{}\n",
             log_live, log_full, log_on, log_kpatch);
  const std::set<std::string> expected{"intel_iommu_attach_device", "intel_iommu_get_resv_regions"};
  EXPECT_EQ(live, expected) << log_live;
  EXPECT_EQ(with_option_on, live) << "the full patch with the option on must change what the livepatch changes:" << log_on;
  EXPECT_EQ(with_option_off, live) << "the same functions read the option when it is off:" << log_full;
  EXPECT_EQ(kp, live) << "the kpatch patch is the livepatch's edit:" << log_kpatch;
  // One source of truth: the kpatch patch compiles to exactly the livepatch transform's code (the padding
  // only keeps line numbers).
  std::string log_same;
  EXPECT_TRUE(changed_functions(base->patched.object, variants[2].object, &log_same).empty()) << log_same;
  EXPECT_NE(log_on.find(" intel_iommu_setup("), std::string::npos) << "the option parser changed (__init)" << log_on;
  EXPECT_EQ(log_kpatch.find(" intel_iommu_setup("), std::string::npos) << "kpatch must not touch __init code" << log_kpatch;
}

}  // namespace
