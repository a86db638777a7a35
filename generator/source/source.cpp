#include "source/source.h"

#include "common/atomic_file.h"
#include "common/file.h"
#include "common/json.h"
#include "common/sha256.h"
#include "source/tar_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <memory>

namespace fs = std::filesystem;

namespace rr::source {

namespace {

constexpr std::string_view kMarker = ".relax-rmrr-source.json";
const char* const kExpected = "expected drivers/iommu/intel/iommu.c (Linux 5.8 and later) or drivers/iommu/intel-iommu.c (before 5.8)";

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Where the driver is under a directory that holds drivers/iommu's content.
std::optional<std::pair<Layout, fs::path>> driver_in_iommu_dir(const fs::path& iommu_dir) {
  if (is_file(iommu_dir / "intel" / "iommu.c")) return std::pair{Layout::intel_dir, iommu_dir / "intel" / "iommu.c"};
  if (is_file(iommu_dir / "intel-iommu.c")) return std::pair{Layout::intel_iommu_c, iommu_dir / "intel-iommu.c"};
  return std::nullopt;
}

using FileStream = std::unique_ptr<FILE, int (*)(FILE*)>;

// A stdio stream over a regular file (common/file.h: never a FIFO or a device).
Result<FileStream> open_stream(const fs::path& path) {
  RR_ASSIGN(UniqueFd fd, open_regular_file(path));
  FileStream f(::fdopen(fd.get(), "rb"), &std::fclose);
  if (!f) return make_error(ExitCode::environment, "cannot read {}: {}", path.string(), std::strerror(errno));
  fd.release();  // the stream owns it now
  return f;
}

Result<Compression> sniff(const fs::path& file) {
  // Read only the first 512 bytes: the tar header or a compressor's magic number.
  RR_ASSIGN(auto f, open_stream(file));
  unsigned char b[512] = {};
  size_t n = std::fread(b, 1, sizeof b, f.get());
  auto magic = [&](std::initializer_list<unsigned char> m) { return n >= m.size() && std::equal(m.begin(), m.end(), b); };
  if (magic({0xfd, '7', 'z', 'X', 'Z', 0x00})) return Compression::xz;
  if (magic({0x1f, 0x8b})) return Compression::gzip;
  if (magic({0x28, 0xb5, 0x2f, 0xfd})) return Compression::zstd;
  if (magic({'B', 'Z', 'h'})) return Compression::bzip2;
  if (n == 512 && std::string_view(reinterpret_cast<const char*>(b) + 257, 5) == "ustar") return Compression::none;
  return Error{
      fmt::format("{} is not a tar archive: expected a Linux source tarball (.tar.xz, .tar.gz, .tar.zst, .tar.bz2 or .tar)", file.string()),
      ExitCode::bad_input,
      {}};
}

// Remembers a read error of the decompressed stream, to tell a damaged compressed file from a damaged archive.
struct WatchedSource final : ByteSource {
  explicit WatchedSource(ByteSource& s) : in(s) {}
  Result<size_t> read(uint8_t* buf, size_t n) override {
    auto r = in.read(buf, n);
    if (!r) failure = r.error();
    return r;
  }
  void drain() {
    std::vector<uint8_t> buf(size_t{1} << 20);
    while (!failure) {
      auto r = read(buf.data(), buf.size());
      if (!r || *r == 0) break;
    }
  }
  ByteSource& in;
  std::optional<Error> failure;
};

// The directory under `staging` that holds drivers/iommu: staging itself or one top-level directory.
std::optional<fs::path> find_extracted_root(const fs::path& staging) {
  if (is_dir(staging / "drivers" / "iommu")) return staging;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(staging, ec))
    if (e.is_directory() && is_dir(e.path() / "drivers" / "iommu")) return e.path();
  return std::nullopt;
}

void prune_to_needed(const fs::path& root) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::string n = e.path().filename().string();
    if (n != "drivers" && n != "Makefile") fs::remove_all(e.path(), ec);
  }
  for (const auto& e : fs::directory_iterator(root / "drivers", ec))
    if (e.path().filename() != "iommu") fs::remove_all(e.path(), ec);
}

