// The source locator on small synthetic trees and tarballs made here: both driver layouts, every
// compression, the cache, and clear errors for inputs that are not a kernel source.
#include "source/source.h"
#include "common/file.h"
#include "source/tar_reader.h"
#include "source/transform.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <random>

namespace fs = std::filesystem;
using namespace rr;
using namespace rr::source;

namespace {

constexpr std::string_view kDriver =
    "#include \"iommu.h\"\n#include \"../irq_remapping.h\"\n"
    "static bool device_rmrr_is_relaxable(struct device *dev)\n{\n\treturn false;\n}\n";

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

void put(const fs::path& p, std::string_view text) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(write_file_text(p, text).ok()) << p;
}

// A miniature kernel tree: top Makefile, the driver, unrelated files that must not be extracted.
void make_tree(const fs::path& root, bool old_layout, std::string_view version = "6.1.192") {
  std::string v(version);
  auto d1 = v.find('.'), d2 = v.find('.', d1 + 1);
  put(root / "Makefile",
      fmt::format("# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\nEXTRAVERSION =\nNAME = Test\n",
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
  for (const Case& c :
       {Case{"s.tar.xz", "-J"}, Case{"s.tar.gz", "-z"}, Case{"s.tar.zst", "--zstd"}, Case{"s.tar.bz2", "-j"}, Case{"s.tar", ""}}) {
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

// A cached source costs a stat, not a read of the tarball; a file rewritten in place (even with its
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
  auto r =
      test::run_command(fmt::format("tar -C {}/src -cJf {}/flat.tar.xz Makefile drivers tools", tmp.path().string(), tmp.path().string()));
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
  // Incompressible and first in the archive: the cut falls before drivers/iommu, which is never reached.
  put(tmp.path() / "linux-6.1/Aaa-filler.bin", random_bytes(1 << 20, 1));
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::string>>{
           {"cut.tar.xz", "-J"}, {"cut.tar.gz", "-z"}, {"cut.tar.zst", "--zstd"}, {"cut.tar.bz2", "-j"}}) {
    SCOPED_TRACE(name);
    fs::path tarball = make_tarball(tmp.path(), "linux-6.1", name, "--sort=name " + flags);
    fs::resize_file(tarball, fs::file_size(tarball) / 2);
    auto t = locate(tarball, opts());
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ExitCode::bad_input);
    EXPECT_NE(t.error().message.find("cannot decompress"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find("truncated"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().hint.find("damaged"), std::string::npos);
  }
  // An uncompressed archive cut inside a member: the tar stream itself says so.
  fs::path plain = make_tarball(tmp.path(), "linux-6.1", "cut.tar", "--sort=name");
  fs::resize_file(plain, 600 * 1024);
  auto t = locate(plain, opts());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ExitCode::bad_input);
  EXPECT_NE(t.error().message.find("cannot extract"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("truncated"), std::string::npos) << t.error().message;
  for (const auto& e : fs::directory_iterator(tmp.path() / "cache"))
    EXPECT_FALSE(e.path().filename().string().starts_with(".extract-")) << "staging directories are cleaned up";
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

// sha256_file takes the x86 SHA extensions when the CPU has them: the same digest as sha256sum at every
// padding case and across its 1 MiB read chunks.
TEST(Sha256, FileDigestMatchesSha256sum) {
  test::TempDir d;
  std::string data = random_bytes((2 << 20) + 200, 7);
  for (size_t n : {size_t{0}, size_t{1}, size_t{55}, size_t{56}, size_t{63}, size_t{64}, size_t{65}, size_t{119}, size_t{120}, size_t{128},
                   size_t{1000003}, (size_t{1} << 20) - 1, size_t{1} << 20, (size_t{1} << 20) + 63, (size_t{2} << 20) + 129}) {
    SCOPED_TRACE(n);
    put(d.path() / "f", data.substr(0, n));
    auto ours = sha256_file(d.path() / "f");
    ASSERT_TRUE(ours.ok());
    auto theirs = test::run_command(fmt::format("sha256sum {}", (d.path() / "f").string()));
    ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
    EXPECT_EQ(*ours, theirs.output.substr(0, 64));
  }
}

// ---- the tar reader (tar_reader.h) --------------------------------------------------------------------

// A ustar header with a valid checksum; `prefix` is the POSIX prefix field.
std::string tar_header(std::string_view name, char type, size_t size, std::string_view link = {}, std::string_view prefix = {}) {
  std::string h(512, '\0');
  auto put_field = [&](size_t off, size_t len, std::string_view v) { h.replace(off, std::min(len, v.size()), v.substr(0, len)); };
  put_field(0, 100, name);
  put_field(100, 8, "0000644");
  put_field(108, 8, "0000000");
  put_field(116, 8, "0000000");
  put_field(124, 12, fmt::format("{:011o}", size));
  put_field(136, 12, fmt::format("{:011o}", 1700000000));
  h[156] = type;
  put_field(157, 100, link);
  h.replace(257, 8,
            std::string("ustar\0"
                        "00",
                        8));
  put_field(345, 155, prefix);
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put_field(148, 8, fmt::format("{:06o}", sum));
  h[154] = '\0';
  return h;
}
std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}
std::string tar_file(std::string_view name, std::string_view data) {
  return tar_header(name, '0', data.size()) + padded(std::string(data));
}
std::string tar_dir(std::string_view name) { return tar_header(name, '5', 0); }
std::string tar_end() { return std::string(1024, '\0'); }
std::string pax(char type, std::string_view records) { return tar_header("pax", type, records.size()) + padded(std::string(records)); }
std::string pax_record(std::string_view key, std::string_view value) {
  size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  size_t len = body + std::to_string(body).size();
  if (std::to_string(len).size() != std::to_string(body).size()) ++len;
  return fmt::format("{} {}={}\n", len, key, value);
}

// A kernel tree's archive in the order tar writes it depth-first: Makefile, drivers/iommu, then the rest.
std::string kernel_archive(std::string_view top, std::string tail) {
  std::string t = std::string(top);
  return tar_dir(t + "/") + tar_file(t + "/Makefile", "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 7\n") + tar_dir(t + "/drivers/") +
         tar_dir(t + "/drivers/iommu/") + tar_file(t + "/drivers/iommu/iommu.c", "core\n") + tar_dir(t + "/drivers/iommu/intel/") +
         tar_file(t + "/drivers/iommu/intel/iommu.c", kDriver) + tar_file(t + "/drivers/iommu/intel/iommu.h", "h\n") +
         tar_file(t + "/drivers/net/net.c", "net\n") + tail;
}

// Every regular file under dir, relative, with its content.
std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    EXPECT_FALSE(e.is_symlink()) << e.path() << ": only regular files and directories are written";
    if (e.is_regular_file()) out[e.path().lexically_relative(dir).string()] = *read_file_text(e.path());
  }
  return out;
}

using TarExtract = Fixture;

TEST_F(TarExtract, WritesTheMembersTheOldTarPatternsSelected) {
  // Flat archive, lookalikes first: tools/drivers/iommu and tools/Makefile match */drivers/iommu and */Makefile
  // and are written (the caller prunes them); reading goes on to the top's drivers/iommu and stops after it.
  std::string a = tar_file("tools/Makefile", "all:\n") + tar_file("tools/drivers/iommu/x.c", "int x;\n") + tar_file("README", "r\n") +
                  tar_file("Makefile", "VERSION = 5\n") + tar_file("arch/x86/Makefile", "deep\n") + tar_file("drivers/Makefile", "d\n") +
                  tar_file("./drivers/iommu/intel-iommu.c", kDriver) + tar_file("drivers/iommu/dmar.c", "dmar\n") +
                  tar_file("drivers/net/net.c", "net\n") + tar_file("zzz/drivers/iommu/late.c", "late\n") + tar_end();
  MemorySource in(a);
  auto st = extract_iommu_source(in, tmp.path() / "out");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(st->stopped_early);
  EXPECT_EQ(files_under(tmp.path() / "out"), (std::map<std::string, std::string>{
                                                 {"tools/Makefile", "all:\n"},
                                                 {"tools/drivers/iommu/x.c", "int x;\n"},
                                                 {"Makefile", "VERSION = 5\n"},
                                                 {"drivers/Makefile", "d\n"},
                                                 {"drivers/iommu/intel-iommu.c", std::string(kDriver)},
                                                 {"drivers/iommu/dmar.c", "dmar\n"},
                                             }));
  EXPECT_EQ(st->members, 9u) << "stopped at the first member after drivers/iommu";
}

TEST_F(TarExtract, StopsAfterDriversIommuAndNeverReadsTheCorruptTail) {
  std::string good = kernel_archive("linux-6.1", "");
  const size_t stop_at = good.size();  // the end of drivers/net/net.c, the first member outside drivers/iommu
  // What follows cannot be read: a header with a wrong checksum, then 4 MiB of noise.
  std::string a = good + std::string(512, 'x') + random_bytes(4 << 20, 2);
  MemorySource in(a);
  auto st = extract_iommu_source(in, tmp.path() / "out");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(st->stopped_early);
  EXPECT_EQ(st->stream_bytes, stop_at - 512 - 512 + 512) << "the header of drivers/net/net.c is the last thing parsed";
  EXPECT_LE(in.bytes_read(), size_t{1} << 20) << "one read-ahead buffer at most, not the whole stream";
  auto files = files_under(tmp.path() / "out");
  EXPECT_EQ(files.size(), 4u);
  EXPECT_EQ(files["linux-6.1/drivers/iommu/intel/iommu.c"], kDriver);
  EXPECT_FALSE(fs::exists(tmp.path() / "out/linux-6.1/drivers/net"));

  // Without the early stop the same tail is an error: the test's tail is really unreadable.
  MemorySource whole(tar_file("linux-6.1/drivers/iommu/intel/iommu.c", kDriver) + std::string(512, 'x'));
  auto bad = extract_iommu_source(whole, tmp.path() / "out2");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("wrong checksum"), std::string::npos) << bad.error().message;
}

