// relax-rmrr doctor: can this device go to a VM, and if not, why and what next.
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "host/dmar.h"
#include "host/host.h"
#include "host/pci.h"
#include "host/rmrr_map.h"
#include "lifecycle/boot.h"
#include "lifecycle/selection.h"

#include <fmt/core.h>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct DoctorOptions {
  std::string root = "/";
  std::string dmar_file;  // default: <root>/sys/firmware/acpi/tables/DMAR
  std::string patch_name = "relax_rmrr";
  bool json = false;
};

// The packaged flow for this host: the administrator's agreement, the module for the running kernel, and what the
// DKMS kernel hook recorded for each kernel.
struct BootFacts {
  bool consent = false;
  std::optional<fs::path> module;
  std::vector<lifecycle::DkmsRecord> dkms;
  const lifecycle::DkmsRecord* running_record = nullptr;
};

BootFacts read_boot_facts(const fs::path& root, const std::string& release, const std::string& name) {
  BootFacts b;
  b.consent = lifecycle::consent_given(root);
  b.module = lifecycle::find_installed_module(root, release, name);
  b.dkms = lifecycle::read_dkms_records(root);
  for (const auto& r : b.dkms)
    if (r.release == release) b.running_record = &r;
  return b;
}

struct Conclusion {
  std::string code;  // stable identifier for scripts
  std::string summary;
  std::string next;
  int exit_code = 0;
};

bool relax_in_force(const host::Facts& f, const std::string& patch_name) {
  for (const auto& lp : f.livepatches)
    if ((lp.marked || lp.name == patch_name) && lp.enabled) return true;
  return f.relax_rmrr_on_cmdline && f.proxmox_knows_relax_rmrr;
}

// The `devices` selection that decides which devices are relaxed: the enabled relax-rmrr livepatch's, else the
// persisted one that the next load will use.
Result<host::DeviceSelection> selection_in_force(const host::Facts& f, const std::string& patch_name) {
  lifecycle::Env env;
  env.root = f.root;
  for (const auto& lp : f.livepatches)
    if ((lp.marked || lp.name == patch_name) && lp.enabled) {
      RR_ASSIGN(auto in_module, lifecycle::read_module_selection(env, lp.name));
      if (in_module) return *in_module;
      return host::DeviceSelection{};  // a module without the parameter relaxes every device
    }
  return lifecycle::read_persisted_selection(f.root);
}

// The locked devices, selected (the default) or left out of the selection.
std::string locked_list(const rmrr::Map& map, const pci::Topology& topo, bool selected = true) {
  std::string out;
  for (const auto& e : map.devices) {
    if (e.verdict != rmrr::Verdict::locked || e.selected.value_or(true) != selected) continue;
    if (!out.empty()) out += ", ";
    out += topo.devices[static_cast<size_t>(e.device)].address.str();
  }
  return out;
}

