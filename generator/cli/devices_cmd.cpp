// relax-rmrr devices: which RMRR devices the livepatch relaxes, shown and changed at run time.
#include "cli/commands.h"
#include "cli/lifecycle_options.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "lifecycle/selection.h"

#include <fmt/core.h>

namespace rr::cli {

namespace {

struct DevicesOptions {
  LifecycleOptions common;
  std::vector<std::string> addresses;  // set: one LIST (or all); add/remove: one or more addresses or lists
  bool no_persist = false;
};

int run_show(const DevicesOptions& o) {
  LifecycleContext ctx(o.common);
  auto name = livepatch_name(o.common, ctx.env());
  if (!name) return report_error(name.error());
  auto in_module = lifecycle::read_module_selection(ctx.env(), *name);
  if (!in_module) return report_error(in_module.error());
  auto persisted = lifecycle::read_persisted_selection(ctx.env().root);
  if (!persisted) return report_error(persisted.error());
  if (o.common.json) {
    Json j = Json::object();
    j.set("name", *name);
    j.set("module", devices_json(*in_module));
    j.set("persisted", devices_json(*persisted));
    print_json(j);
    return 0;
  }
  fmt::print("  loaded module {}: {}\n", *name,
             *in_module ? describe_devices(**in_module) : "not loaded, or without a `devices` parameter");
  fmt::print("  persisted     {}: {}\n", lifecycle::selection_file(ctx.env().root).string(), describe_devices(*persisted));
  return 0;
}

int run_change(const DevicesOptions& o, lifecycle::SelectionChange change) {
  LifecycleContext ctx(o.common);
  auto name = livepatch_name(o.common, ctx.env());
  if (!name) return report_error(name.error());
  lifecycle::SelectionRequest request;
  request.change = change;
  request.persist = !o.no_persist;
  std::string all_given;
  for (const auto& a : o.addresses) all_given += (all_given.empty() ? "" : ",") + a;
  // Each value passed devices_check(); "all" only makes sense for `set`.
  auto parsed = parse_devices_option(all_given);
  if (!parsed || (change != lifecycle::SelectionChange::set && parsed->all()))
    return report_error(parsed ? make_error(ExitCode::bad_input, "add and remove take PCI addresses, not `all`") : parsed.error());
  request.devices = *parsed;
  auto r = lifecycle::change_selection(ctx.env(), *name, request);
  if (!r) return report_error(r.error());
  if (o.common.json) {
    Json j = Json::object();
    j.set("name", *name);
    j.set("before", devices_json(r->before));
    j.set("devices", devices_json(r->after));
    j.set("module_changed", r->module_loaded);
    j.set("persisted", r->persisted);
    j.set("notes", Json::strings(r->notes));
    print_json(j);
    return 0;
  }
  fmt::print("Relaxed devices: {} (was: {}){}\n", describe_devices(r->after), describe_devices(r->before),
             r->module_loaded ? fmt::format(", in force in {} now", *name) : "");
  print_notes(r->notes);
  return 0;
}

}  // namespace

Command add_devices_command(CLI::App& root) {
  auto o = std::make_shared<DevicesOptions>();
  CLI::App* app = root.add_subcommand("devices", "Show or change which RMRR devices the livepatch relaxes, at run time");
  app->require_subcommand(0, 1);
  app->fallthrough();  // devices set LIST --json: the options of `devices` after its subcommand
  add_name_option(app, o->common);
  add_root_option(app, o->common);
  app->add_flag("--json", o->common.json, "Print JSON on stdout");
  auto show = app->add_subcommand("show", "The selection of the loaded module and the persisted one (the default)");
  auto set = app->add_subcommand("set", "Relax exactly these devices (LIST, or `all` for every RMRR device)");
  auto add = app->add_subcommand("add", "Relax these devices too");
  auto remove = app->add_subcommand("remove", "Stop relaxing these devices");
  set->add_option("list", o->addresses, "PCI addresses [domain:]bus:device.function, comma-separated, or all")
      ->required()
      ->expected(1)
      ->check(devices_check());
  for (CLI::App* sub : {add, remove})
    sub->add_option("address", o->addresses, "PCI addresses [domain:]bus:device.function (several, or comma-separated)")
        ->required()
        ->check(devices_check());
  for (CLI::App* sub : {set, add, remove})
    sub->add_flag("--no-persist", o->no_persist,
                  "Change the loaded module only; the next load (enable, boot) uses /etc/relax-rmrr/devices again");
  (void)show;
  app->footer(
      "The livepatch's `devices` parameter (/sys/module/NAME/parameters/devices) holds the selection: only the RMRRs\n"
      "of the listed devices are relaxed, every other device keeps the kernel's behaviour (the same reserved regions,\n"
      "the same refusal). Empty, or `all`: every RMRR device, as without a selection. A change takes effect at the\n"
      "device's next attach; from Linux 6.6 a device that a VM holds right now keeps its state until it is released\n"
      "and probed again (the kernel logs it). The selection is kept in /etc/relax-rmrr/devices for every later load\n"
      "(load, enable, the boot unit, modules DKMS builds). The list is checked before anything is written; a module\n"
      "without the parameter (built before relax-rmrr 0.3) is refused a selection.\n"
      "Examples: relax-rmrr devices set 0000:03:00.0,0000:05:00.0; relax-rmrr devices remove 0000:05:00.0\n"
      "Exit codes: 0 done, 2 a bad list, 4 refused (see the message), 5 the host forbids it (not root).");
  return {app, [o, set, add, remove] {
            if (set->parsed()) return run_change(*o, lifecycle::SelectionChange::set);
            if (add->parsed()) return run_change(*o, lifecycle::SelectionChange::add);
            if (remove->parsed()) return run_change(*o, lifecycle::SelectionChange::remove);
            return run_show(*o);
          }};
}

}  // namespace rr::cli