TEST_F(TarExtract, MakefileAfterDriversIsWaitedFor) {
  // The top Makefile written after drivers/: reading goes on until it is out, then stops.
  std::string a = tar_dir("k/") + tar_file("k/drivers/iommu/intel/iommu.c", kDriver) + tar_file("k/drivers/net/n.c", "n\n") +
                  tar_file("k/Makefile", "VERSION = 6\n") + tar_file("k/zzz.c", "z\n") + std::string(512, 'x');
  MemorySource in(a);
  auto st = extract_iommu_source(in, tmp.path() / "out");
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(st->stopped_early);
  EXPECT_EQ(files_under(tmp.path() / "out").size(), 2u);
  // No Makefile at all (an archive of drivers/iommu): read to the end.
  MemorySource only(tar_file("k/drivers/iommu/intel/iommu.c", kDriver) + tar_file("k/drivers/x.c", "x\n") + tar_end());
  auto st2 = extract_iommu_source(only, tmp.path() / "out2");
  ASSERT_TRUE(st2.ok()) << st2.error().message;
  EXPECT_FALSE(st2->stopped_early);
}

TEST_F(TarExtract, PathTraversalIsRefused) {
  fs::path out = tmp.path() / "deep/out";
  struct Case {
    std::string name, archive, message;
  };
  std::vector<Case> cases = {
      {"dot-dot member", tar_file("../drivers/iommu/x.c", "x"), "absolute names and \"..\" are refused"},
      {"dot-dot inside", tar_file("linux/drivers/iommu/../../../../escape.c", "x"), "absolute names and \"..\" are refused"},
      {"absolute member", tar_file((tmp.path() / "drivers/iommu/abs.c").string(), "x"), "absolute names and \"..\" are refused"},
      {"absolute member elsewhere", tar_file("/etc/motd", "x"), "absolute names and \"..\" are refused"},
      {"symlink to an absolute path",
       tar_header("linux/drivers/iommu/intel", '2', 0, "/etc") + tar_file("linux/drivers/iommu/intel/iommu.c", "x"),
       "outside the archive: refused"},
      {"symlink climbing out", tar_header("linux/drivers/iommu/up", '2', 0, "../../../../../etc/passwd"), "outside the archive: refused"},
      {"hard link climbing out", tar_header("linux/drivers/iommu/h.c", '1', 0, "../../etc/passwd"), "outside the archive: refused"},
      {"hard link to an absolute path", tar_header("linux/drivers/iommu/h.c", '1', 0, "/etc/passwd"), "outside the archive: refused"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::remove_all(tmp.path() / "deep");
    fs::create_directories(out);
    MemorySource in(c.archive + tar_end());
    auto st = extract_iommu_source(in, out);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ExitCode::bad_input);
    EXPECT_NE(st.error().message.find(c.message), std::string::npos) << st.error().message;
    // Nothing outside `out`, nothing but directories and regular files inside it.
    for (const auto& e : fs::recursive_directory_iterator(tmp.path()))
      if (!e.path().string().starts_with(out.string()) && e.path() != tmp.path() / "deep")
        ADD_FAILURE() << "written outside the destination: " << e.path();
    files_under(out);
  }
}

