// The lifecycle of the relax-rmrr livepatch on a running kernel: load, enable, disable, unload, status, and
// waiting for a transition. Kernel calls go through ModuleOps (real syscalls, or a fake in tests); every
// file is read below Env::root, so the whole logic runs against a fake sysfs/procfs tree in unit tests.
//
// Kernel semantics this follows (kernel/livepatch, 5.1 on): loading a livepatch module enables its patch and
// starts a transition; writing 0 to `enabled` starts the reverse transition, after which the patch is freed
// (its sysfs directory goes) while the module stays loaded; a freed patch cannot be re-enabled, so `enable`
// reloads the module. Writing to `enabled` during a transition reverses it. A patch with .replace = true
// (ours) atomically replaces every other livepatch: the replaced ones are freed and their modules can go.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "host/livepatch_sysfs.h"
#include "lifecycle/module_file.h"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

// The kernel's livepatch and module state as sysfs shows it (host/livepatch_sysfs.h).
using host::LivepatchState;
using host::LoadedModule;
using host::PendingTask;

// Everything that changes the kernel goes through here: loading and removing modules, and writing a
// livepatch's sysfs attributes (enabled, signal, force). The real one uses finit_module(2)/init_module(2),
// delete_module(2) and one write(2) per attribute, and maps errno to an Error that says what to do.
class ModuleOps {
 public:
  virtual ~ModuleOps() = default;
  virtual Status load(const ModuleFile& module) = 0;
  virtual Status remove(const std::string& name) = 0;
  virtual Status write_attribute(const std::string& patch, const std::string& attribute, bool value) = 0;
};
std::unique_ptr<ModuleOps> real_module_ops(const std::filesystem::path& sys_root = "/sys");
// For --root trees (tests, dry runs): never calls the kernel; writes what the kernel would show below `root`
// (sys/module/<name>, sys/kernel/livepatch/<name> enabled=1 transition=0; .replace frees the other patches).
std::unique_ptr<ModuleOps> simulated_module_ops(const std::filesystem::path& root);

struct Env {
  std::filesystem::path root = "/";
  ModuleOps* ops = nullptr;
  // Waiting between polls; tests advance their fake kernel here.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Progress lines for stderr (may be empty).
  std::function<void(const std::string&)> progress;

  std::filesystem::path sys() const { return root / "sys"; }
  std::filesystem::path proc() const { return root / "proc"; }
  // Where `load` records the file it loaded, so `enable` can load it again: <root>/run/relax-rmrr/<name>.path
  std::filesystem::path record_file(const std::string& name) const { return root / "run/relax-rmrr" / (name + ".path"); }
};

std::string running_release(const Env& env);

// Refuses (environment, 5) an unsigned module when lockdown or module.sig_enforce would reject it.
Status check_signing_policy(const Env& env, const ModuleFile& module);

struct WaitOptions {
  std::chrono::milliseconds timeout{60000};
  std::chrono::milliseconds poll{100};
  std::chrono::milliseconds progress_every{2000};
};

struct TransitionResult {
  bool done = false;  // transition reads 0, or the patch is gone after a disable
  bool gone = false;  // the patch's directory vanished (a disabled patch is freed)
  int target = 1;  // 1 patching, 0 unpatching
  double seconds = 0;
  std::vector<PendingTask> blockers;  // when not done
};
TransitionResult wait_transition(const Env& env, const std::string& name, const WaitOptions& options);

// What to tell the user about a stalled transition: the blocking tasks and the choices (wait, signal, force).
std::string explain_stall(const std::string& name, const TransitionResult& r);

struct LoadOptions {
  WaitOptions wait;
  std::string expected_name;  // --name: refuse a module whose name differs (empty: any)
  bool allow_other_kernel = false;  // tests: skip the vermagic check
};

struct LoadReport {
  std::string name;
  std::string action;  // loaded, already-loaded, reloaded
  std::vector<std::string> replaced;  // livepatches our .replace took over
  std::vector<std::string> notes;
  TransitionResult transition;
};

// Load FILE: checks (livepatch, kernel release, signatures, another transition), finit_module, waits for the
// transition, removes the modules of patches it replaced. Loading the same build twice is a no-op.
Result<LoadReport> load(const Env& env, const std::filesystem::path& file, const LoadOptions& options);

// enable: an enabled patch: nothing to do; a patch being disabled: reverse the transition; a freed patch or
// no module: (re)load from `file` (empty: the recorded path, then /lib/modules/<release>/updates/<name>.ko).
Result<LoadReport> enable(const Env& env, const std::string& name, const std::filesystem::path& file, const LoadOptions& options);

struct SimpleReport {
  std::string action;  // disabled, already-disabled, not-loaded, unloaded
  std::vector<std::string> notes;
  TransitionResult transition;
};
Result<SimpleReport> disable(const Env& env, const std::string& name, const WaitOptions& wait);
// unload: disables first when enabled, then delete_module.
Result<SimpleReport> unload(const Env& env, const std::string& name, const WaitOptions& wait);

// Where install puts the module for `release`.
std::filesystem::path installed_module_path(const std::filesystem::path& root, const std::string& release, const std::string& name,
                                            const std::string& subdir = "updates");

struct PatchStatus {
  std::string name;
  std::string running_release;
  std::optional<LoadedModule> module;
  std::optional<LivepatchState> patch;
  std::vector<LivepatchState> other_patches;
  std::optional<ModuleFile> file;  // the recorded/installed/given file, when found
  std::optional<bool> file_is_loaded;  // build-ids compared; nullopt when either is unknown
  bool file_matches_kernel = false;  // vermagic release == running release
  std::optional<std::string> lockdown;
  std::optional<bool> sig_enforce;
  std::vector<PendingTask> blockers;  // when in transition
  bool active() const { return patch && patch->enabled && !patch->in_transition; }
};
PatchStatus read_status(const Env& env, const std::string& name, const std::filesystem::path& file);
Json to_json(const PatchStatus& s);

}  // namespace rr::lifecycle
