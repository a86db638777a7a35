// The `source` stage: where the target kernel's intel-iommu driver source is.
//
// Inputs: a linux-source tarball (.tar.xz/.tar.gz/.tar.zst/.tar.bz2 or plain .tar, recognised by content),
// a kernel tree, or a directory that holds just drivers/iommu (or is drivers/iommu). A tarball is extracted
// partially -- drivers/iommu/ and the top Makefile (the version), which is all the compile needs on top of a
// kernel headers package -- into a cache directory named by the tarball's SHA-256, so later runs only hash it.
// The extraction reads the tarball in this process and stops once those members are out (tar_reader.h).
#pragma once

#include "common/json.h"
#include "common/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::source {

enum class Layout {
  intel_iommu_c,  // drivers/iommu/intel-iommu.c (before 5.8)
  intel_dir,  // drivers/iommu/intel/iommu.c (5.8 and later)
};
std::string layout_name(Layout layout);

enum class Origin { tarball, tree, iommu_dir };
std::string origin_name(Origin origin);

struct KernelVersion {
  unsigned version = 0, patchlevel = 0, sublevel = 0;
  std::string extraversion;
  std::string str() const;  // "6.1.192"
};

// Reads VERSION/PATCHLEVEL/SUBLEVEL/EXTRAVERSION from a top-level kernel Makefile's text.
std::optional<KernelVersion> parse_makefile_version(std::string_view makefile_text);

struct SourceTree {
  std::filesystem::path root;  // holds drivers/iommu (a cache entry for tarballs)
  std::filesystem::path iommu_c;  // absolute path of the intel-iommu driver's main file
  std::string iommu_c_relative;  // "drivers/iommu/intel/iommu.c" or "drivers/iommu/intel-iommu.c"
  Layout layout = Layout::intel_dir;
  std::vector<std::filesystem::path> include_dirs;  // for the driver's relative #include "..." lines
  std::optional<KernelVersion> version;  // from <root>/Makefile when present
  Origin origin = Origin::tree;
  std::filesystem::path input;  // what the caller passed
  std::string tarball_sha256;  // tarballs only
  bool cache_hit = false;  // tarballs only: already extracted by an earlier run
  double hash_seconds = 0;  // tarballs only
  bool hash_remembered = false;  // tarballs only: the hash came from <cache>/.sha256 (same file, unchanged)
  double extract_seconds = 0;  // tarballs only, 0 on a cache hit
  uint64_t extract_stream_bytes = 0;  // tarballs only: bytes of the decompressed tar stream read, 0 on a cache hit
  bool extract_stopped_early = false;  // tarballs only: reading stopped before the end of the archive
};

struct LocateOptions {
  // Where tarballs are extracted; one subdirectory per tarball content hash. Empty: default_cache_dir(), so
  // that RELAX_RMRR_CACHE is honoured by build/verify/patch as documented.
  std::filesystem::path cache_dir;
};

// The default cache directory: $RELAX_RMRR_CACHE/source, else /var/cache/relax-rmrr/source when writable,
// else $XDG_CACHE_HOME (or ~/.cache)/relax-rmrr/source.
std::filesystem::path default_cache_dir();

// Any of the three inputs; errors name what was expected (ExitCode::missing / bad_input).
Result<SourceTree> locate(const std::filesystem::path& input, const LocateOptions& options = {});
// A directory: a kernel tree, a directory holding drivers/iommu, or drivers/iommu itself.
Result<SourceTree> open_directory(const std::filesystem::path& dir);
Result<SourceTree> open_tarball(const std::filesystem::path& tarball, const LocateOptions& options = {});

// Distribution source tarballs for a kernel release ("6.1.0-56-amd64" -> /usr/src/linux-source-6.1.tar.*),
// existing ones only, best first.
std::vector<std::filesystem::path> distro_source_tarballs(std::string_view release, const std::filesystem::path& usr_src = "/usr/src");

// For --json summaries: root, driver, layout, version, origin, sha256, cache_hit, seconds.
Json to_json(const SourceTree& tree);

// SHA-256 of a file as lowercase hex.
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace rr::source