TEST_F(TarExtract, LinksInsideTheTreeBecomeRegularFiles) {
  std::string a = tar_file("linux/drivers/iommu/intel/iommu.c", kDriver) +
                  tar_header("linux/drivers/iommu/intel/alias.c", '2', 0, "iommu.c") +
                  tar_header("linux/drivers/iommu/hard.c", '1', 0, "linux/drivers/iommu/intel/iommu.c") +
                  tar_header("linux/drivers/iommu/dangling.h", '2', 0, "../../include/linux/x.h") +
                  tar_header("linux/drivers/iommu/fifo", '6', 0) + tar_end();
  MemorySource in(a);
  auto st = extract_iommu_source(in, tmp.path() / "out");
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto files = files_under(tmp.path() / "out");
  EXPECT_EQ(files["linux/drivers/iommu/intel/alias.c"], kDriver);
  EXPECT_EQ(files["linux/drivers/iommu/hard.c"], kDriver);
  EXPECT_FALSE(fs::exists(tmp.path() / "out/linux/drivers/iommu/dangling.h", *std::make_unique<std::error_code>()))
      << "a link to something not extracted writes nothing";
  EXPECT_FALSE(fs::exists(tmp.path() / "out/linux/drivers/iommu/fifo"));
  EXPECT_EQ(files.size(), 3u);
}

