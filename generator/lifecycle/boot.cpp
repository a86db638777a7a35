#include "lifecycle/boot.h"

#include "common/atomic_file.h"
#include "common/file.h"
#include "common/names.h"
#include "lifecycle/module_location.h"

#include <algorithm>

namespace rr::lifecycle {

namespace fs = std::filesystem;

namespace {

constexpr size_t kSmallFile = 64 * 1024;  // consent and status files are a few lines

bool regular_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

bool plain_release(std::string_view r) { return check_kernel_release("release", r).ok(); }

}  // namespace

fs::path consent_file(const fs::path& root) { return root / "etc/relax-rmrr/consent"; }

bool consent_given(const fs::path& root) {
  fs::path f = consent_file(root);
  if (!regular_file(f)) return false;
  auto text = read_file_text(f, kSmallFile);
  if (!text) return false;
  for (const auto& line : split_lines(*text))
    if (trim(line) == "yes") return true;
  return false;
}

Status write_consent(const fs::path& root) {
  std::error_code ec;
  fs::create_directories(consent_file(root).parent_path(), ec);
  if (ec) return make_error(ExitCode::environment, "cannot create {}: {}", consent_file(root).parent_path().string(), ec.message());
  return write_file_atomically(consent_file(root),
                               "# relax-rmrr: the administrator agreed that the relax-rmrr livepatch may load at boot\n"
                               "# (it makes every RMRR of the devices it covers relaxable). Remove this file, answer no in\n"
                               "# `dpkg-reconfigure relax-rmrr`, or run `relax-rmrr uninstall` to withdraw.\n"
                               "yes\n");
}

Status withdraw_consent(const fs::path& root) {
  std::error_code ec;
  fs::remove(consent_file(root), ec);
  if (ec) return make_error(ExitCode::environment, "cannot remove {}: {}", consent_file(root).string(), ec.message());
  return ok_status();
}

std::vector<fs::path> module_candidates(const fs::path& root, const std::string& release, const std::string& name) {
  std::vector<fs::path> out;
  if (!plain_release(release)) return out;
  for (const char* sub : kModuleSubdirs)
    for (const char* ext : {".ko", ".ko.xz", ".ko.zst", ".ko.gz"}) out.push_back(root / "lib/modules" / release / sub / (name + ext));
  return out;
}

std::optional<fs::path> find_installed_module(const fs::path& root, const std::string& release, const std::string& name) {
  for (const auto& c : module_candidates(root, release, name))
    if (regular_file(c)) return c;
  return std::nullopt;
}

fs::path dkms_status_dir(const fs::path& root) { return root / "var/lib/relax-rmrr/dkms"; }

std::optional<DkmsRecord> read_dkms_record(const fs::path& root, const std::string& release) {
  if (!plain_release(release)) return std::nullopt;
  fs::path f = dkms_status_dir(root) / (release + ".status");
  if (!regular_file(f)) return std::nullopt;
  auto text = read_file_text(f, kSmallFile);
  if (!text) return std::nullopt;
  DkmsRecord r;
  r.release = release;
  for (const auto& line : split_lines(*text)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "status") r.status = value;
    else if (key == "reason") r.reason = value;
    else if (key == "hint") r.hint = value;
    else if (key == "time") r.time = value;
    else if (key == "log") r.log = value;
  }
  static const char* kKnown[] = {"installed", "failed", "skipped", "waiting-headers"};
  if (std::find(std::begin(kKnown), std::end(kKnown), r.status) == std::end(kKnown)) return std::nullopt;
  return r;
}

std::vector<DkmsRecord> read_dkms_records(const fs::path& root) {
  std::vector<DkmsRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dkms_status_dir(root), ec)) {
    std::string n = e.path().filename().string();
    if (!n.ends_with(".status")) continue;
    if (auto r = read_dkms_record(root, n.substr(0, n.size() - 7))) out.push_back(std::move(*r));
  }
  std::sort(out.begin(), out.end(), [](const DkmsRecord& a, const DkmsRecord& b) { return a.release < b.release; });
  return out;
}

Json to_json(const DkmsRecord& r) {
  Json j = Json::object();
  j.set("release", r.release);
  j.set("status", r.status);
  j.set("reason", r.reason);
  j.set("hint", r.hint);
  j.set("time", r.time);
  j.set("log", r.log);
  return j;
}

BootReport boot(const Env& env, const std::string& name, const LoadOptions& options) {
  BootReport r;
  r.release = running_release(env);
  if (!consent_given(env.root)) {
    r.action = "no-consent";
    r.message = fmt::format(
        "not loading {}: the administrator has not agreed yet (answer yes in `dpkg-reconfigure "
        "relax-rmrr`, or run `relax-rmrr install`)",
        name);
    return r;
  }
  auto module = find_installed_module(env.root, r.release, name);
  if (!module) {
    r.action = "no-module";
    r.message = fmt::format("no {} module for kernel {}: RMRR-locked devices stay locked under this kernel", name, r.release);
    if (auto rec = read_dkms_record(env.root, r.release); rec && rec->status != "installed") {
      r.notes.push_back(fmt::format("DKMS {} for {}: {}", rec->status, r.release, rec->reason));
      if (!rec->hint.empty()) r.notes.push_back("to fix: " + rec->hint);
    } else {
      r.notes.push_back(
          fmt::format("build it: dkms install relax-rmrr/<version> -k {} (package relax-rmrr-dkms), or "
                      "relax-rmrr build && relax-rmrr install relax_rmrr.ko; `relax-rmrr doctor` says what is missing",
                      r.release));
    }
    return r;
  }
  r.module = module->string();
  LoadOptions lo = options;
  lo.expected_name = name;
  auto loaded = load(env, *module, lo);
  if (!loaded) {
    r.action = "failed";
    r.message = fmt::format("could not load {}: {}", r.module, loaded.error().message);
    if (!loaded.error().hint.empty()) r.notes.push_back(loaded.error().hint);
    return r;
  }
  r.action = loaded->action == "already-loaded" ? "already-loaded" : "loaded";
  r.message = fmt::format("{} {} for kernel {} ({:.1f} s): RMRRs are relaxable", r.action == "loaded" ? "loaded" : "already had", name,
                          r.release, loaded->transition.seconds);
  r.notes = loaded->notes;
  return r;
}

Json to_json(const BootReport& r) {
  Json j = Json::object();
  j.set("action", r.action);
  j.set("release", r.release);
  j.set("module", r.module);
  j.set("message", r.message);
  j.set("notes", Json::strings(r.notes));
  return j;
}

}  // namespace rr::lifecycle
