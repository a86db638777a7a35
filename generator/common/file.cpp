#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

namespace rr {

namespace {
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

Error io_error(const std::filesystem::path& path, std::string_view what, int err) {
  ExitCode code = (err == ENOENT) ? ExitCode::missing : (err == EACCES || err == EPERM) ? ExitCode::environment : ExitCode::bad_input;
  Error e{fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(err)), code, {}, err};
  return e;
}

}  // namespace

std::string_view describe_file_type(mode_t mode) {
  if (S_ISLNK(mode)) return "a symbolic link";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

namespace {

template <typename Out>
Result<Out> read_whole(const std::filesystem::path& path, size_t max_size) {
  RR_ASSIGN(UniqueFd fd, open_regular_file(path));
  Out out;
  // sysfs and procfs files report size 0: read to the end rather than trusting stat, but never past the cap.
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error(path, "read", errno);
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size)
      return make_error(ExitCode::bad_input, "{} is larger than {} bytes: not the kind of file expected here", path.string(), max_size);
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}
}  // namespace

Result<UniqueFd> open_regular_file(const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) return io_error(path, "open", errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return io_error(path, "stat", errno);
  if (!S_ISREG(st.st_mode)) {
    Error e = make_error(ExitCode::bad_input, "{} is {}: only a regular file is read here", path.string(), describe_file_type(st.st_mode));
    e.hint = "give the file itself (copy a table or dump to a file first)";
    return e;
  }
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags >= 0) ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

Result<Bytes> read_file_bytes(const std::filesystem::path& path, size_t max_size) { return read_whole<Bytes>(path, max_size); }

Result<std::string> read_file_text(const std::filesystem::path& path, size_t max_size) { return read_whole<std::string>(path, max_size); }

std::optional<std::string> read_attribute(const std::filesystem::path& path) {
  auto r = read_file_text(path, read_cap::attribute);
  if (!r) return std::nullopt;
  return trim(*r);
}

Status write_file_text(const std::filesystem::path& path, std::string_view text) {
  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) return io_error(path, "create", errno);
  if (std::fwrite(text.data(), 1, text.size(), f.get()) != text.size()) return io_error(path, "write", errno);
  if (std::fflush(f.get()) != 0) return io_error(path, "write", errno);
  return ok_status();
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r' || s[e - 1] == '\0')) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string_view::npos) nl = s.size();
    out.emplace_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::vector<std::string> split_ws(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    size_t b = i;
    while (i < s.size() && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    if (i > b) out.emplace_back(s.substr(b, i - b));
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::optional<uint64_t> parse_uint(std::string_view s, int base) {
  if (base == 0) {
    if (starts_with(s, "0x") || starts_with(s, "0X")) {
      s.remove_prefix(2);
      base = 16;
    } else {
      base = 10;
    }
  }
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> file_identity(const std::filesystem::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  return fmt::format("{} {} {} {}.{:09} {}.{:09}", static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino),
                     static_cast<long long>(st.st_size), static_cast<long long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
                     static_cast<long long>(st.st_ctim.tv_sec), st.st_ctim.tv_nsec);
}

std::filesystem::path default_cache_root() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("RELAX_RMRR_CACHE"); env && *env) return fs::path(env);
  fs::path system = "/var/cache/relax-rmrr";
  std::error_code ec;
  if (::access(system.c_str(), W_OK) == 0 || (!fs::is_directory(system, ec) && ::access("/var/cache", W_OK) == 0)) return system;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return fs::path(xdg) / "relax-rmrr";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".cache" / "relax-rmrr";
  return fs::temp_directory_path() / "relax-rmrr-cache";
}

}  // namespace rr