TEST_F(TarExtract, LongNamesPaxUstarPrefixAndGnu) {
  std::string deep = "linux/drivers/iommu/" + std::string(120, 'd') + "/" + std::string(90, 'f') + ".h";
  // Hand-made: a global pax header (git archive writes one), a pax path and size, a ustar prefix.
  std::string a = pax('g', pax_record("comment", "0123abcd")) + pax('x', pax_record("path", deep)) +
                  tar_file("ignored-short-name", "pax\n") + pax('x', pax_record("size", "5")) +
                  tar_header("linux/drivers/iommu/sized.c", '0', 999) + padded("sized") +
                  tar_header(std::string(60, 'n') + ".c", '0', 7, {}, "linux/drivers/iommu/" + std::string(40, 'p')) + padded("prefix\n") +
                  tar_file("linux/drivers/iommu/intel/iommu.c", kDriver) + tar_end();
  MemorySource in(a);
  auto st = extract_iommu_source(in, tmp.path() / "out");
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto files = files_under(tmp.path() / "out");
  EXPECT_EQ(files[deep], "pax\n");
  EXPECT_EQ(files["linux/drivers/iommu/sized.c"], "sized") << "the pax size wins over the header's";
  EXPECT_EQ(files["linux/drivers/iommu/" + std::string(40, 'p') + "/" + std::string(60, 'n') + ".c"], "prefix\n");
  EXPECT_EQ(files.size(), 4u);

  // The same names from GNU tar in each of its formats (GNU 'L' records, pax, ustar prefix).
  put(tmp.path() / "src" / deep, "long\n");
  put(tmp.path() / "src/linux/drivers/iommu/intel/iommu.c", kDriver);
  put(tmp.path() / "src/linux/Makefile", "VERSION = 6\n");
  for (const char* format : {"gnu", "pax", "ustar"}) {
    SCOPED_TRACE(format);
    if (std::string_view(format) == "ustar") {  // ustar cannot store a 120-character component
      fs::remove_all(tmp.path() / "src/linux/drivers/iommu" / std::string(120, 'd'));
      put(tmp.path() / "src/linux/drivers/iommu" / std::string(80, 'u') / (std::string(90, 'f') + ".h"), "long\n");
    }
    fs::path t = make_tarball(tmp.path() / "src", "linux", fmt::format("{}.tar", format), fmt::format("--format={}", format));
    auto bytes = read_file_text(t);
    ASSERT_TRUE(bytes.ok());
    MemorySource m(*bytes);
    fs::path out = tmp.path() / fmt::format("out-{}", format);
    auto s = extract_iommu_source(m, out);
    ASSERT_TRUE(s.ok()) << s.error().message;
    auto f = files_under(out);
    EXPECT_EQ(f.size(), 3u);
    EXPECT_EQ(f["linux/drivers/iommu/intel/iommu.c"], kDriver);
    size_t longs = 0;
    for (const auto& [path, text] : f) longs += path.size() > 150 && text == "long\n";  // more than a ustar name field
    EXPECT_EQ(longs, 1u);
  }
}

