// The source locator on small synthetic trees and tarballs made here: both driver layouts, every
// compression, the cache, and clear errors for inputs that are not a kernel source.
#include "source/source.h"
#include "source/transform.h"
#include "common/file.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace rr;
using namespace rr::source;

namespace {

constexpr std::string_view kDriver =
    "#include \"iommu.h\"\n#include \"../irq_remapping.h\"\n"
    "static bool device_rmrr_is_relaxable(struct device *dev)\n{\n\treturn false;\n}\n";

void put(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(write_file_text(p, text).ok()) << p;
}

// A miniature kernel tree: top Makefile, the driver, unrelated files that must not be extracted.
void make_tree(const fs::path& root, bool old_layout, std::string_view version = "6.1.192") {
  std::string v(version);
  auto d1 = v.find('.'), d2 = v.find('.', d1 + 1);
  put(root / "Makefile", fmt::format("# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\nEXTRAVERSION =\nNAME = Test\n",
                                     v.substr(0, d1), v.substr(d1 + 1, d2 - d1 - 1), v.substr(d2 + 1)));
  if (old_layout) {
    put(root / "drivers/iommu/intel-iommu.c", kDriver);
    put(root / "drivers/iommu/intel-pasid.h", "/* pasid */\n");
  } else {
    put(root / "drivers/iommu/intel/iommu.c", kDriver);
    put(root / "drivers/iommu/intel/iommu.h", "/* private */\n");
  }
  put(root / "drivers/iommu/irq_remapping.h", "/* shared */\n");
  put(root / "drivers/iommu/Makefile", "obj-y += iommu.o\n");
  put(root / "drivers/net/Makefile", "obj-y += net.o\n");
  put(root / "tools/Makefile", "all:\n");
  put(root / "tools/drivers/iommu/x.c", "int x;\n");
  put(root / "Documentation/readme.txt", "hello\n");
}

fs::path make_tarball(const fs::path& dir, const std::string& top, const std::string& name, const std::string& flags) {
  fs::path out = dir / name;
  auto r = test::run_command(fmt::format("tar -C {} {} -cf {} {}", dir.string(), flags, out.string(), top));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return out;
}

struct Fixture : ::testing::Test {
  test::TempDir tmp;
  LocateOptions opts() const { return LocateOptions{tmp.path() / "cache"}; }
};

using Locate = Fixture;

TEST_F(Locate, EveryCompressionExtractsOnlyWhatTheCompileNeeds) {
  make_tree(tmp.path() / "linux-source-6.1", false);
  struct Case {
    std::string name, flags;
  };
  for (const Case& c : {Case{"s.tar.xz", "-J"}, Case{"s.tar.gz", "-z"}, Case{"s.tar.zst", "--zstd"}, Case{"s.tar.bz2", "-j"},
                        Case{"s.tar", ""}}) {
    SCOPED_TRACE(c.name);
    fs::path tarball = make_tarball(tmp.path(), "linux-source-6.1", c.name, c.flags);
    auto t = open_tarball(tarball, opts());
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->origin, Origin::tarball);
    EXPECT_EQ(t->layout, Layout::intel_dir);
    EXPECT_EQ(t->iommu_c_relative, "drivers/iommu/intel/iommu.c");
    ASSERT_TRUE(t->version.has_value());
    EXPECT_EQ(t->version->str(), "6.1.192");
    EXPECT_EQ(t->tarball_sha256.size(), 64u);
    EXPECT_EQ(t->root, tmp.path() / "cache" / t->tarball_sha256);
    EXPECT_EQ(t->iommu_c, t->root / "drivers/iommu/intel/iommu.c");
    EXPECT_EQ(t->include_dirs, (std::vector<fs::path>{t->root / "drivers/iommu/intel", t->root / "drivers/iommu"}));
    EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/irq_remapping.h"));
    EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/iommu.h"));
    EXPECT_FALSE(fs::exists(t->root / "drivers/net")) << "only drivers/iommu is extracted";
    EXPECT_FALSE(fs::exists(t->root / "tools")) << "nested Makefiles and drivers/iommu lookalikes are not extracted";
    EXPECT_FALSE(fs::exists(t->root / "Documentation"));
    auto text = read_file_text(t->iommu_c);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, kDriver);
  }
  // Identical content under different names is one cache entry (.tar.xz made twice is byte-identical? not
  // guaranteed: count entries instead of assuming).
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path() / "cache")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(".extract-")) << "staging directories are cleaned up";
    if (e.path().filename() == ".sha256") continue;  // the remembered tarball hashes, not an entry
    ++entries;
  }
  EXPECT_EQ(entries, 5u);
}

