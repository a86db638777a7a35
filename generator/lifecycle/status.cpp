#include "lifecycle/status.h"

#include "lifecycle/selection.h"

#include "lifecycle/module_location.h"

namespace fs = std::filesystem;

namespace rr::lifecycle {

using host::find_livepatch;
using host::find_loaded_module;
using host::list_livepatches;
using host::lockdown_mode;
using host::pending_tasks;
using host::signatures_enforced;

Result<PatchStatus> read_status(const Env& env, const std::string& name, const fs::path& file) {
  PatchStatus s;
  s.name = name;
  s.running_release = running_release(env);
  RR_ASSIGN(s.module, find_loaded_module(env.sys(), name));
  RR_ASSIGN(s.patch, find_livepatch(env.sys(), name));
  RR_ASSIGN(auto patches, list_livepatches(env.sys()));
  for (auto& lp : patches)
    if (lp.name != name) s.other_patches.push_back(lp);
  s.lockdown = lockdown_mode(env.sys());
  s.sig_enforce = signatures_enforced(env.sys());
  std::vector<fs::path> candidates = file.empty() ? module_file_candidates(env, name) : std::vector<fs::path>{file};
  for (const auto& c : candidates) {
    std::error_code ec;
    if (!fs::exists(c, ec)) continue;
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
  RR_ASSIGN(s.module_devices, read_module_selection(env, name));
  RR_ASSIGN(s.persisted_devices, read_persisted_selection(env.root));
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
  // "all" or the list; null for a module without the parameter (it relaxes every device) or none loaded.
  auto selection_json = [](const host::DeviceSelection& d) { return d.all() ? Json("all") : Json::strings(d.addresses); };
  Json devices = Json::object();
  devices.set("module", s.module_devices ? selection_json(*s.module_devices) : Json());
  devices.set("persisted", selection_json(s.persisted_devices));
  j.set("devices", std::move(devices));
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