Conclusion conclude(const host::Facts& f, const dmar::Table* table, const rmrr::Map& map, const pci::Topology& topo, const BootFacts& boot,
                    const DoctorOptions& o) {
  if (!table)
    return {"no-dmar", "No DMAR table: this host has no Intel VT-d (or it is off in the firmware setup), so no RMRR can lock a device.",
            "If you expected VT-d, enable it in the firmware setup; AMD hosts do not use RMRRs.", 0};
  if (table->rmrrs.empty())
    return {"no-rmrr", "The firmware reports no RMRR: no device is RMRR-locked.", "Nothing to do for relax-rmrr.", 0};
  size_t locked = map.locked_count();
  if (!f.iommu_active()) {
    std::string why = f.iommu_disabled_on_cmdline ? "the command line has intel_iommu=off"
                                                  : "the kernel did not enable it (Debian and Ubuntu need intel_iommu=on)";
    return {"iommu-off",
            fmt::format("VT-d is present but the IOMMU is not active: {}. No device can go to a VM yet{}.", why,
                        locked ? fmt::format("; once it is, {} device(s) will be RMRR-locked", locked) : ""),
            "Add intel_iommu=on to the kernel command line (e.g. GRUB_CMDLINE_LINUX in /etc/default/grub, then update-grub) and reboot.",
            1};
  }
  // Devices the administrator left out of the `devices` selection stay locked on purpose: said, never a failure.
  std::string kept = map.not_selected_count() == 0
                         ? ""
                         : fmt::format(" {} RMRR device(s) stay locked because the `devices` selection leaves them out: {}.",
                                       map.not_selected_count(), locked_list(map, topo, false));
  if (locked == 0) {
    bool relaxed = std::any_of(map.devices.begin(), map.devices.end(), [](const auto& e) { return e.verdict == rmrr::Verdict::relaxed; });
    if (relaxed)
      return {"relaxed", "RMRR-covered devices are relaxed: they can be attached to VFIO now." + kept,
              "Bind the device to vfio-pci and start the VM. `relax-rmrr disable` restores the kernel's default." +
                  std::string(kept.empty() ? "" : " `relax-rmrr devices add ADDRESS` relaxes another."),
              0};
    if (!kept.empty())
      return {"not-selected", kept.substr(1), "`relax-rmrr devices add ADDRESS` relaxes one of them; nothing else to do.", 0};
    return {"ok", "RMRRs exist, but only for devices the kernel already relaxes (USB, graphics) or for empty slots.",
            "Nothing to do for relax-rmrr.", 0};
  }
  std::string summary =
      fmt::format("{} device(s) are RMRR-locked and cannot be attached to a VM: {}.{}", locked, locked_list(map, topo), kept);
  if (f.proxmox_knows_relax_rmrr)
    return {"locked", summary,
            "This Proxmox kernel already has the option: add intel_iommu=relax_rmrr to the command line and reboot "
            "(or, without a reboot: relax-rmrr build && relax-rmrr load).",
            1};
  if (f.config_livepatch && !*f.config_livepatch)
    return {"locked", summary + " This kernel is built without CONFIG_LIVEPATCH, so no livepatch can load.",
            "Use the kernel patch: relax-rmrr patch --format full --source <kernel tree> (see kernel-patch/README.md).", 1};
  if ((f.lockdown && *f.lockdown != "none") || (f.secure_boot && *f.secure_boot))
    return {"locked", summary + " Lockdown or Secure Boot is on: only a signed module will load.",
            "relax-rmrr build --sign-key KEY --sign-cert CERT (a key enrolled with mokutil), then relax-rmrr load.", 1};
  if (boot.module)
    return {"locked",
            summary + fmt::format(" A module for this kernel is installed ({}) but not loaded{}.", boot.module->string(),
                                  boot.consent ? "" : ": the administrator has not agreed to load it at boot"),
            fmt::format("sudo relax-rmrr load {}{}", boot.module->string(),
                        boot.consent ? " (or: systemctl start relax-rmrr)" : "; to load it at every boot: sudo relax-rmrr install"),
            1};
  if (boot.running_record && boot.running_record->status != "installed")
    return {"locked", summary + fmt::format(" DKMS could not build the livepatch for this kernel: {}.", boot.running_record->reason),
            boot.running_record->hint.empty() ? "see relax-rmrr doctor's DKMS lines" : boot.running_record->hint, 1};
  std::string name = o.patch_name == "relax_rmrr" ? "" : " --name " + o.patch_name;
  return {"locked", summary, fmt::format("relax-rmrr build{} && sudo relax-rmrr load", name), 1};
}