TEST_F(Locate, SecondCallIsACacheHit) {
  make_tree(tmp.path() / "linux-6.1", false);
  fs::path tarball = make_tarball(tmp.path(), "linux-6.1", "linux.tar.xz", "-J");
  auto first = locate(tarball, opts());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->cache_hit);
  // A marker written last says the entry is complete.
  EXPECT_TRUE(fs::is_regular_file(first->root / ".relax-rmrr-source.json"));
  auto second = locate(tarball, opts());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->cache_hit);
  EXPECT_EQ(second->extract_seconds, 0.0);
  EXPECT_EQ(second->root, first->root);
  EXPECT_EQ(second->tarball_sha256, first->tarball_sha256);
  Json j = to_json(*second);
  EXPECT_EQ(j["origin"].as_string(), "tarball");
  EXPECT_EQ(j["driver"].as_string(), "drivers/iommu/intel/iommu.c");
  EXPECT_EQ(j["version"].as_string(), "6.1.192");
  EXPECT_TRUE(j["cache_hit"].as_bool());
  // The key is the content: the same bytes under another name hit too; other bytes do not.
  fs::copy_file(tarball, tmp.path() / "renamed.tar.xz");
  auto renamed = locate(tmp.path() / "renamed.tar.xz", opts());
  ASSERT_TRUE(renamed.ok());
  EXPECT_TRUE(renamed->cache_hit);
  put(tmp.path() / "linux-6.1/drivers/iommu/intel/iommu.c", std::string(kDriver) + "/* changed */\n");
  fs::path changed = make_tarball(tmp.path(), "linux-6.1", "changed.tar.xz", "-J");
  auto other = locate(changed, opts());
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->cache_hit);
  EXPECT_NE(other->root, first->root);
}

// issue 9: a cached source costs a stat, not a read of the tarball; a file rewritten in place (even with its
// modification time put back) is hashed again.
TEST_F(Locate, TarballHashIsRememberedUntilTheFileChanges) {
  make_tree(tmp.path() / "linux-6.1", false);
  fs::path tarball = make_tarball(tmp.path(), "linux-6.1", "linux.tar.xz", "-J");
  auto first = locate(tarball, opts());
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->hash_remembered);
  auto second = locate(tarball, opts());
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_TRUE(second->cache_hit);
  EXPECT_TRUE(second->hash_remembered);
  EXPECT_EQ(second->tarball_sha256, first->tarball_sha256);

  auto mtime = fs::last_write_time(tarball);
  put(tmp.path() / "linux-6.1/drivers/iommu/intel/iommu.c", std::string(kDriver) + "/* changed */\n");
  fs::remove(tarball);
  make_tarball(tmp.path(), "linux-6.1", "linux.tar.xz", "-J");
  fs::last_write_time(tarball, mtime);
  auto changed = locate(tarball, opts());
  ASSERT_TRUE(changed.ok()) << changed.error().message;
  EXPECT_FALSE(changed->hash_remembered);
  EXPECT_FALSE(changed->cache_hit);
  EXPECT_NE(changed->tarball_sha256, first->tarball_sha256);
}

