// Waiting for a livepatch transition to finish, and what to say when it does not (the tasks that block it and
// the choices: wait, signal, reverse, force).
#pragma once

#include "common/result.h"
#include "host/livepatch_sysfs.h"
#include "lifecycle/env.h"

#include <chrono>
#include <string>
#include <vector>

namespace rr::lifecycle {

using host::PendingTask;

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
// An error when livepatch sysfs holds what the kernel never writes (host/livepatch_sysfs.h).
Result<TransitionResult> wait_transition(const Env& env, const std::string& name, const WaitOptions& options);

// What to tell the user about a stalled transition: the blocking tasks and the choices (wait, signal, force).
std::string explain_stall(const std::string& name, const TransitionResult& r);

// The error for a transition that did not finish in time, with explain_stall as its hint.
Error stall_error(const std::string& name, const TransitionResult& r);

// Removes the module of a freed patch, waiting a little for the kernel's asynchronous free to drop its reference.
Status remove_when_free(const Env& env, const std::string& name, const WaitOptions& wait);

}  // namespace rr::lifecycle