void print_human(const host::Facts& f, const dmar::Table* table, const std::string& dmar_note, const rmrr::Map& map,
                 const pci::Topology& topo, const BootFacts& boot, const Conclusion& c, const DoctorOptions& o) {
  fmt::print("Host\n");
  fmt::print("  kernel       {}{}\n", f.kernel_release.empty() ? "(unknown)" : f.kernel_release,
             f.proxmox_kernel ? (f.proxmox_knows_relax_rmrr ? "  (Proxmox: knows intel_iommu=relax_rmrr)" : "  (Proxmox)") : "");
  fmt::print("  IOMMU        {}{}\n", f.iommu_active() ? "active: " : "not active", fmt::join(f.iommu_units, ", "));
  fmt::print("  command line {}\n", f.intel_iommu_options.empty()
                                        ? "no intel_iommu= option"
                                        : "intel_iommu=" + fmt::format("{}", fmt::join(f.intel_iommu_options, " intel_iommu=")));
  auto yn = [](const std::optional<bool>& b) { return b ? (*b ? "y" : "n") : "unknown"; };
  fmt::print("  config       CONFIG_LIVEPATCH={} CONFIG_INTEL_IOMMU={}{}\n", yn(f.config_livepatch), yn(f.config_intel_iommu),
             f.config_source.empty() ? "" : " (from " + f.config_source + ")");
  fmt::print("  lockdown     {}; Secure Boot {}\n", f.lockdown.value_or("not reported"),
             f.secure_boot ? (*f.secure_boot ? "on" : "off") : "unknown");
  if (f.livepatches.empty()) {
    fmt::print("  livepatches  none loaded\n");
  } else {
    for (const auto& lp : f.livepatches)
      fmt::print("  livepatch    {}{}: {}{}\n", lp.name, lp.marked || lp.name == o.patch_name ? " (relax-rmrr)" : "",
                 lp.enabled ? "enabled" : "disabled", lp.in_transition ? ", in transition" : "");
  }
  fmt::print("  at boot      {}; module for this kernel: {}\n",
             boot.consent ? "agreed: relax-rmrr.service loads the livepatch" : "not agreed: nothing is loaded at boot",
             boot.module ? boot.module->string() : "none");
  for (const auto& r : boot.dkms)
    fmt::print("  DKMS         {}: {}{}{}\n", r.release, r.status, r.reason.empty() ? "" : " (" + r.reason + ")",
               r.hint.empty() ? "" : "; to fix: " + r.hint);
  if (table) {
    fmt::print("\nDMAR: OEM '{}' table '{}', {} RMRR(s){}\n", trim(table->oem_id), trim(table->oem_table_id), table->rmrrs.size(),
               dmar_note.empty() ? "" : " - " + dmar_note);
    for (size_t i = 0; i < table->rmrrs.size(); ++i)
      fmt::print("  RMRR #{} [{:#x}-{:#x}]\n", i, table->rmrrs[i].base, table->rmrrs[i].limit);
  }
  if (!map.devices.empty()) {
    fmt::print("\nDevices covered by RMRRs\n");
    for (const auto& e : map.devices) {
      const auto& d = topo.devices[static_cast<size_t>(e.device)];
      std::string rmrrs;
      for (const auto& g : e.regions) rmrrs += fmt::format("{}#{}", rmrrs.empty() ? "" : ",", g.rmrr_index);
      // relaxed; locked and selectable (relax-rmrr would relax it); locked and not selected (left so on purpose)
      std::string state = e.verdict == rmrr::Verdict::locked ? (e.selected == false ? "locked, not selected" : "locked, selectable")
                                                             : rmrr::verdict_name(e.verdict);
      fmt::print("  {}  {:04x}:{:04x}  class {:06x}  {:<12} group {:<4} {:<21} RMRR {}\n", d.address.str(), d.vendor, d.device_id,
                 d.class_code, d.driver.empty() ? "(no driver)" : d.driver, d.iommu_group ? fmt::format("{}", *d.iommu_group) : "-", state,
                 rmrrs);
      fmt::print(
          "      {}{}\n", e.reason,
          e.broken_path ? "; its RMRR scope is written with the device's own bus (the kernel applies its \"broken RMRR\" workaround)" : "");
    }
  }
  bool header = false;
  for (const auto& s : map.scopes) {
    if (s.match.device >= 0 && s.match.problem.empty()) continue;
    if (!header) fmt::print("\nScopes that name no device here\n");
    header = true;
    fmt::print("  RMRR #{} {} {}: {}\n", s.rmrr_index, dmar::scope_type_name(s.scope.type), dmar::format_path(s.scope), s.match.problem);
  }
  if (!f.rmrr_log_lines.empty()) {
    fmt::print("\nKernel log\n");
    for (const auto& l : f.rmrr_log_lines) fmt::print("  {}\n", l);
  } else if (!f.kernel_log_readable) {
    fmt::print("\nKernel log: not readable (run as root to see the kernel's RMRR messages)\n");
  }
  fmt::print("\nVerdict: {}\nNext:    {}\n", c.summary, c.next);
}

Json facts_json(const host::Facts& f) {
  Json j = Json::object();
  auto opt_bool = [](const std::optional<bool>& b) { return b ? Json(*b) : Json(nullptr); };
  j.set("kernel_release", f.kernel_release);
  j.set("intel_iommu_options", Json::strings(f.intel_iommu_options));
  j.set("iommu_active", f.iommu_active());
  j.set("iommu_units", Json::strings(f.iommu_units));
  j.set("lockdown", f.lockdown ? Json(*f.lockdown) : Json(nullptr));
  j.set("secure_boot", opt_bool(f.secure_boot));
  j.set("config_livepatch", opt_bool(f.config_livepatch));
  j.set("config_intel_iommu", opt_bool(f.config_intel_iommu));
  j.set("proxmox_kernel", f.proxmox_kernel);
  j.set("proxmox_knows_relax_rmrr", f.proxmox_knows_relax_rmrr);
  j.set("relax_rmrr_on_cmdline", f.relax_rmrr_on_cmdline);
  j.set("kernel_log_readable", f.kernel_log_readable);
  j.set("rmrr_log_lines", Json::strings(f.rmrr_log_lines));
  j.set("livepatches", Json::array_of(f.livepatches, [](const host::LivepatchState& lp) { return host::to_json(lp); }));
  return j;
}

