#include "common/atomic_file.h"

#include "common/file.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <random>

namespace fs = std::filesystem;

namespace rr {

namespace {

Error write_error(const fs::path& path, std::string_view what, int err) {
  Error e = make_error(err == ENOENT                                     ? ExitCode::missing
                       : (err == EACCES || err == EPERM || err == EROFS) ? ExitCode::environment
                                                                         : ExitCode::failure,
                       "cannot write {}: {}: {}", path.string(), what, std::strerror(err));
  e.system_errno = err;
  return e;
}

// The path's components after checking that none leaves the base: no absolute path, no "..", no empty name.
Result<std::vector<std::string>> components_below(const fs::path& relative) {
  if (relative.is_absolute()) return make_error(ExitCode::bad_input, "{} is not a path below a directory", relative.string());
  std::vector<std::string> parts;
  for (const auto& c : relative) {
    std::string s = c.string();
    if (s.empty() || s == ".") continue;
    if (s == "..") return make_error(ExitCode::bad_input, "{} climbs out of its directory (\"..\")", relative.string());
    parts.push_back(s);
  }
  return parts;
}

// Refuses what is at `leaf` in `dir` when it exists and is not a regular file (lstat: a link counts as a link).
Status refuse_non_regular(int dir, const std::string& leaf, const fs::path& shown) {
  struct stat st {};
  if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return ok_status();
    return write_error(shown, "stat", errno);
  }
  if (S_ISREG(st.st_mode)) return ok_status();
  Error e = make_error(ExitCode::bad_input, "{} exists and is {}: refusing to replace it", shown.string(), describe_file_type(st.st_mode));
  e.hint = "give the path of a regular file, or remove what is there first";
  return e;
}

Status write_in_directory(int dir, const std::string& leaf, std::string_view bytes, mode_t mode, const fs::path& shown) {
  RR_CHECK(refuse_non_regular(dir, leaf, shown));
  std::random_device random;
  std::string tmp;
  UniqueFd out;
  for (int attempt = 0; attempt < 16 && !out; ++attempt) {
    tmp = fmt::format(".{}.{:08x}.tmp", leaf.substr(0, 200), random());
    out.reset(::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out && errno != EEXIST) return write_error(shown, "create a temporary file next to it", errno);
  }
  if (!out) return write_error(shown, "create a temporary file next to it", EEXIST);
  auto fail = [&](std::string_view what, int err) {
    ::unlinkat(dir, tmp.c_str(), 0);
    return write_error(shown, what, err);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(out.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (::fchmod(out.get(), mode) != 0) return fail("chmod", errno);
  if (::fsync(out.get()) != 0) return fail("fsync", errno);
  if (::close(out.release()) != 0) return fail("close", errno);
  if (::renameat(dir, tmp.c_str(), dir, leaf.c_str()) != 0) return fail("rename", errno);
  ::fsync(dir);  // the rename itself reaches the disk
  return ok_status();
}

}  // namespace

Status write_file_atomically(const fs::path& path, std::string_view bytes, mode_t mode) {
  fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string leaf = path.filename().string();
  if (leaf.empty() || leaf == "." || leaf == "..") return make_error(ExitCode::bad_input, "{} does not name a file", path.string());
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return write_error(path, "open its directory", errno);
  return write_in_directory(dir.get(), leaf, bytes, mode, path);
}

Result<UniqueFd> open_directory_beneath(const fs::path& base, const fs::path& relative, bool create) {
  RR_ASSIGN(auto parts, components_below(relative));
  if (create) {
    std::error_code ec;
    fs::create_directories(base, ec);
  }
  UniqueFd dir(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return write_error(base, "open", errno);
  fs::path shown = base;
  for (const auto& part : parts) {
    shown /= part;
    UniqueFd next(::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next && errno == ENOENT && create) {
      if (::mkdirat(dir.get(), part.c_str(), 0755) != 0 && errno != EEXIST) return write_error(shown, "mkdir", errno);
      next.reset(::openat(dir.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!next) {
      if (errno == ELOOP || errno == ENOTDIR) {
        Error e =
            make_error(ExitCode::refused, "{} is a symbolic link or not a directory: not followed below {}", shown.string(), base.string());
        e.hint = "remove what is there; relax-rmrr never writes through a link below the directories it manages";
        return e;
      }
      return write_error(shown, "open", errno);
    }
    dir = std::move(next);
  }
  return dir;
}

Status write_file_beneath(const fs::path& base, const fs::path& relative, std::string_view bytes, mode_t mode) {
  RR_ASSIGN(auto parts, components_below(relative));
  if (parts.empty()) return make_error(ExitCode::bad_input, "no file name below {}", base.string());
  fs::path parent;
  for (size_t i = 0; i + 1 < parts.size(); ++i) parent /= parts[i];
  RR_ASSIGN(UniqueFd dir, open_directory_beneath(base, parent, true));
  return write_in_directory(dir.get(), parts.back(), bytes, mode, base / relative);
}

Result<bool> remove_beneath(const fs::path& base, const fs::path& relative) {
  RR_ASSIGN(auto parts, components_below(relative));
  if (parts.empty()) return make_error(ExitCode::bad_input, "no file name below {}", base.string());
  fs::path parent;
  for (size_t i = 0; i + 1 < parts.size(); ++i) parent /= parts[i];
  auto dir = open_directory_beneath(base, parent, false);
  if (!dir) {
    if (dir.error().system_errno == ENOENT) return false;
    return dir.error();
  }
  if (::unlinkat(dir->get(), parts.back().c_str(), 0) == 0) return true;
  if (errno == ENOENT) return false;
  return write_error(base / relative, "remove", errno);
}

}  // namespace rr
