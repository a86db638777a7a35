#include "lifecycle/lifecycle.h"

#include "common/file.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace rr::lifecycle {

using host::find_livepatch;
using host::find_loaded_module;
using host::list_livepatches;
using host::lockdown_mode;
using host::pending_tasks;
using host::signatures_enforced;
using host::write_livepatch_attribute;

namespace {

constexpr const char* kSignHint =
    "sign the module: relax-rmrr build --sign-key KEY --sign-cert CERT, with a key the kernel trusts "
    "(enroll CERT with `mokutil --import CERT`, reboot, confirm in MokManager), or let DKMS build and sign it "
    "with its MOK key (see README, DKMS)";

void say(const Env& env, const std::string& line) {
  if (env.progress) env.progress(line);
}

void pause(const Env& env, std::chrono::milliseconds d) {
  if (env.sleep) env.sleep(d);
  else ::usleep(static_cast<useconds_t>(d.count() * 1000));
}

// The real kernel calls.
class SyscallOps : public ModuleOps {
 public:
  explicit SyscallOps(fs::path sys) : sys_(std::move(sys)) {}
  rr::Status write_attribute(const std::string& patch, const std::string& attribute, bool value) override {
    return write_livepatch_attribute(sys_, patch, attribute, value);
  }
  rr::Status load(const ModuleFile& m) override {
    long rc;
    if (!m.compressed) {
      // finit_module: the kernel reads the file itself, so security modules that vouch for files (IMA,
      // LoadPin) see where the module came from; init_module would hand them anonymous bytes.
      int fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return make_error(ExitCode::missing, "cannot open {}: {}", m.path.string(), std::strerror(errno));
      rc = ::syscall(SYS_finit_module, fd, "", 0);
      int err = errno;
      ::close(fd);
      errno = err;
    } else {
      rc = ::syscall(SYS_init_module, m.image.data(), m.image.size(), "");
    }
    if (rc == 0) return ok_status();
    return load_error(m, errno);
  }

  rr::Status remove(const std::string& name) override {
    if (::syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) == 0) return ok_status();
    int err = errno;
    switch (err) {
      case ENOENT: return make_error(ExitCode::missing, "module {} is not loaded", name);
      case EWOULDBLOCK: return make_error(ExitCode::failure, "module {} is in use (its reference count is not 0)", name);
      case EPERM: {
        Error e = make_error(ExitCode::environment, "the kernel does not allow removing {}: {}", name, std::strerror(err));
        e.hint = "run as root; with kernel.modules_disabled=1 nothing can be removed until reboot";
        return e;
      }
      default: return make_error(ExitCode::failure, "delete_module({}) failed: {}", name, std::strerror(err));
    }
  }

 private:
  static Error load_error(const ModuleFile& m, int err) {
    std::string f = m.path.string();
    Error e;
    switch (err) {
      case EEXIST:
        e = make_error(ExitCode::failure, "a module named {} is already loaded", m.name);
        e.hint = "relax-rmrr status; relax-rmrr unload first to load another build under the same name";
        break;
      case EKEYREJECTED:
      case ENOKEY:
        e = make_error(ExitCode::environment, "the kernel rejected the signature of {}: {}", f, std::strerror(err));
        e.hint = std::string("the signing key is not trusted by this kernel; ") + kSignHint;
        break;
      case EBADMSG:
        e = make_error(ExitCode::bad_input, "the signature appended to {} is malformed", f);
        e.hint = "rebuild and sign again";
        break;
      case EPERM:
      case EACCES:
        e = make_error(ExitCode::environment, "the kernel forbids loading {}: {}", f, std::strerror(err));
        e.hint = std::string(
                     "run as root; kernel.modules_disabled=1 forbids every load until reboot; under lockdown or "
                     "module.sig_enforce=1 only signed modules load: ") +
                 kSignHint;
        break;
      case ENOEXEC:
        e = make_error(ExitCode::bad_input, "the kernel says {} has an invalid module format (built for another kernel, or corrupt)", f);
        e.hint = "dmesg tells which check failed; rebuild with `relax-rmrr build` for the running kernel";
        break;
      case ENOENT:
        e = make_error(ExitCode::refused, "the kernel could not resolve a symbol {} needs", f);
        e.hint = "dmesg names it; the module was built for another build of this kernel: rebuild with `relax-rmrr build`";
        break;
      case EBUSY:
        e = make_error(ExitCode::failure, "the kernel is busy with another livepatch transition");
        e.hint = "wait for it (relax-rmrr wait --name NAME) and load again";
        break;
      case EINVAL:
        e = make_error(ExitCode::refused, "the livepatch core rejected {} (EINVAL)", f);
        e.hint =
            "dmesg says why (a function or object not found, a klp relocation that does not resolve); "
            "rebuild with `relax-rmrr build` for exactly this kernel build";
        break;
      default: e = make_error(ExitCode::failure, "loading {} failed: {}", f, std::strerror(err)); e.hint = "dmesg may say more";
    }
    return e;
  }
  fs::path sys_;
};

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