TEST_F(Locate, IncompleteCacheEntryIsRedone) {
  make_tree(tmp.path() / "linux-6.1", false);
  fs::path tarball = make_tarball(tmp.path(), "linux-6.1", "linux.tar.gz", "-z");
  auto sha = sha256_file(tarball);
  ASSERT_TRUE(sha.ok());
  // An earlier run died mid-way: the entry exists without its marker. The atomic rename keeps that from
  // happening with our own runs; a hand-made leftover must still not be trusted.
  fs::create_directories(tmp.path() / "cache" / *sha / "junk");
  auto t = locate(tarball, opts());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_FALSE(t->cache_hit);
  EXPECT_FALSE(fs::exists(t->root / "junk"));
  EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/iommu.c"));
}

TEST_F(Locate, OldLayoutAndNoTopDirectory) {
  make_tree(tmp.path() / "src", true, "5.4.0");
  auto r = test::run_command(fmt::format("tar -C {}/src -cJf {}/flat.tar.xz Makefile drivers tools", tmp.path().string(), tmp.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto t = locate(tmp.path() / "flat.tar.xz", opts());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->layout, Layout::intel_iommu_c);
  EXPECT_EQ(t->iommu_c_relative, "drivers/iommu/intel-iommu.c");
  EXPECT_EQ(t->include_dirs, (std::vector<fs::path>{t->root / "drivers/iommu"}));
  ASSERT_TRUE(t->version.has_value());
  EXPECT_EQ(t->version->str(), "5.4.0");
  EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel-pasid.h"));
  EXPECT_FALSE(fs::exists(t->root / "tools"));
}

TEST_F(Locate, TarballOfSomethingElseIsAClearError) {
  put(tmp.path() / "project/README", "not a kernel\n");
  put(tmp.path() / "project/Makefile", "all:\n");
  fs::path tarball = make_tarball(tmp.path(), "project", "project.tar.xz", "-J");
  auto t = locate(tarball, opts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::bad_input);
  EXPECT_NE(t.error().message.find("is not a Linux source tarball"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("drivers/iommu/intel/iommu.c"), std::string::npos) << t.error().message;
  for (const auto& e : fs::directory_iterator(tmp.path() / "cache"))
    ADD_FAILURE() << "nothing may stay in the cache after a failed extraction: " << e.path();
}

TEST_F(Locate, DriversIommuWithoutTheIntelDriverIsAnError) {
  put(tmp.path() / "linux/Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n");
  put(tmp.path() / "linux/drivers/iommu/amd/iommu.c", "int amd;\n");
  fs::path tarball = make_tarball(tmp.path(), "linux", "amd.tar.gz", "-z");
  auto t = locate(tarball, opts());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("no intel-iommu driver"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("drivers/iommu/intel-iommu.c (before 5.8)"), std::string::npos) << t.error().message;
}

TEST_F(Locate, NotATarballAtAll) {
  put(tmp.path() / "notes.txt", std::string(2000, 'x'));
  auto t = locate(tmp.path() / "notes.txt", opts());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("is not a tar archive"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find(".tar.xz"), std::string::npos);
  put(tmp.path() / "empty.tar.xz", "");
  auto e = locate(tmp.path() / "empty.tar.xz", opts());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("is not a tar archive"), std::string::npos) << e.error().message;
}

TEST_F(Locate, TruncatedTarballIsAClearError) {
  make_tree(tmp.path() / "linux-6.1", false);
  put(tmp.path() / "linux-6.1/filler.bin", std::string(1 << 20, 'q'));
  fs::path tarball = make_tarball(tmp.path(), "linux-6.1", "cut.tar.xz", "-J");
  fs::resize_file(tarball, fs::file_size(tarball) / 2);
  auto t = locate(tarball, opts());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("cannot decompress"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().hint.find("damaged"), std::string::npos);
}

TEST_F(Locate, MissingInput) {
  auto t = locate(tmp.path() / "nope.tar.xz", opts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::missing);
  EXPECT_NE(t.error().message.find("nope.tar.xz does not exist"), std::string::npos);
  EXPECT_NE(t.error().hint.find("linux-source"), std::string::npos);
}

TEST_F(Locate, KernelTreeIommuDirectoryAndDriversIommuItself) {
  make_tree(tmp.path() / "tree", false, "6.12.95");
  auto tree = locate(tmp.path() / "tree", opts());
  ASSERT_TRUE(tree.ok()) << tree.error().message;
  EXPECT_EQ(tree->origin, Origin::tree);
  EXPECT_EQ(tree->version->str(), "6.12.95");
  EXPECT_FALSE(fs::exists(tmp.path() / "cache")) << "a directory is used in place";

  put(tmp.path() / "only/drivers/iommu/intel-iommu.c", kDriver);
  auto only = locate(tmp.path() / "only", opts());
  ASSERT_TRUE(only.ok()) << only.error().message;
  EXPECT_EQ(only->origin, Origin::iommu_dir);
  EXPECT_FALSE(only->version.has_value());
  EXPECT_EQ(only->layout, Layout::intel_iommu_c);

  auto itself = locate(tmp.path() / "tree/drivers/iommu", opts());
  ASSERT_TRUE(itself.ok()) << itself.error().message;
  EXPECT_EQ(itself->layout, Layout::intel_dir);
  EXPECT_EQ(itself->root, fs::canonical(tmp.path() / "tree"));
  EXPECT_EQ(itself->iommu_c, fs::canonical(tmp.path() / "tree/drivers/iommu/intel/iommu.c"));

  fs::create_directories(tmp.path() / "emptydir");
  auto empty = locate(tmp.path() / "emptydir", opts());
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("holds no intel-iommu driver source"), std::string::npos) << empty.error().message;

  put(tmp.path() / "half/drivers/iommu/iommu.c", "int core;\n");
  auto half = locate(tmp.path() / "half", opts());
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("has no intel-iommu driver"), std::string::npos) << half.error().message;
}