std::string now_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string layout_name(Layout layout) {
  return layout == Layout::intel_dir ? "drivers/iommu/intel/iommu.c" : "drivers/iommu/intel-iommu.c";
}

std::string origin_name(Origin origin) {
  switch (origin) {
    case Origin::tarball: return "tarball";
    case Origin::tree: return "tree";
    case Origin::iommu_dir: return "iommu-dir";
  }
  return "?";
}

std::string KernelVersion::str() const { return fmt::format("{}.{}.{}{}", version, patchlevel, sublevel, extraversion); }

std::optional<KernelVersion> parse_makefile_version(std::string_view text) {
  std::optional<unsigned> v, p, s;
  std::string extra;
  for (const auto& line : split_lines(text)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(std::string_view(line).substr(0, eq));
    std::string value = trim(std::string_view(line).substr(eq + 1));
    auto num = [&]() -> std::optional<unsigned> {
      auto u = parse_uint(value, 10);
      if (!u || *u > 100000) return std::nullopt;
      return static_cast<unsigned>(*u);
    };
    if (key == "VERSION" && !v) v = num();
    else if (key == "PATCHLEVEL" && !p) p = num();
    else if (key == "SUBLEVEL" && !s) s = num();
    else if (key == "EXTRAVERSION" && extra.empty()) extra = value;
    if (v && p && s && key == "NAME") break;
  }
  if (!v || !p || !s) return std::nullopt;
  return KernelVersion{*v, *p, *s, extra};
}

fs::path default_cache_dir() { return default_cache_root() / "source"; }

Result<SourceTree> open_directory(const fs::path& dir_in) {
  std::error_code ec;
  if (!fs::exists(dir_in, ec)) return Error{fmt::format("{} does not exist", dir_in.string()), ExitCode::missing, {}};
  if (!is_dir(dir_in)) return Error{fmt::format("{} is not a directory", dir_in.string()), ExitCode::bad_input, {}};
  fs::path dir = fs::weakly_canonical(fs::absolute(dir_in), ec);
  if (ec) dir = fs::absolute(dir_in);

  SourceTree t;
  t.input = dir_in;
  fs::path iommu_dir;
  if (is_dir(dir / "drivers" / "iommu")) {
    t.root = dir;
    iommu_dir = dir / "drivers" / "iommu";
  } else if (driver_in_iommu_dir(dir)) {  // the caller pointed at drivers/iommu itself
    iommu_dir = dir;
    t.root = dir.parent_path().parent_path();
  } else {
    return Error{fmt::format("{} holds no intel-iommu driver source: {} under it (a kernel tree, a directory holding "
                             "drivers/iommu, or drivers/iommu itself)",
                             dir.string(), kExpected),
                 ExitCode::bad_input,
                 {}};
  }
  auto found = driver_in_iommu_dir(iommu_dir);
  if (!found)
    return Error{fmt::format("{} has no intel-iommu driver: {}", iommu_dir.string(), kExpected), ExitCode::bad_input,
                 "is the source complete? A partial copy must keep drivers/iommu whole"};
  t.layout = found->first;
  t.iommu_c = found->second;
  t.iommu_c_relative = layout_name(t.layout);
  if (t.layout == Layout::intel_dir) t.include_dirs.push_back(iommu_dir / "intel");
  t.include_dirs.push_back(iommu_dir);

  if (auto mk = read_file_text(t.root / "Makefile", 1 << 20); mk) t.version = parse_makefile_version(*mk);
  t.origin = t.version ? Origin::tree : Origin::iommu_dir;
  return t;
}