TEST_F(TarExtract, TruncatedAndDamagedArchivesAreErrors) {
  std::string good = kernel_archive("linux", tar_end());
  size_t driver_data = good.find(std::string(kDriver));
  ASSERT_NE(driver_data, std::string::npos);
  struct Case {
    std::string name, archive, message;
  };
  std::string bad_sum = good;
  bad_sum[512 + 10] ^= 1;  // a byte of the second header (the Makefile's name)
  std::string bad_pax = pax('x', "99 path=x\n") + tar_file("linux/drivers/iommu/a.c", "a");
  std::vector<Case> cases = {
      {"inside the driver's data", good.substr(0, driver_data + 10), "ends inside member linux/drivers/iommu/intel/iommu.c"},
      {"inside a header", good.substr(0, driver_data - 512 + 100), "ends inside a header"},
      {"after a long-name record", tar_header("././@LongLink", 'L', 10) + padded("linux/x.c"), "ends inside a header"},
      {"a long-name record without its member", tar_header("././@LongLink", 'L', 10) + padded("linux/x.c") + tar_end(), "has no member"},
      {"inside a skipped member", tar_file("linux/big.bin", std::string(5000, 'b')).substr(0, 3000), "ends inside member linux/big.bin"},
      {"a wrong checksum", bad_sum, "wrong checksum"},
      {"a malformed pax record", bad_pax, "pax header"},
      {"not a tar archive", std::string(2048, 'z'), "not a tar archive"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    MemorySource in(c.archive);
    auto st = extract_iommu_source(in, tmp.path() / c.name);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code, ExitCode::bad_input);
    EXPECT_NE(st.error().message.find(c.message), std::string::npos) << st.error().message;
  }
  // A stream that ends between members without end-of-archive blocks is accepted, as by tar.
  MemorySource ends(tar_file("linux/drivers/iommu/intel/iommu.c", kDriver));
  EXPECT_TRUE(extract_iommu_source(ends, tmp.path() / "ends").ok());
}