TEST_F(Locate, TransformWorksOnBothLayouts) {
  make_tree(tmp.path() / "new", false);
  make_tree(tmp.path() / "old", true, "5.7.0");
  for (const char* d : {"new", "old"}) {
    auto t = locate(tmp.path() / d, opts());
    ASSERT_TRUE(t.ok());
    auto text = read_file_text(t->iommu_c);
    ASSERT_TRUE(text.ok());
    auto tr = relax_transform(*text, t->iommu_c_relative);
    ASSERT_TRUE(tr.ok()) << tr.error().message;
    EXPECT_EQ(tr->path, t->iommu_c_relative);
  }
}

TEST(MakefileVersion, Parses) {
  auto v = parse_makefile_version("# c\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\nNAME = Baby Opossum Posse\n");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->str(), "6.12.0-rc3");
  EXPECT_FALSE(parse_makefile_version("all:\n\techo hi\n").has_value());
  EXPECT_FALSE(parse_makefile_version("VERSION = x\nPATCHLEVEL = 1\nSUBLEVEL = 0\n").has_value());
}

TEST(DistroTarballs, MatchesMajorMinorOnly) {
  test::TempDir usr;
  put(usr.path() / "linux-source-6.1.tar.xz", "x");
  put(usr.path() / "linux-source-6.10.tar.xz", "x");
  put(usr.path() / "linux-source-5.15.0/linux-source-5.15.0.tar.bz2", "x");
  put(usr.path() / "linux-headers-6.1.0-56-amd64/Makefile", "x");
  EXPECT_EQ(distro_source_tarballs("6.1.0-56-amd64", usr.path()), (std::vector<fs::path>{usr.path() / "linux-source-6.1.tar.xz"}));
  EXPECT_EQ(distro_source_tarballs("5.15.0-91-generic", usr.path()),
            (std::vector<fs::path>{usr.path() / "linux-source-5.15.0/linux-source-5.15.0.tar.bz2"}));
  EXPECT_TRUE(distro_source_tarballs("6.12.95+deb12-amd64", usr.path()).empty());
  EXPECT_TRUE(distro_source_tarballs("garbage", usr.path()).empty());
}

TEST(Sha256, KnownValue) {
  test::TempDir d;
  put(d.path() / "abc", "abc");
  auto h = sha256_file(d.path() / "abc");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_FALSE(sha256_file(d.path() / "missing").ok());
}

}  // namespace