std::optional<fs::path> recorded_file(const Env& env, const std::string& name) {
  auto text = read_attribute(env.record_file(name));
  if (!text || text->empty()) return std::nullopt;
  return fs::path(*text);
}

void record(const Env& env, const std::string& name, const fs::path& file) {
  std::error_code ec;
  fs::create_directories(env.record_file(name).parent_path(), ec);
  (void)write_file_text(env.record_file(name), fs::absolute(file, ec).string() + "\n");
}

Error stall_error(const std::string& name, const TransitionResult& r) {
  Error e = make_error(ExitCode::failure, "the livepatch {} is still in transition after {:.1f}s", name, r.seconds);
  e.hint = explain_stall(name, r);
  return e;
}

// Removes a module whose patch is gone, waiting briefly for the kernel's asynchronous free to drop its reference.
rr::Status remove_when_free(const Env& env, const std::string& name, const WaitOptions& wait) {
  std::chrono::milliseconds waited{0};
  const auto limit = std::max(wait.timeout, std::chrono::milliseconds(5000));
  while (true) {
    auto mod = find_loaded_module(env.sys(), name);
    if (!mod) return ok_status();
    if (!mod->refcnt || *mod->refcnt == 0) {
      auto st = env.ops->remove(name);
      if (st.ok() || st.error().code == ExitCode::missing) return ok_status();
      if (st.error().code != ExitCode::failure) return st;
    }
    if (waited >= limit) {
      Error e = make_error(ExitCode::refused, "module {} stays in use (reference count {}) after its patch was disabled", name,
                           mod->refcnt ? fmt::format("{}", *mod->refcnt) : std::string("unknown"));
      e.hint = "a livepatch whose transition was forced (/sys/kernel/livepatch/" + name +
               "/force) keeps its module reference forever: it can only go with a reboot. It is disabled and does nothing now.";
      return e;
    }
    pause(env, wait.poll);
    waited += wait.poll;
  }
}

}  // namespace

class SimulatedOps : public ModuleOps {
 public:
  explicit SimulatedOps(fs::path root) : root_(std::move(root)) {}
  // The kernel's answer to a write, done at once: enabled=0 frees the patch, enabled=1 only reverses a transition.
  rr::Status write_attribute(const std::string& patch, const std::string& attribute, bool value) override {
    auto p = find_livepatch(root_ / "sys", patch);
    if (!p) return make_error(ExitCode::missing, "no livepatch {}", patch);
    if (attribute != "enabled") return write_livepatch_attribute(root_ / "sys", patch, attribute, value);
    if (p->enabled == value) return make_error(ExitCode::failure, "the kernel refused '{}' in enabled: Invalid argument", value ? 1 : 0);
    if (value && !p->in_transition) return make_error(ExitCode::failure, "the kernel refused '1' in enabled: Invalid argument");
    std::error_code ec;
    if (!value) {
      fs::remove_all(root_ / "sys/kernel/livepatch" / patch, ec);
      return ok_status();
    }
    return write_livepatch_attribute(root_ / "sys", patch, attribute, value);
  }
  rr::Status load(const ModuleFile& m) override {
    fs::path mod = root_ / "sys/module" / m.name;
    std::error_code ec;
    if (fs::exists(mod / "initstate", ec)) return make_error(ExitCode::failure, "a module named {} is already loaded", m.name);
    RR_CHECK(put(mod / "initstate", "live\n"));
    RR_CHECK(put(mod / "refcnt", "0\n"));
    RR_CHECK(put(mod / "taint", "K\n"));
    if (!m.build_id.empty()) {
      std::string note;
      auto u32 = [&](uint32_t v) { note.append(reinterpret_cast<const char*>(&v), 4); };
      u32(4);
      u32(static_cast<uint32_t>(m.build_id.size() / 2));
      u32(3);  // NT_GNU_BUILD_ID
      note.append("GNU\0", 4);
      for (size_t i = 0; i + 1 < m.build_id.size(); i += 2) note += static_cast<char>(std::stoi(m.build_id.substr(i, 2), nullptr, 16));
      RR_CHECK(put(mod / "notes/.note.gnu.build-id", note));
    }
    for (const auto& lp : list_livepatches(root_ / "sys")) fs::remove_all(root_ / "sys/kernel/livepatch" / lp.name, ec);  // .replace
    RR_CHECK(put(root_ / "sys/kernel/livepatch" / m.name / "enabled", "1\n"));
    RR_CHECK(put(root_ / "sys/kernel/livepatch" / m.name / "transition", "0\n"));
    return ok_status();
  }
  rr::Status remove(const std::string& name) override {
    std::error_code ec;
    if (!fs::exists(root_ / "sys/module" / name / "initstate", ec)) return make_error(ExitCode::missing, "module {} is not loaded", name);
    if (auto p = find_livepatch(root_ / "sys", name); p && p->enabled)
      return make_error(ExitCode::failure, "module {} is in use (its patch is enabled)", name);
    fs::remove_all(root_ / "sys/kernel/livepatch" / name, ec);
    fs::remove_all(root_ / "sys/module" / name, ec);
    return ok_status();
  }