Result<std::string> sha256_file(const fs::path& path) {
  RR_ASSIGN(auto f, open_stream(path));
  constexpr size_t kChunk = size_t{1} << 20;
  Sha256 sha;
  std::vector<unsigned char> buf(kChunk);
  for (;;) {
    size_t n = std::fread(buf.data(), 1, buf.size(), f.get());
    if (n == 0) break;
    sha.update(buf.data(), n);
  }
  if (std::ferror(f.get())) return make_error(ExitCode::bad_input, "cannot read {}: {}", path.string(), std::strerror(errno));
  std::string hex = sha.hex();
  return hex;
}

namespace {

// The tarball's SHA-256 remembered per file identity in <cache>/.sha256/<SHA-256 of its absolute path>:
// "dev inode size mtime ctime sha256". ctime cannot be set from user space, so a file rewritten in place (even
// with its mtime put back) no longer matches and is hashed again. A cached source then costs a stat instead of
// reading the whole tarball (~140 MB) on every build (file_identity: common/file.h).

fs::path remembered_hash_file(const fs::path& cache, const fs::path& tarball) {
  std::string key = fs::absolute(tarball).lexically_normal().string();
  Sha256 h;
  h.update(key.data(), key.size());
  return cache / ".sha256" / h.hex();
}

std::optional<std::string> remembered_sha256(const fs::path& record, const std::string& identity) {
  auto text = read_file_text(record, 4096);
  if (!text) return std::nullopt;
  std::string t = trim(*text);
  if (t.size() != identity.size() + 1 + 64 || !starts_with(t, identity + " ")) return std::nullopt;
  std::string sha = t.substr(identity.size() + 1);
  if (sha.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  return sha;
}

void remember_sha256(const fs::path& record, const std::string& identity, const std::string& sha) {
  std::error_code ec;
  fs::create_directories(record.parent_path(), ec);
  (void)write_file_atomically(record, identity + " " + sha + "\n");  // a failure only misses a shortcut
}

}  // namespace

Result<SourceTree> open_tarball(const fs::path& tarball, const LocateOptions& options) {
  if (!is_file(tarball)) return Error{fmt::format("{} is not a file", tarball.string()), ExitCode::missing, {}};
  RR_ASSIGN(Compression comp, sniff(tarball));
  fs::path cache = options.cache_dir.empty() ? default_cache_dir() : options.cache_dir;

  auto t0 = std::chrono::steady_clock::now();
  fs::path record = remembered_hash_file(cache, tarball);
  auto identity = file_identity(tarball);
  std::optional<std::string> remembered = identity ? remembered_sha256(record, *identity) : std::nullopt;
  // Trusted only while its cache entry exists: otherwise the tarball is read anyway (to extract it).
  if (remembered && !is_file(cache / *remembered / kMarker)) remembered.reset();
  std::string sha;
  bool remember = false;
  double hash_seconds = 0;
  ExtractStats stats;
  fs::path entry;
  auto finish = [&](bool hit, double extract_seconds) -> Result<SourceTree> {
    RR_ASSIGN(SourceTree t, open_directory(entry));
    t.origin = Origin::tarball;
    t.input = tarball;
    t.tarball_sha256 = sha;
    t.cache_hit = hit;
    t.hash_seconds = hash_seconds;
    t.hash_remembered = remembered.has_value();
    if (remember) remember_sha256(record, *identity, sha);
    t.extract_seconds = extract_seconds;
    t.extract_stream_bytes = stats.stream_bytes;
    t.extract_stopped_early = stats.stopped_early;
    return t;
  };
  if (remembered) {
    sha = *remembered;
    hash_seconds = since(t0);
    entry = cache / sha;
    if (is_file(entry / kMarker)) return finish(true, 0);
  }

  // Not remembered: the tarball is hashed on another thread while drivers/iommu is extracted into a staging
  // directory, and the staging directory becomes the entry named by the hash. On a first build (every DKMS
  // build at apt time) the two cost the longer of them, not their sum.
  std::future<Result<std::string>> hashing;
  if (!remembered)
    hashing = std::async(std::launch::async, [&tarball, t0, &hash_seconds]() {
      auto h = sha256_file(tarball);
      hash_seconds = since(t0);
      return h;
    });
  struct JoinHash {  // an early return must not leave the thread reading `tarball`
    std::future<Result<std::string>>& f;
    ~JoinHash() {
      if (f.valid()) f.wait();
    }
  } join_hash{hashing};
  if (is_file(entry / kMarker)) return finish(true, 0);

  std::error_code ec;
  fs::create_directories(cache, ec);
  if (ec)
    return Error{fmt::format("cannot create the source cache {}: {}", cache.string(), ec.message()), ExitCode::environment,
                 "choose another cache directory (RELAX_RMRR_CACHE)"};
  // Staging directories of runs that were killed mid-way: gone after a day.
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    if (!starts_with(e.path().filename().string(), ".extract-")) continue;
    std::error_code te;
    auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), te);
    if (!te && age > std::chrono::hours(24)) fs::remove_all(e.path(), te);
  }
  std::string tmpl = (cache / ".extract-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    return make_error(ExitCode::environment, "cannot create a directory in {}: {}", cache.string(), std::strerror(errno));
  fs::path staging = tmpl;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{staging};

  auto t1 = std::chrono::steady_clock::now();
  // Only drivers/iommu and the top Makefile, read in this process; reading stops once they are out
  // (tar_reader.h), so the decompressor never runs past drivers/iommu.
  {
    RR_ASSIGN(std::unique_ptr<ByteSource> stream, open_decompressed(tarball, comp));
    WatchedSource watched(*stream);
    auto decompress_error = [&](const Error& e) {
      if (e.code == ExitCode::environment) return e.with_context(fmt::format("cannot decompress {}", tarball.string()));
      return Error{fmt::format("cannot decompress {}: {}", tarball.string(), e.message), ExitCode::bad_input,
                   "the file is damaged or truncated; download it again"};
    };
    auto extracted = extract_iommu_source(watched, staging);
    if (!extracted) {
      if (watched.failure) return decompress_error(*watched.failure);
      Error e = extracted.error();
      if (e.code == ExitCode::environment) return e;  // writing the cache failed
      // A damaged compressed stream can show first as a broken tar header: the decompressor's verdict wins.
      if (watched.drain(); watched.failure) return decompress_error(*watched.failure);
      return Error{fmt::format("cannot extract {}: {}", tarball.string(), e.message), ExitCode::bad_input,
                   e.hint.empty() ? "the file is damaged or not a tar archive" : e.hint};
    }
    stats = *extracted;
    // Read to the end: the rest of the stream (padding, the compressed stream's index and checks) must be sound.
    if (!stats.stopped_early) {
      watched.drain();
      if (watched.failure) return decompress_error(*watched.failure);
    }
  }  // a decoder's threads end here
  double extract_seconds = since(t1);
  if (hashing.valid()) {
    RR_ASSIGN(sha, hashing.get());
    // Remembered (once the entry is there) only when the file did not change while it was read.
    remember = identity && file_identity(tarball) == identity;
    entry = cache / sha;
    if (is_file(entry / kMarker)) return finish(true, extract_seconds);  // another name or run got there first
  }

  auto root = find_extracted_root(staging);
  if (!root)
    return Error{fmt::format("{} is not a Linux source tarball: it has no drivers/iommu/; {}", tarball.string(), kExpected),
                 ExitCode::bad_input,
                 "pass the kernel's source tarball, e.g. /usr/src/linux-source-6.1.tar.xz from the linux-source-6.1 package"};
  // Patterns like */drivers/iommu also match deeper copies (tools/drivers/iommu) when the archive has no
  // top-level directory: keep exactly drivers/iommu and Makefile.
  prune_to_needed(*root);
  {
    auto probe = open_directory(*root);
    if (!probe) {
      Error e = probe.error();
      e.message = fmt::format("{} is not a usable Linux source tarball: it has drivers/iommu/ but no intel-iommu driver; {}",
                              tarball.string(), kExpected);
      return e;
    }
    Json marker = Json::object();
    marker.set("tarball", tarball.string());
    marker.set("sha256", sha);
    marker.set("extracted", now_utc());
    marker.set("driver", probe->iommu_c_relative);
    if (probe->version) marker.set("version", probe->version->str());
    RR_CHECK(write_file_text(*root / kMarker, marker.dump(2) + "\n"));
  }
  // Publish atomically; a concurrent run that got there first wins and its entry is used. An entry
  // without its marker is a leftover of an interrupted run (or someone's hand): replace it.
  if (fs::exists(entry, ec) && !is_file(entry / kMarker)) fs::remove_all(entry, ec);
  if (::rename(root->c_str(), entry.c_str()) != 0 && !is_file(entry / kMarker))
    return make_error(ExitCode::environment, "cannot move the extracted source to {}: {}", entry.string(), std::strerror(errno));
  return finish(false, extract_seconds);
}

