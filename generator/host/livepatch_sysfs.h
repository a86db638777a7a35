// The kernel's livepatch state under /sys/kernel/livepatch: read here, written by the lifecycle commands.
// Also the module side (/sys/module/<name>) and the per-task patch state (/proc/<pid>/patch_state) a
// transition waits for. Every path is below a root so tests can use a fake tree.
#pragma once

#include "common/json.h"
#include "common/result.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::host {

struct LivepatchState {
  std::string name;
  bool enabled = false;
  bool in_transition = false;
  bool marked = false;  // its module carries relax-rmrr's mark (kMarkParameter below): relax-rmrr built it
};

// Every livepatch the kernel knows; empty when livepatch sysfs is absent (no CONFIG_LIVEPATCH, or none loaded).
// {"name", "enabled", "transition", "relax_rmrr"}, as doctor and status print it.
Json to_json(const LivepatchState& lp);
// Values other than those the kernel writes (enabled and transition: 0 or 1) are an error (failure, 1), never
// read as "disabled" or "idle".
Result<std::vector<LivepatchState>> list_livepatches(const std::filesystem::path& sys_root);
Result<std::optional<LivepatchState>> find_livepatch(const std::filesystem::path& sys_root, const std::string& name);
// One patch's directory (sys_root/kernel/livepatch/NAME). Empty when the directory is gone by the time it is
// read: the kernel removes it the moment an unpatching transition completes, so a disable can race any reader.
Result<std::optional<LivepatchState>> read_livepatch_state(const std::filesystem::path& sys_root, const std::filesystem::path& dir);

// The mark relax-rmrr puts in every livepatch it builds: a read-only module parameter, shown by the kernel as
// /sys/module/<name>/parameters/relax_rmrr_version. It finds our livepatches whatever their name.
inline constexpr const char* kMarkParameter = "relax_rmrr_version";
bool has_relax_rmrr_mark(const std::filesystem::path& sys_root, const std::string& module_name);
// relax-rmrr's livepatches among those the kernel knows: every marked one, and `default_name` (modules built
// before the mark existed carry only the name); the enabled ones first.
Result<std::vector<LivepatchState>> relax_rmrr_livepatches(const std::filesystem::path& sys_root, const std::string& default_name);

// Writes "1"/"0" to /sys/kernel/livepatch/<name>/<attribute> (enabled, signal, force). The kernel answers
// EINVAL when the write makes no sense (enabling a patch that is not in transition), which is reported.
Status write_livepatch_attribute(const std::filesystem::path& sys_root, const std::string& name, const std::string& attribute, bool value);

// A loadable module as /sys/module/<name> shows it.
struct LoadedModule {
  std::string name;
  std::string initstate;  // live, coming, going
  std::optional<long> refcnt;
  std::string taint;  // e.g. "K" (livepatch), "OEK"
  std::string build_id;  // hex of notes/.note.gnu.build-id; empty when not readable
};
// nullopt when no such loadable module is loaded (built-in modules have no initstate: nullopt too); an error when
// initstate or refcnt hold what the kernel never writes.
Result<std::optional<LoadedModule>> find_loaded_module(const std::filesystem::path& sys_root, const std::string& name);

// module.sig_enforce=1 (or CONFIG_MODULE_SIG_FORCE): nullopt when the parameter is not there; "N" is the only
// value read as not enforced.
std::optional<bool> signatures_enforced(const std::filesystem::path& sys_root);
// "[integrity]" of /sys/kernel/security/lockdown -> "integrity"; nullopt when not reported.
std::optional<std::string> lockdown_mode(const std::filesystem::path& sys_root);

// A task that has not reached the target patch state yet (/proc/<pid>/patch_state: -1 none, 0 unpatched,
// 1 patched), with the first frames of its kernel stack when /proc/<pid>/stack is readable (root).
struct PendingTask {
  long pid = 0;
  std::string comm;
  int patch_state = -1;
  std::vector<std::string> stack;
};
// Tasks whose patch_state is neither -1 nor `target`, sorted by pid; at most `limit`.
std::vector<PendingTask> pending_tasks(const std::filesystem::path& proc_root, int target, size_t limit = 64);

}  // namespace rr::host
