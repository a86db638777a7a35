// Helpers for the hostile-input tests (docs/robustness.md, "Hostile and mistaken input"): a fake --root tree and
// the tool run on it.
#pragma once

#include "common/file.h"
#include "test_util.h"

#include <fmt/format.h>

#include <sys/stat.h>

#include <filesystem>
#include <string>

namespace rr::test {

// Writes `text` at root/relative, creating the directories.
inline void put_file(const std::filesystem::path& root, const std::string& relative, const std::string& text) {
  std::filesystem::path p = root / relative;
  std::filesystem::create_directories(p.parent_path());
  if (!write_file_text(p, text)) std::abort();
}

inline std::string read_back(const std::filesystem::path& p) {
  auto text = read_file_text(p);
  return text ? *text : "<unreadable>";
}

inline bool is_named_pipe(const std::filesystem::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

// relax-rmrr with `args` (a shell fragment); stdout and stderr together.
inline CommandResult tool(const std::string& args) { return run_command(fmt::format("{} {}", RELAX_RMRR_BINARY, args)); }

// The livepatch sysfs and procfs a kernel shows for one loaded livepatch, below `root`.
inline void fake_livepatch(const std::filesystem::path& root, const std::string& name, const std::string& enabled = "1",
                           bool marked = true) {
  put_file(root, "proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");
  put_file(root, "sys/kernel/livepatch/" + name + "/enabled", enabled + "\n");
  put_file(root, "sys/kernel/livepatch/" + name + "/transition", "0\n");
  put_file(root, "sys/module/" + name + "/initstate", "live\n");
  put_file(root, "sys/module/" + name + "/refcnt", "0\n");
  if (marked) put_file(root, "sys/module/" + name + "/parameters/relax_rmrr_version", "0.2.0\n");
}

}  // namespace rr::test