 private:
  static rr::Status put(const fs::path& p, std::string_view text) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    return write_file_text(p, text);
  }
  fs::path root_;
};

std::unique_ptr<ModuleOps> real_module_ops(const fs::path& sys_root) { return std::make_unique<SyscallOps>(sys_root); }
std::unique_ptr<ModuleOps> simulated_module_ops(const fs::path& root) { return std::make_unique<SimulatedOps>(root); }

std::string running_release(const Env& env) { return read_attribute(env.proc() / "sys/kernel/osrelease").value_or(""); }

rr::Status check_signing_policy(const Env& env, const ModuleFile& module) {
  if (module.is_signed) return ok_status();
  auto lock = lockdown_mode(env.sys());
  if (lock && *lock != "none") {
    Error e = make_error(ExitCode::environment, "the kernel is locked down ({}) and {} is not signed: the kernel would refuse it", *lock,
                         module.path.string());
    e.hint = kSignHint;
    return e;
  }
  auto enforced = signatures_enforced(env.sys());
  if (enforced && *enforced) {
    Error e =
        make_error(ExitCode::environment, "module signatures are enforced (module.sig_enforce) and {} is not signed", module.path.string());
    e.hint = kSignHint;
    return e;
  }
  return ok_status();
}

TransitionResult wait_transition(const Env& env, const std::string& name, const WaitOptions& options) {
  TransitionResult r;
  std::chrono::milliseconds waited{0}, since_progress{0};
  while (true) {
    auto p = find_livepatch(env.sys(), name);
    if (!p) {
      r.gone = true;
      r.done = true;
      r.target = 0;
      break;
    }
    r.target = p->enabled ? 1 : 0;
    if (!p->in_transition) {
      r.done = true;
      break;
    }
    if (waited >= options.timeout) break;
    if (since_progress >= options.progress_every) {
      since_progress = 0ms;
      auto pending = pending_tasks(env.proc(), r.target, 100000);
      say(env,
          fmt::format("livepatch {}: {} in progress, {} task(s) not switched yet ({:.0f}s of {:.0f}s)", name,
                      r.target ? "patching" : "unpatching", pending.size(), waited.count() / 1000.0, options.timeout.count() / 1000.0));
    }
    pause(env, options.poll);
    waited += options.poll;
    since_progress += options.poll;
  }
  r.seconds = waited.count() / 1000.0;
  if (!r.done) r.blockers = pending_tasks(env.proc(), r.target);
  return r;
}

