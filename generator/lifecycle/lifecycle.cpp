#include "lifecycle/lifecycle.h"

#include "host/livepatch_sysfs.h"
#include "lifecycle/module_location.h"
#include "lifecycle/selection.h"

#include <fmt/format.h>

#include <algorithm>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace rr::lifecycle {

using host::find_livepatch;
using host::find_loaded_module;
using host::list_livepatches;

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
  RR_ASSIGN(host::DeviceSelection selection, selection_for_load(env.root, m, options.devices));

  LoadReport r;
  r.name = m.name;
  r.action = "loaded";
  RR_ASSIGN(auto existing, find_loaded_module(env.sys(), m.name));
  if (existing) {
    bool known = !m.build_id.empty() && !existing->build_id.empty();
    bool same = known && m.build_id == existing->build_id;
    RR_ASSIGN(auto patch, find_livepatch(env.sys(), m.name));
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
      RR_ASSIGN(r.transition, wait_transition(env, m.name, options.wait));
      if (!r.transition.done) return stall_error(m.name, r.transition);
      record_loaded_file(env, m.name, file);
      RR_ASSIGN(r.devices, read_module_selection(env, m.name));
      if (options.devices && r.devices && r.devices->text != selection.text) {
        RR_CHECK(apply_module_selection(env, m.name, selection));
        r.notes.push_back(fmt::format("the loaded module's selection changed from '{}' to '{}'", r.devices->text, selection.text));
        r.devices = selection;
      }
      return r;
    }
    if (patch) {  // being disabled: let that finish, then load again
      report_progress(env, fmt::format("livepatch {}: waiting for the disable in progress to finish", m.name));
      RR_ASSIGN(TransitionResult t, wait_transition(env, m.name, options.wait));
      if (!t.done) return stall_error(m.name, t);
    }
    // The module is loaded but its patch was disabled and freed: a freed patch cannot be enabled again.
    report_progress(env, fmt::format("livepatch {}: its patch was disabled; removing the module to load it again", m.name));
    RR_CHECK(remove_when_free(env, m.name, options.wait));
    r.action = "reloaded";
  }
  RR_ASSIGN(auto patches, list_livepatches(env.sys()));
  for (const auto& lp : patches)
    if (lp.in_transition && lp.name != m.name) {
      Error e = make_error(ExitCode::failure, "the livepatch {} is in transition: the kernel runs one transition at a time", lp.name);
      e.hint = "relax-rmrr wait --name " + lp.name + ", then load again";
      return e;
    }
  std::vector<std::string> before;
  for (const auto& lp : patches)
    if (lp.name != m.name && lp.enabled) before.push_back(lp.name);

  RR_CHECK(env.ops->load(m, load_parameters(selection)));
  record_loaded_file(env, m.name, file);
  RR_ASSIGN(r.transition, wait_transition(env, m.name, options.wait));
  if (!r.transition.done) return stall_error(m.name, r.transition);
  if (r.transition.gone) {
    Error e = make_error(ExitCode::failure, "the livepatch {} went away right after loading (disabled by someone else?)", m.name);
    e.hint = "dmesg; relax-rmrr status";
    return e;
  }
  RR_ASSIGN(r.devices, read_module_selection(env, m.name));
  if (r.devices && r.devices->text != selection.text)
    return make_error(ExitCode::failure, "the module {} holds the selection '{}', not the '{}' it was loaded with", m.name, r.devices->text,
                      selection.text);
  // .replace = true: every livepatch enabled before is replaced; free their modules.
  for (const auto& old : before) {
    RR_ASSIGN(auto p, find_livepatch(env.sys(), old));
    if (p && p->enabled) continue;
    r.replaced.push_back(old);
    RR_ASSIGN(auto old_module, find_loaded_module(env.sys(), old));
    if (old_module) {
      auto st = remove_when_free(env, old, WaitOptions{.timeout = 5000ms, .poll = options.wait.poll});
      r.notes.push_back(st.ok() ? fmt::format("replaced {} and removed its module", old)
                                : fmt::format("replaced {}; its module stays loaded: {}", old, st.error().message));
    }
  }
  return r;
}

Result<LoadReport> enable(const Env& env, const std::string& name, const fs::path& file, const LoadOptions& options) {
  RR_ASSIGN(auto patch, find_livepatch(env.sys(), name));
  if (patch) {
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
        while (waited < std::max(options.wait.timeout, std::chrono::milliseconds(5000))) {
          RR_ASSIGN(auto still, find_livepatch(env.sys(), name));
          if (!still) break;
          pause(env, options.wait.poll);
          waited += options.wait.poll;
        }
        r.action = "freed";
      }
    }
    if (r.action != "freed") {
      RR_ASSIGN(r.transition, wait_transition(env, name, options.wait));
      if (!r.transition.done) return stall_error(name, r.transition);
      if (!r.transition.gone) return r;
    }
    // the patch was freed: reload its module
  }
  fs::path chosen = file;
  std::vector<fs::path> tried;
  if (chosen.empty()) {
    for (const fs::path& p : module_file_candidates(env, name)) {
      tried.push_back(p);
      std::error_code ec;
      if (fs::exists(p, ec)) {
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
  RR_ASSIGN(auto patch, find_livepatch(env.sys(), name));
  if (!patch) {
    RR_ASSIGN(auto module, find_loaded_module(env.sys(), name));
    r.action = module ? "already-disabled" : "not-loaded";
    return r;
  }
  if (patch->enabled) RR_CHECK(env.ops->write_attribute(name, "enabled", false));
  r.action = "disabled";
  RR_ASSIGN(r.transition, wait_transition(env, name, wait));
  if (!r.transition.done) return stall_error(name, r.transition);
  return r;
}

Result<SimpleReport> unload(const Env& env, const std::string& name, const WaitOptions& wait) {
  SimpleReport r;
  RR_ASSIGN(auto patch, find_livepatch(env.sys(), name));
  if (patch) {
    report_progress(env, fmt::format("livepatch {}: disabling before removal", name));
    RR_ASSIGN(SimpleReport d, disable(env, name, wait));
    r.transition = d.transition;
    r.notes.push_back("disabled the patch first");
  }
  RR_ASSIGN(auto module, find_loaded_module(env.sys(), name));
  if (!module) {
    r.action = "not-loaded";
    return r;
  }
  RR_CHECK(remove_when_free(env, name, wait));
  forget_loaded_file(env, name);
  r.action = "unloaded";
  return r;
}

}  // namespace rr::lifecycle
