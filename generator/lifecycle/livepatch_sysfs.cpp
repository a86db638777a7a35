#include "lifecycle/livepatch_sysfs.h"

#include "common/file.h"

#include <algorithm>

namespace fs = std::filesystem;

namespace rr::lifecycle {

static LivepatchState read_state(const fs::path& dir) {
  LivepatchState s;
  s.name = dir.filename().string();
  s.enabled = read_attribute(dir / "enabled").value_or("0") == "1";
  s.in_transition = read_attribute(dir / "transition").value_or("0") == "1";
  return s;
}

std::vector<LivepatchState> list_livepatches(const fs::path& sys_root) {
  std::vector<LivepatchState> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sys_root / "kernel/livepatch", ec))
    if (e.is_directory(ec)) out.push_back(read_state(e.path()));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::optional<LivepatchState> find_livepatch(const fs::path& sys_root, const std::string& name) {
  fs::path dir = sys_root / "kernel/livepatch" / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::nullopt;
  return read_state(dir);
}

}  // namespace rr::lifecycle
