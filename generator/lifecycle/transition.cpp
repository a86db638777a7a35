#include "lifecycle/transition.h"

#include "lifecycle/module_ops.h"

#include <fmt/format.h>

#include <algorithm>

using namespace std::chrono_literals;

namespace rr::lifecycle {

using host::find_livepatch;
using host::find_loaded_module;
using host::pending_tasks;

Result<TransitionResult> wait_transition(const Env& env, const std::string& name, const WaitOptions& options) {
  TransitionResult r;
  std::chrono::milliseconds waited{0}, since_progress{0};
  while (true) {
    RR_ASSIGN(auto p, find_livepatch(env.sys(), name));
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
      report_progress(env, fmt::format("livepatch {}: {} in progress, {} task(s) not switched yet ({:.0f}s of {:.0f}s)", name,
                                       r.target ? "patching" : "unpatching", pending.size(), waited.count() / 1000.0,
                                       options.timeout.count() / 1000.0));
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

Error stall_error(const std::string& name, const TransitionResult& r) {
  Error e = make_error(ExitCode::failure, "the livepatch {} is still in transition after {:.1f}s", name, r.seconds);
  e.hint = explain_stall(name, r);
  return e;
}

rr::Status remove_when_free(const Env& env, const std::string& name, const WaitOptions& wait) {
  std::chrono::milliseconds waited{0};
  const auto limit = std::max(wait.timeout, std::chrono::milliseconds(5000));
  while (true) {
    RR_ASSIGN(auto mod, find_loaded_module(env.sys(), name));
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

}  // namespace rr::lifecycle
