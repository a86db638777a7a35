// Reading a tar archive once, front to back, in this process: the decompressors (liblzma, zlib, libzstd,
// libbz2), a streaming tar parser (ustar, GNU long names 'L'/'K', pax 'x'/'g' headers), and the extraction of
// what the source stage needs from a Linux source archive, which stops reading as soon as that is out.
#pragma once

#include "common/result.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rr::source {

enum class Compression { none, xz, gzip, zstd, bzip2 };
std::string_view compression_name(Compression c);  // "xz", "gzip", "zstd", "bzip2", "tar"

// A byte stream read front to back.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to `n` bytes into `buf`; 0 only at the end of the stream. A decompression error says what is wrong
  // with the data ("the xz data is truncated").
  virtual Result<size_t> read(uint8_t* buf, size_t n) = 0;
};

// A file as its decompressed bytes (`none`: as they are). Concatenated streams are read as one, like
// xz/gzip/bzip2/zstd -dc do. xz is decoded by one thread per CPU (liblzma 5.4 and later, like xz -T0).
Result<std::unique_ptr<ByteSource>> open_decompressed(const std::filesystem::path& file, Compression c);

// Bytes in memory, for tests: counts what was read.
class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)) {}
  Result<size_t> read(uint8_t* buf, size_t n) override;
  uint64_t bytes_read() const { return pos_; }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

struct TarMember {
  enum class Kind { file, directory, hard_link, symlink, other };
  std::string raw_path;  // as the archive names it (after L/pax)
  // Relative, '/'-separated, without empty, "." or trailing components; empty for the archive's "./".
  std::string path;
  bool unsafe = false;  // raw_path is absolute or has a ".." component: never to be written
  Kind kind = Kind::other;
  char typeflag = '0';
  uint64_t size = 0;  // bytes of data that follow the header
  std::string link;  // hard_link, symlink: the target as written
  uint32_t mode = 0644;
  int64_t mtime = 0;
  uint64_t offset = 0;  // of its (first) header in the stream
};

// Parses a tar stream. Member data not read by read_data() is skipped by the next next().
class TarReader {
 public:
  explicit TarReader(ByteSource& in);
  // The next member with its extension headers applied; nullopt at the end of the archive (a zero block,
  // or the end of the stream between members). Errors: a damaged header, a truncated archive, a read error.
  Result<std::optional<TarMember>> next();
  // The current member's data, in pieces; once per member.
  Status read_data(const std::function<Status(const uint8_t*, size_t)>& sink);
  // Bytes of the stream consumed so far (headers, data, padding).
  uint64_t offset() const { return pos_; }

 private:
  Result<size_t> take(uint8_t* out, size_t n);  // fewer than n only at the end of the stream
  Status skip(uint64_t n, std::string_view what, std::string_view name = {});  // what, name: for messages
  Result<std::string> read_extension(uint64_t size, std::string_view what);

  ByteSource& in_;
  std::vector<uint8_t> buf_;
  size_t head_ = 0, tail_ = 0;  // unread bytes: buf_[head_, tail_)
  bool eof_ = false;
  uint64_t pos_ = 0;
  uint64_t data_left_ = 0, padding_left_ = 0;
  std::string current_;  // the current member's path, for messages
  bool at_end_ = false;
};

// What a Linux source archive's extraction wrote, and how much of the stream it read.
struct ExtractStats {
  uint64_t stream_bytes = 0;  // of the decompressed tar stream
  size_t members = 0;  // member headers read
  size_t written = 0;  // files and directories written
  bool stopped_early = false;  // everything needed was out before the end of the archive
};

// Writes to `dest` the members that the patterns drivers/iommu, */drivers/iommu, Makefile, */Makefile of
// `tar -x --wildcards --no-wildcards-match-slash` select (the caller keeps one root and prunes the rest), and
// stops reading once a root's drivers/iommu/ subtree has ended, that root's Makefile is out, and no later member
// can change which root the caller keeps: the root is the archive's top (preferred, as by the caller), or its
// only top-level directory so far, holding the intel-iommu driver. Archives are written depth-first, so a
// directory's members are contiguous. Only regular files and directories are written: hard links to an
// extracted file become links to it; symbolic links become copies of the extracted regular file they name, or
// nothing; device nodes and FIFOs nothing. Refused with an error: absolute member names, ".." components,
// links whose target is absolute or leaves the archive, sparse files. Errors from `in` are returned as is.
Result<ExtractStats> extract_iommu_source(ByteSource& in, const std::filesystem::path& dest);

}  // namespace rr::source