// Through open_tarball: every compression stops early, and a tail damaged past drivers/iommu is never read.
TEST_F(Locate, DamagedTailAfterDriversIommuIsNeverRead) {
  make_tree(tmp.path() / "linux-6.1", false);
  put(tmp.path() / "linux-6.1/zzz/filler.bin", random_bytes(3 << 19, 3));  // after drivers/ in name order
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::string>>{{"tail.tar.xz", "-I 'xz -T2 --block-size=262144'"},
                                                                                    {"tail1.tar.xz", "-J"},
                                                                                    {"tail.tar.gz", "-z"},
                                                                                    {"tail.tar.zst", "--zstd"},
                                                                                    {"tail.tar.bz2", "-j"},
                                                                                    {"tail.tar", ""}}) {
    SCOPED_TRACE(name);
    fs::path tarball = make_tarball(tmp.path(), "linux-6.1", name, "--sort=name " + flags);
    // Overwrite the last third with noise: inside the filler, well after drivers/iommu.
    auto bytes = read_file_text(tarball);
    ASSERT_TRUE(bytes.ok());
    std::string b = *bytes;
    size_t from = b.size() * 2 / 3;
    std::string noise = random_bytes(b.size() - from, 4);
    b.replace(from, noise.size(), noise);
    ASSERT_TRUE(write_file_text(tarball, b).ok());
    if (name != "tail.tar") {
      auto whole = test::run_command(fmt::format("tar -tf {} >/dev/null", tarball.string()));
      EXPECT_NE(whole.exit_code, 0) << "reading the whole archive fails: " << whole.output;
    }
    auto t = open_tarball(tarball, opts());
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_TRUE(t->extract_stopped_early);
    EXPECT_LT(t->extract_stream_bytes, uint64_t{1} << 20);
    EXPECT_EQ(t->version->str(), "6.1.192");
    EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/iommu.h"));
    EXPECT_FALSE(fs::exists(t->root / "zzz"));
    EXPECT_FALSE(fs::exists(t->root / "tools"));
    Json j = to_json(*t);
    EXPECT_TRUE(j["extract_stopped_early"].as_bool());
  }
}