std::string explain_stall(const std::string& name, const TransitionResult& r) {
  std::string out = fmt::format("{} task(s) have not switched to the {} state yet", r.blockers.size(), r.target ? "patched" : "unpatched");
  if (r.blockers.empty()) out = "no task with a pending patch_state was readable in /proc (run as root to see them)";
  out += ". The kernel switches a task only when none of the replaced functions is on its stack";
  out += r.blockers.empty() ? ".\n" : "; these block it:\n";
  for (const auto& t : r.blockers) {
    out += fmt::format("    pid {} ({}), patch_state {}\n", t.pid, t.comm, t.patch_state);
    for (const auto& frame : t.stack) out += "        " + frame + "\n";
    if (t.stack.empty()) out += "        (kernel stack not readable: /proc/PID/stack needs root)\n";
  }
  out += fmt::format(
      "  Choices:\n"
      "    wait longer:   relax-rmrr wait --name {0} --timeout 600 (most transitions finish once the tasks leave the kernel)\n"
      "    nudge them:    relax-rmrr wait --name {0} --signal (the kernel sends a fake signal to sleeping user tasks and wakes kthreads)\n"
      "    go back:       relax-rmrr {1} (writing `enabled` during a transition reverses it)\n"
      "    force:         relax-rmrr wait --name {0} --force --yes: marks every task switched without the stack check.\n"
      "                   A task that really is inside an old function may then run a mix of old and new code, and the\n"
      "                   module of a forced patch can never be removed (its reference is never dropped) until reboot.",
      name, r.target ? "disable" : "enable");
  return out;
}

Result<LoadReport> load(const Env& env, const fs::path& file, const LoadOptions& options) {
  RR_ASSIGN(ModuleFile m, read_module_file(file));
  if (!m.is_livepatch) {
    Error e = make_error(ExitCode::bad_input, "{} is not a livepatch module (its .modinfo has no livepatch=Y)", file.string());
    e.hint = "give the module `relax-rmrr build` wrote";
    return e;
  }
  if (!options.expected_name.empty() && m.name != options.expected_name) {
    Error e = make_error(ExitCode::bad_input, "{} holds the livepatch {}, not {}", file.string(), m.name, options.expected_name);
    e.hint = "pass --name " + m.name + ", or the file of " + options.expected_name;
    return e;
  }
  std::string release = running_release(env);
  if (!options.allow_other_kernel && !m.vermagic_release.empty() && !release.empty() && m.vermagic_release != release) {
    Error e = make_error(ExitCode::refused, "{} was built for kernel {}, but {} is running", file.string(), m.vermagic_release, release);
    e.hint = "build one for the running kernel: relax-rmrr build; to have it ready for the next boot: relax-rmrr install " + file.string();
    return e;
  }
  RR_CHECK(check_signing_policy(env, m));

  LoadReport r;
  r.name = m.name;
  r.action = "loaded";
  if (auto existing = find_loaded_module(env.sys(), m.name)) {
    bool known = !m.build_id.empty() && !existing->build_id.empty();
    bool same = known && m.build_id == existing->build_id;
    auto patch = find_livepatch(env.sys(), m.name);
    if (patch && patch->enabled) {
      if (known && !same) {
        Error e = make_error(ExitCode::refused, "another build of {} is loaded and active (build-id {} loaded, {} in {})", m.name,
                             existing->build_id, m.build_id, file.string());
        e.hint =
            "the kernel loads a module name once. For an atomic switch build the new one under another name "
            "(relax-rmrr build --name " +
            m.name +
            "_2): its .replace takes over in one transition. Or "
            "`relax-rmrr unload --name " +
            m.name + "` then load (the devices are not relaxed in between).";
        return e;
      }
      r.action = "already-loaded";
      if (!known) r.notes.push_back("a module named " + m.name + " is loaded; its build-id could not be compared with the file's");
      r.transition = wait_transition(env, m.name, options.wait);
      if (!r.transition.done) return stall_error(m.name, r.transition);
      record(env, m.name, file);
      return r;
    }
    if (patch) {  // being disabled: let that finish, then load again
      say(env, fmt::format("livepatch {}: waiting for the disable in progress to finish", m.name));
      auto t = wait_transition(env, m.name, options.wait);
      if (!t.done) return stall_error(m.name, t);
    }
    // The module is loaded but its patch was disabled and freed: a freed patch cannot be enabled again.
    say(env, fmt::format("livepatch {}: its patch was disabled; removing the module to load it again", m.name));
    RR_CHECK(remove_when_free(env, m.name, options.wait));
    r.action = "reloaded";
  }
  for (const auto& lp : list_livepatches(env.sys()))
    if (lp.in_transition && lp.name != m.name) {
      Error e = make_error(ExitCode::failure, "the livepatch {} is in transition: the kernel runs one transition at a time", lp.name);
      e.hint = "relax-rmrr wait --name " + lp.name + ", then load again";
      return e;
    }
  std::vector<std::string> before;
  for (const auto& lp : list_livepatches(env.sys()))
    if (lp.name != m.name && lp.enabled) before.push_back(lp.name);

  RR_CHECK(env.ops->load(m));
  record(env, m.name, file);
  r.transition = wait_transition(env, m.name, options.wait);
  if (!r.transition.done) return stall_error(m.name, r.transition);
  if (r.transition.gone) {
    Error e = make_error(ExitCode::failure, "the livepatch {} went away right after loading (disabled by someone else?)", m.name);
    e.hint = "dmesg; relax-rmrr status";
    return e;
  }
  // .replace = true: every livepatch enabled before is replaced; free their modules.
  for (const auto& old : before) {
    auto p = find_livepatch(env.sys(), old);
    if (p && p->enabled) continue;
    r.replaced.push_back(old);
    if (find_loaded_module(env.sys(), old)) {
      auto st = remove_when_free(env, old, WaitOptions{.timeout = 5000ms, .poll = options.wait.poll});
      r.notes.push_back(st.ok() ? fmt::format("replaced {} and removed its module", old)
                                : fmt::format("replaced {}; its module stays loaded: {}", old, st.error().message));
    }
  }
  return r;
}