Json to_json(const SourceTree& t) {
  Json j = Json::object();
  j.set("input", t.input.string());
  j.set("origin", origin_name(t.origin));
  j.set("root", t.root.string());
  j.set("driver", t.iommu_c_relative);
  j.set("file", t.iommu_c.string());
  j.set("version", t.version ? Json(t.version->str()) : Json(nullptr));
  if (t.origin == Origin::tarball) {
    j.set("sha256", t.tarball_sha256);
    j.set("cache_hit", t.cache_hit);
    j.set("hash_seconds", t.hash_seconds);
    j.set("hash_remembered", t.hash_remembered);
    j.set("extract_seconds", t.extract_seconds);
    j.set("extract_stream_bytes", t.extract_stream_bytes);
    j.set("extract_stopped_early", t.extract_stopped_early);
  }
  return j;
}

Result<SourceTree> locate(const fs::path& input, const LocateOptions& options) {
  std::error_code ec;
  if (input.empty())
    return Error{"no kernel source given", ExitCode::missing, "pass --source with a linux-source tarball or a kernel tree"};
  if (!fs::exists(input, ec))
    return Error{fmt::format("kernel source {} does not exist", input.string()), ExitCode::missing,
                 "expected a linux-source tarball (e.g. /usr/src/linux-source-6.1.tar.xz, package linux-source-6.1), "
                 "a kernel tree or a directory holding drivers/iommu"};
  if (is_dir(input)) return open_directory(input);
  return open_tarball(input, options);
}