int run_doctor(const DoctorOptions& o) {
  fs::path root = o.root;
  host::Facts facts = host::read_facts(root);
  if (facts.livepatch_error) return report_error(*facts.livepatch_error);
  fs::path dmar_path = o.dmar_file.empty() ? root / "sys/firmware/acpi/tables/DMAR" : fs::path(o.dmar_file);

  std::optional<dmar::Table> table;
  std::string dmar_note;
  auto decoded = dmar::decode_file(dmar_path, {.require_valid_checksum = false});
  if (decoded) {
    table = std::move(*decoded);
    if (!table->checksum_ok) dmar_note = "checksum is wrong (the kernel uses the table anyway)";
  } else if (!o.dmar_file.empty() || decoded.error().code != ExitCode::missing) {
    // Only the firmware's own table may be absent (no VT-d); a table the user named must be read.
    Error e = decoded.error();
    if (e.code == ExitCode::environment) e.hint = "the firmware tables are readable by root only: run sudo relax-rmrr doctor";
    return report_error(e);
  }

  auto topo = pci::read_topology(root / "sys");
  if (!topo) return report_error(topo.error());
  auto selection = selection_in_force(facts, o.patch_name);
  if (!selection) return report_error(selection.error());
  rmrr::Map map;
  if (table) map = rmrr::map_devices(*table, *topo, relax_in_force(facts, o.patch_name), *selection);
  BootFacts boot = read_boot_facts(root, facts.kernel_release, o.patch_name);
  Conclusion c = conclude(facts, table ? &*table : nullptr, map, *topo, boot, o);

  if (o.json) {
    Json j = Json::object();
    j.set("host", facts_json(facts));
    Json d = Json::object();
    d.set("present", table.has_value());
    if (table) {
      d.set("oem_id", table->oem_id);
      d.set("oem_table_id", table->oem_table_id);
      d.set("checksum_ok", table->checksum_ok);
      d.set("rmrr_count", table->rmrrs.size());
    }
    j.set("dmar", std::move(d));
    Json b = Json::object();
    b.set("consent", boot.consent);
    b.set("module", boot.module ? Json(boot.module->string()) : Json(nullptr));
    Json records = Json::array();
    for (const auto& r : boot.dkms) records.push(lifecycle::to_json(r));
    b.set("dkms", std::move(records));
    j.set("boot", std::move(b));
    Json m = rmrr::to_json(map, *topo);
    j.set("devices", m["devices"]);
    j.set("scopes", m["scopes"]);
    Json v = Json::object();
    v.set("code", c.code);
    v.set("summary", c.summary);
    v.set("next", c.next);
    j.set("verdict", std::move(v));
    print_json(j);
  } else {
    print_human(facts, table ? &*table : nullptr, dmar_note, map, *topo, boot, c, o);
  }
  return c.exit_code;
}

}  // namespace

Command add_doctor_command(CLI::App& root) {
  auto opts = std::make_shared<DoctorOptions>();
  CLI::App* app = root.add_subcommand("doctor", "Tell which devices are RMRR-locked, why, and what to do next");
  app->add_flag("--json", opts->json, "Print the diagnosis as JSON");
  app->add_option("--root", opts->root, "Read the host below DIR (DIR/sys, DIR/proc, DIR/dev/kmsg); for tests and rescue shells")
      ->check(CLI::ExistingDirectory);
  app->add_option("--dmar", opts->dmar_file, "Use this raw DMAR table instead of the firmware's");
  app->add_option("--name", opts->patch_name, "Name of the relax-rmrr livepatch to look for")
      ->capture_default_str()
      ->check(module_name_check());
  app->footer(
      "Exit codes: 0 nothing RMRR-locked stands in the way, 1 locked devices or IOMMU off, 2 malformed DMAR table,\n"
      "5 not readable (run as root).");
  return {app, [opts] { return run_doctor(*opts); }};
}

}  // namespace rr::cli
