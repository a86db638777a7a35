// relax-rmrr wait: wait for a livepatch transition; on request signal the blocking tasks or force it.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct WaitCmdOptions {
  LifecycleOptions common;
  bool signal = false, force = false, yes = false;
};

int run_wait(const WaitCmdOptions& o) {
  LifecycleContext ctx(o.common);
  auto resolved = livepatch_name(o.common, ctx.env());
  if (!resolved) return report_error(resolved.error());
  const std::string& name = *resolved;
  auto found = host::find_livepatch(ctx.env().sys(), name);
  if (!found) return report_error(found.error());
  const auto& patch = *found;
  if (!patch || !patch->in_transition) {
    fmt::print("livepatch {}: {}\n", name, !patch ? "not present, no transition" : "no transition in progress");
    return 0;
  }
  if (o.force) {
    if (!o.yes) {
      Error e = make_error(ExitCode::refused, "--force needs --yes: a forced livepatch module can never be removed until reboot");
      e.hint = "try --signal first, or wait longer; see `relax-rmrr wait --help`";
      return report_error(e);
    }
    if (auto st = ctx.env().ops->write_attribute(name, "force", true); !st) return report_error(st.error());
    warn("forced the transition of " + name + ": its module can no longer be removed until reboot");
  } else if (o.signal) {
    if (auto st = ctx.env().ops->write_attribute(name, "signal", true); !st) return report_error(st.error());
    fmt::print(stderr, "livepatch {}: signalled the blocking tasks\n", name);
  }
  auto waited = lifecycle::wait_transition(ctx.env(), name, ctx.wait());
  if (!waited) return report_error(waited.error());
  const auto& t = *waited;
  if (!t.done) {
    Error e = make_error(ExitCode::failure, "the livepatch {} is still in transition after {:.1f}s", name, t.seconds);
    e.hint = lifecycle::explain_stall(name, t);
    return report_error(e);
  }
  print_transition(name, t);
  return 0;
}

}  // namespace

Command add_wait_command(CLI::App& root) {
  auto o = std::make_shared<WaitCmdOptions>();
  CLI::App* app = root.add_subcommand("wait", "Wait for a livepatch transition to finish (optionally signal or force it)");
  add_transition_options(app, o->common);
  app->add_flag("--signal", o->signal, "Write 1 to /sys/kernel/livepatch/NAME/signal first: fake signals to sleeping tasks");
  app->add_flag("--force", o->force, "Write 1 to .../force: mark every task switched WITHOUT the safety check (needs --yes)");
  app->add_flag("--yes", o->yes, "Confirm --force: the module of a forced patch can never be removed until reboot");
  app->footer(
      "A task switches when none of the replaced functions is on its stack; a task asleep inside one blocks the\n"
      "transition. On a stall the blocking tasks are listed with their kernel stacks (/proc/PID/stack, as root).\n"
      "Exit codes: 0 no transition left, 1 still in transition at the timeout, 4 --force without --yes.");
  return {app, [o] { return run_wait(*o); }};
}

}  // namespace rr::cli