std::vector<fs::path> distro_source_tarballs(std::string_view release, const fs::path& usr_src) {
  // "6.1.0-56-amd64" -> "6.1"; "5.15.0-91-generic" -> "5.15" (Ubuntu nests 5.15.0/linux-source-5.15.0.tar.bz2)
  std::string r(release);
  size_t dot1 = r.find('.');
  size_t dot2 = dot1 == std::string::npos ? std::string::npos : r.find_first_not_of("0123456789", dot1 + 1);
  if (dot1 == std::string::npos) return {};
  std::string mm = r.substr(0, dot2);
  std::vector<fs::path> out;
  auto is_tar = [](const fs::path& p) {
    std::string n = p.filename().string();
    for (const char* ext : {".tar.xz", ".tar.zst", ".tar.gz", ".tar.bz2", ".tar"})
      if (n.size() > std::strlen(ext) && n.ends_with(ext)) return true;
    return false;
  };
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(usr_src, ec)) {
    std::string n = e.path().filename().string();
    std::string want = "linux-source-" + mm;
    if (!starts_with(n, want)) continue;
    char next = n.size() > want.size() ? n[want.size()] : '\0';
    if (next != '.' && next != '\0') continue;  // 6.1 must not match 6.10
    if (e.is_regular_file() && is_tar(e.path())) {
      out.push_back(e.path());
    } else if (e.is_directory()) {
      for (const auto& f : fs::directory_iterator(e.path(), ec))
        if (f.is_regular_file() && is_tar(f.path())) out.push_back(f.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace rr::source
