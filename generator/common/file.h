// Reading files and bounded little-endian byte views: no parser in this project reads past its input.
#pragma once

#include "common/result.h"
#include "common/unique_fd.h"

#include <sys/types.h>
#include <cstdint>
#include <cstring>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace rr {

using Bytes = std::vector<uint8_t>;

// What one read may take, by kind of file: every read of the tree has a cap that fits what it reads.
namespace read_cap {
inline constexpr size_t attribute = size_t{1} << 20;  // a sysfs or procfs attribute, a small state file
inline constexpr size_t table = size_t{1} << 20;  // a firmware table (DMAR: a few KiB on the largest servers)
inline constexpr size_t text = size_t{256} << 20;  // a symbol dump, System.map, a config, one source file
inline constexpr size_t binary = size_t{2} << 30;  // an object, a module, a kernel image, vmlinux with debug info
}  // namespace read_cap

// Opens a file to read only when it is a regular file (sysfs and procfs attributes are): a FIFO, a device, a
// socket or a directory is refused (bad input, 2) without blocking, as the open never waits for a writer.
// Errors: missing (3) when it does not exist, environment (5) when permission is denied, else bad input (2).
Result<UniqueFd> open_regular_file(const std::filesystem::path& path);
// "a FIFO", "a directory", "a symbolic link"...: what a stat mode that is not a regular file is, for messages.
std::string_view describe_file_type(mode_t mode);

// Whole file, at most max_size bytes (more is an error, not a truncation); an error names the path and says why.
Result<Bytes> read_file_bytes(const std::filesystem::path& path, size_t max_size = read_cap::binary);
Result<std::string> read_file_text(const std::filesystem::path& path, size_t max_size = read_cap::text);
// sysfs/procfs attribute: trimmed text, or nullopt if it cannot be read.
std::optional<std::string> read_attribute(const std::filesystem::path& path);
Status write_file_text(const std::filesystem::path& path, std::string_view text);
// "dev inode size mtime ctime" of a file (following symlinks), nullopt when it cannot be stat'ed: a cache key
// part that changes whenever the file is replaced or rewritten (ctime cannot be set from user space).
std::optional<std::string> file_identity(const std::filesystem::path& file);
// Where relax-rmrr caches (extracted sources, kbuild commands): $RELAX_RMRR_CACHE, else /var/cache/relax-rmrr
// when writable, else $XDG_CACHE_HOME (or ~/.cache)/relax-rmrr.
std::filesystem::path default_cache_root();

std::string trim(std::string_view s);
std::vector<std::string> split_lines(std::string_view s);
std::vector<std::string> split_ws(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
// Parses "0x1f", "1f" (when hex) or decimal; nullopt on anything else.
std::optional<uint64_t> parse_uint(std::string_view s, int base = 0);

// A bounds-checked window over bytes. Reads return nullopt past the end instead of reading further.
class ByteView {
 public:
  ByteView() = default;
  ByteView(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  explicit ByteView(std::span<const uint8_t> s) : data_(s.data()), size_(s.size()) {}

  size_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  bool has(size_t offset, size_t len) const { return offset <= size_ && len <= size_ - offset; }

  template <typename T>
  std::optional<T> read(size_t offset) const {
    if (!has(offset, sizeof(T))) return std::nullopt;
    T v;
    std::memcpy(&v, data_ + offset, sizeof(T));  // unaligned-safe; x86 and the firmware tables are little-endian
    return v;
  }
  std::optional<ByteView> sub(size_t offset, size_t len) const {
    if (!has(offset, len)) return std::nullopt;
    return ByteView(data_ + offset, len);
  }
  std::string string_at(size_t offset, size_t len) const {
    if (!has(offset, len)) return {};
    return std::string(reinterpret_cast<const char*>(data_ + offset), len);
  }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace rr