fs::path installed_module_path(const fs::path& root, const std::string& release, const std::string& name, const std::string& subdir) {
  return root / "lib/modules" / release / subdir / (name + ".ko");
}

Result<LoadReport> enable(const Env& env, const std::string& name, const fs::path& file, const LoadOptions& options) {
  if (auto patch = find_livepatch(env.sys(), name)) {
    LoadReport r;
    r.name = name;
    if (patch->enabled) {
      r.action = "already-enabled";
    } else {
      if (patch->in_transition) {
        // A disable in progress: writing 1 reverses it.
        RR_CHECK(env.ops->write_attribute(name, "enabled", true));
        r.action = "reversed";
      } else {
        // Disabled and done: the kernel is about to free it (and would refuse enabled=1). Let it go.
        std::chrono::milliseconds waited{0};
        while (find_livepatch(env.sys(), name) && waited < std::max(options.wait.timeout, std::chrono::milliseconds(5000))) {
          pause(env, options.wait.poll);
          waited += options.wait.poll;
        }
        r.action = "freed";
      }
    }
    if (r.action != "freed") {
      r.transition = wait_transition(env, name, options.wait);
      if (!r.transition.done) return stall_error(name, r.transition);
      if (!r.transition.gone) return r;
    }
    // the patch was freed: reload its module
  }
  fs::path chosen = file;
  std::vector<fs::path> tried;
  if (chosen.empty()) {
    if (auto rec = recorded_file(env, name)) {
      tried.push_back(*rec);
      if (file_exists(*rec)) chosen = *rec;
    }
  }
  if (chosen.empty()) {
    for (const char* sub : {"updates", "extra", "updates/dkms"}) {
      fs::path p = installed_module_path(env.root, running_release(env), name, sub);
      tried.push_back(p);
      if (file_exists(p)) {
        chosen = p;
        break;
      }
    }
  }
  if (chosen.empty()) {
    std::string list;
    for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t.string();
    Error e = make_error(ExitCode::missing, "livepatch {} is not loaded and no module file was found (looked at {})", name, list);
    e.hint = "relax-rmrr enable FILE.ko, or install it first: relax-rmrr install FILE.ko";
    return e;
  }
  LoadOptions o = options;
  o.expected_name = name;
  return load(env, chosen, o);
}

Result<SimpleReport> disable(const Env& env, const std::string& name, const WaitOptions& wait) {
  SimpleReport r;
  auto patch = find_livepatch(env.sys(), name);
  if (!patch) {
    r.action = find_loaded_module(env.sys(), name) ? "already-disabled" : "not-loaded";
    return r;
  }
  if (patch->enabled) RR_CHECK(env.ops->write_attribute(name, "enabled", false));
  r.action = "disabled";
  r.transition = wait_transition(env, name, wait);
  if (!r.transition.done) return stall_error(name, r.transition);
  return r;
}