// Concatenated compressed streams (pbzip2, pigz --independent, cat a.xz b.xz) are one tar stream, as for xz -dc.
TEST_F(Locate, ConcatenatedStreamsAreReadAsOne) {
  make_tree(tmp.path() / "linux-6.1", false);
  fs::path plain = make_tarball(tmp.path(), "linux-6.1", "whole.tar", "--sort=name");
  auto bytes = read_file_text(plain);
  ASSERT_TRUE(bytes.ok());
  size_t half = bytes->size() / 2;
  ASSERT_TRUE(write_file_text(tmp.path() / "a.part", bytes->substr(0, half)).ok());
  ASSERT_TRUE(write_file_text(tmp.path() / "b.part", bytes->substr(half)).ok());
  for (const auto& [ext, tool] :
       std::vector<std::pair<std::string, std::string>>{{"xz", "xz -c"}, {"gz", "gzip -c"}, {"zst", "zstd -qc"}, {"bz2", "bzip2 -c"}}) {
    SCOPED_TRACE(ext);
    fs::path out = tmp.path() / ("cat.tar." + ext);
    auto r = test::run_command(fmt::format("cd {} && ({} a.part; {} b.part) > {}", tmp.path().string(), tool, tool, out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto t = open_tarball(out, opts());
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/iommu.c"));
  }
}

// The in-process decoders give exactly what the command-line tools give, read in pieces of any size, with much
// output from little input (a run of zeros) and none from much (random bytes), one stream or several.
TEST_F(Locate, DecodersGiveWhatTheToolsGive) {
  std::string plain = std::string(3 << 20, '\0') + random_bytes(300000, 6) + std::string(1 << 20, 'a');
  put(tmp.path() / "data", plain);
  put(tmp.path() / "a.part", plain.substr(0, 1000001));
  put(tmp.path() / "b.part", plain.substr(1000001));
  struct Case {
    Compression c;
    std::string tool;
  };
  for (const Case& k :
       {Case{Compression::xz, "xz -c"}, Case{Compression::xz, "xz -T2 --block-size=1000000 -c"}, Case{Compression::gzip, "gzip -c"},
        Case{Compression::zstd, "zstd -qc"}, Case{Compression::bzip2, "bzip2 -c"}, Case{Compression::none, "cat"}}) {
    for (bool concatenated : {false, true}) {
      SCOPED_TRACE(k.tool + (concatenated ? ", two streams" : ""));
      fs::path f = tmp.path() / "data.z";
      std::string cmd = concatenated ? fmt::format("({0} a.part; {0} b.part)", k.tool) : fmt::format("{} data", k.tool);
      auto r = test::run_command(fmt::format("cd {} && {} > {}", tmp.path().string(), cmd, f.string()));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      auto src = open_decompressed(f, k.c);
      ASSERT_TRUE(src.ok()) << src.error().message;
      std::string got;
      std::vector<uint8_t> buf(1 << 20);
      for (size_t i = 0;; ++i) {
        size_t want = i % 3 == 0 ? 1 + i % 7 : i % 3 == 1 ? 65536 + i : buf.size();
        auto n = (*src)->read(buf.data(), want);
        ASSERT_TRUE(n.ok()) << n.error().message;
        if (*n == 0) break;
        ASSERT_LE(*n, want);
        got.append(reinterpret_cast<const char*>(buf.data()), *n);
      }
      EXPECT_TRUE(got == plain) << "decoded " << got.size() << " bytes, expected " << plain.size();
    }
  }
}

TEST_F(Locate, DamagedCompressedDataBeforeTheDriverIsADecompressionError) {
  make_tree(tmp.path() / "linux-6.1", false);
  put(tmp.path() / "linux-6.1/Aaa-filler.bin", random_bytes(1 << 20, 5));  // first in name order
  for (const auto& [name, flags] : std::vector<std::pair<std::string, std::string>>{
           {"bad.tar.xz", "-J"}, {"bad.tar.gz", "-z"}, {"bad.tar.zst", "--zstd"}, {"bad.tar.bz2", "-j"}}) {
    SCOPED_TRACE(name);
    fs::path tarball = make_tarball(tmp.path(), "linux-6.1", name, "--sort=name " + flags);
    auto bytes = read_file_text(tarball);
    ASSERT_TRUE(bytes.ok());
    std::string b = *bytes;
    for (size_t i = b.size() / 4; i < b.size() / 4 + 64; ++i) b[i] = static_cast<char>(~b[i]);
    ASSERT_TRUE(write_file_text(tarball, b).ok());
    auto t = open_tarball(tarball, opts());
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.error().code, ExitCode::bad_input);
    EXPECT_NE(t.error().message.find("cannot decompress"), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().hint.find("damaged"), std::string::npos);
  }
  // Compressed data that is no tar archive: the archive is the problem.
  put(tmp.path() / "text", std::string(4000, 't'));
  ASSERT_EQ(test::run_command(fmt::format("xz -c {}/text > {}/text.tar.xz", tmp.path().string(), tmp.path().string())).exit_code, 0);
  auto t = open_tarball(tmp.path() / "text.tar.xz", opts());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("cannot extract"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("not a tar archive"), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().hint.find("not a tar archive"), std::string::npos);
}

TEST_F(Locate, FlatArchiveWithLookalikesFirstKeepsTheTopTree) {
  make_tree(tmp.path() / "src", false);
  // tools/ written before drivers/: its drivers/iommu lookalike and Makefile must not end the extraction.
  auto r = test::run_command(
      fmt::format("tar -C {}/src -cf {}/flat.tar tools Makefile drivers Documentation", tmp.path().string(), tmp.path().string()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto t = open_tarball(tmp.path() / "flat.tar", opts());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->root, tmp.path() / "cache" / t->tarball_sha256);
  EXPECT_EQ(t->version->str(), "6.1.192");
  EXPECT_TRUE(fs::is_regular_file(t->root / "drivers/iommu/intel/iommu.c"));
  EXPECT_FALSE(fs::exists(t->root / "tools"));
  EXPECT_TRUE(t->extract_stopped_early) << "Documentation/ follows drivers/iommu";
}

}  // namespace
