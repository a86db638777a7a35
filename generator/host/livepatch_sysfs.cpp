#include "host/livepatch_sysfs.h"

#include "common/file.h"
#include "elf/elf_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fs = std::filesystem;

namespace rr::host {

namespace {

// What the kernel writes is all that is believed: any other value means the tree is not a kernel's (or is being
// tampered with), and reporting it as "disabled" or "idle" would be a false success.
Error unexpected(const fs::path& file, std::string_view value, std::string_view expected) {
  Error e = make_error(ExitCode::failure, "{} holds '{}', which the kernel never writes there (it writes {})", file.string(),
                       value.substr(0, 64), expected);
  e.hint = "this is not a kernel's sysfs (a wrong --root?), or something rewrote it; nothing was changed";
  return e;
}

// "0" or "1" (sysfs prints the newline, read_attribute trims it).
Result<bool> read_flag(const fs::path& file) {
  auto text = read_attribute(file);
  if (!text) return make_error(ExitCode::failure, "cannot read {}", file.string());
  if (*text == "0") return false;
  if (*text == "1") return true;
  return unexpected(file, *text, "0 or 1");
}

}  // namespace

Result<std::optional<LivepatchState>> read_livepatch_state(const fs::path& sys_root, const fs::path& dir) {
  LivepatchState s;
  s.name = dir.filename().string();
  s.marked = has_relax_rmrr_mark(sys_root, s.name);
  auto enabled = read_flag(dir / "enabled");
  auto in_transition = enabled ? read_flag(dir / "transition") : Result<bool>(false);
  std::error_code ec;
  if ((!enabled || !in_transition) && !fs::exists(dir, ec) && !ec) return std::optional<LivepatchState>();
  RR_ASSIGN(s.enabled, std::move(enabled));
  RR_ASSIGN(s.in_transition, std::move(in_transition));
  return std::optional<LivepatchState>(std::move(s));
}

Result<std::vector<LivepatchState>> list_livepatches(const fs::path& sys_root) {
  std::vector<LivepatchState> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(sys_root / "kernel/livepatch", ec)) {
    if (!e.is_directory(ec)) continue;
    RR_ASSIGN(auto state, read_livepatch_state(sys_root, e.path()));
    if (state) out.push_back(std::move(*state));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<std::optional<LivepatchState>> find_livepatch(const fs::path& sys_root, const std::string& name) {
  fs::path dir = sys_root / "kernel/livepatch" / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::optional<LivepatchState>();
  return read_livepatch_state(sys_root, dir);
}

bool has_relax_rmrr_mark(const fs::path& sys_root, const std::string& module_name) {
  auto version = read_attribute(sys_root / "module" / module_name / "parameters" / kMarkParameter);
  return version && !version->empty();
}

Result<std::vector<LivepatchState>> relax_rmrr_livepatches(const fs::path& sys_root, const std::string& default_name) {
  RR_ASSIGN(auto all, list_livepatches(sys_root));
  std::vector<LivepatchState> ours;
  for (auto& lp : all)
    if (lp.name == default_name || lp.marked) ours.push_back(std::move(lp));
  std::stable_sort(ours.begin(), ours.end(), [](const auto& a, const auto& b) { return a.enabled > b.enabled; });
  return ours;
}

Status write_livepatch_attribute(const fs::path& sys_root, const std::string& name, const std::string& attribute, bool value) {
  fs::path file = sys_root / "kernel/livepatch" / name / attribute;
  // One write(2) of "1\n": sysfs takes the whole value in one call and returns the kernel's errno.
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    ExitCode code = err == ENOENT ? ExitCode::missing : err == EACCES || err == EPERM ? ExitCode::environment : ExitCode::failure;
    return make_error(code, "cannot open {}: {}", file.string(), std::strerror(err));
  }
  const char* text = value ? "1\n" : "0\n";
  ssize_t n = ::write(fd, text, 2);
  int err = errno;
  ::close(fd);
  if (n != 2)
    return make_error(ExitCode::failure, "the kernel refused '{}' in {}: {}", value ? 1 : 0, file.string(),
                      n < 0 ? std::strerror(err) : "short write");
  return ok_status();
}

Result<std::optional<LoadedModule>> find_loaded_module(const fs::path& sys_root, const std::string& name) {
  fs::path dir = sys_root / "module" / name;
  auto initstate = read_attribute(dir / "initstate");
  if (!initstate) return std::optional<LoadedModule>();
  if (*initstate != "live" && *initstate != "coming" && *initstate != "going")
    return unexpected(dir / "initstate", *initstate, "live, coming or going");
  LoadedModule m;
  m.name = name;
  m.initstate = *initstate;
  if (auto r = read_attribute(dir / "refcnt")) {
    auto v = parse_uint(*r, 10);
    if (!v || *v > (uint64_t{1} << 31)) return unexpected(dir / "refcnt", *r, "a reference count");
    m.refcnt = static_cast<long>(*v);
  }
  m.taint = read_attribute(dir / "taint").value_or("");
  if (auto notes = read_file_bytes(dir / "notes/.note.gnu.build-id", 4096))
    m.build_id = elf::build_id_from_notes(ByteView(notes->data(), notes->size()));
  return std::optional<LoadedModule>(std::move(m));
}

std::optional<bool> signatures_enforced(const fs::path& sys_root) {
  auto v = read_attribute(sys_root / "module/module/parameters/sig_enforce");
  if (!v) return std::nullopt;
  if (*v == "N") return false;
  return true;  // "Y", or a value no kernel prints: assume the stricter policy, so nothing unsigned is tried
}

std::optional<std::string> lockdown_mode(const fs::path& sys_root) {
  auto text = read_attribute(sys_root / "kernel/security/lockdown");
  if (!text) return std::nullopt;
  size_t open = text->find('['), close = text->find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  return text->substr(open + 1, close - open - 1);
}

std::vector<PendingTask> pending_tasks(const fs::path& proc_root, int target, size_t limit) {
  std::vector<PendingTask> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(proc_root, ec)) {
    std::string pid_text = e.path().filename().string();
    auto pid = parse_uint(pid_text, 10);
    if (!pid) continue;
    auto st = read_attribute(e.path() / "patch_state");
    if (!st) continue;
    int state = *st == "-1" ? -1 : *st == "0" ? 0 : *st == "1" ? 1 : -2;
    if (state == -1 || state == target) continue;
    PendingTask t;
    t.pid = static_cast<long>(*pid);
    t.patch_state = state;
    t.comm = read_attribute(e.path() / "comm").value_or("?");
    if (auto stack = read_file_text(e.path() / "stack", 64 * 1024)) {
      for (const auto& line : split_lines(*stack)) {
        std::string l = trim(line);
        if (l.empty()) continue;
        t.stack.push_back(l);
        if (t.stack.size() == 8) break;
      }
    }
    out.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.pid < b.pid; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

Json to_json(const LivepatchState& lp) {
  return Json(Json::Object{{"name", lp.name}, {"enabled", lp.enabled}, {"transition", lp.in_transition}, {"relax_rmrr", lp.marked}});
}

}  // namespace rr::host