Result<SimpleReport> unload(const Env& env, const std::string& name, const WaitOptions& wait) {
  SimpleReport r;
  if (find_livepatch(env.sys(), name)) {
    say(env, fmt::format("livepatch {}: disabling before removal", name));
    RR_ASSIGN(SimpleReport d, disable(env, name, wait));
    r.transition = d.transition;
    r.notes.push_back("disabled the patch first");
  }
  if (!find_loaded_module(env.sys(), name)) {
    r.action = "not-loaded";
    return r;
  }
  RR_CHECK(remove_when_free(env, name, wait));
  std::error_code ec;
  fs::remove(env.record_file(name), ec);
  r.action = "unloaded";
  return r;
}

PatchStatus read_status(const Env& env, const std::string& name, const fs::path& file) {
  PatchStatus s;
  s.name = name;
  s.running_release = running_release(env);
  s.module = find_loaded_module(env.sys(), name);
  s.patch = find_livepatch(env.sys(), name);
  for (auto& lp : list_livepatches(env.sys()))
    if (lp.name != name) s.other_patches.push_back(lp);
  s.lockdown = lockdown_mode(env.sys());
  s.sig_enforce = signatures_enforced(env.sys());
  std::vector<fs::path> candidates;
  if (!file.empty()) candidates.push_back(file);
  else {
    if (auto rec = recorded_file(env, name)) candidates.push_back(*rec);
    for (const char* sub : {"updates", "extra", "updates/dkms"})
      candidates.push_back(installed_module_path(env.root, s.running_release, name, sub));
  }
  for (const auto& c : candidates) {
    if (!file_exists(c)) continue;
    auto m = read_module_file(c);
    if (!m) continue;
    m->image.clear();
    m->image.shrink_to_fit();
    s.file = std::move(*m);
    break;
  }
  if (s.file) {
    s.file_matches_kernel = s.file->vermagic_release == s.running_release;
    if (s.module && !s.module->build_id.empty() && !s.file->build_id.empty()) s.file_is_loaded = s.module->build_id == s.file->build_id;
  }
  if (s.patch && s.patch->in_transition) s.blockers = pending_tasks(env.proc(), s.patch->enabled ? 1 : 0, 16);
  return s;
}

Json to_json(const PatchStatus& s) {
  Json j = Json::object();
  j.set("name", s.name);
  j.set("running_kernel", s.running_release);
  j.set("active", s.active());
  Json mod = Json::object();
  mod.set("loaded", s.module.has_value());
  if (s.module) {
    mod.set("initstate", s.module->initstate);
    mod.set("refcnt", s.module->refcnt ? Json(*s.module->refcnt) : Json());
    mod.set("taint", s.module->taint);
    mod.set("build_id", s.module->build_id);
  }
  j.set("module", std::move(mod));
  Json lp = Json::object();
  lp.set("present", s.patch.has_value());
  lp.set("enabled", s.patch ? s.patch->enabled : false);
  lp.set("transition", s.patch ? s.patch->in_transition : false);
  j.set("livepatch", std::move(lp));
  if (s.file) {
    Json f = Json::object();
    f.set("path", s.file->path.string());
    f.set("relax_rmrr_kernel", s.file->field("relax_rmrr_kernel"));
    f.set("relax_rmrr_version", s.file->field("relax_rmrr_version"));
    f.set("relax_rmrr_forced", s.file->field("relax_rmrr_forced"));
    f.set("vermagic", s.file->vermagic);
    f.set("signed", s.file->is_signed);
    f.set("build_id", s.file->build_id);
    f.set("matches_running_kernel", s.file_matches_kernel);
    f.set("is_the_loaded_module", s.file_is_loaded ? Json(*s.file_is_loaded) : Json());
    j.set("file", std::move(f));
  } else {
    j.set("file", Json());
  }
  j.set("other_livepatches", Json::array_of(s.other_patches, [](const LivepatchState& other) { return host::to_json(other); }));
  j.set("lockdown", s.lockdown ? Json(*s.lockdown) : Json());
  j.set("sig_enforce", s.sig_enforce ? Json(*s.sig_enforce) : Json());
  Json b = Json::array();
  for (const auto& t : s.blockers) {
    Json x = Json::object();
    x.set("pid", t.pid);
    x.set("comm", t.comm);
    x.set("patch_state", t.patch_state);
    x.set("stack", Json::strings(t.stack));
    b.push(std::move(x));
  }
  j.set("transition_blockers", std::move(b));
  return j;
}

}  // namespace rr::lifecycle
