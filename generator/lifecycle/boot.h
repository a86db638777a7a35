// What happens at boot and at kernel installation on a packaged host: the administrator's consent (relaxing RMRRs
// takes away a protection the kernel applies on purpose, so nothing is loaded before a yes), the module built
// for the booting kernel (by DKMS or `relax-rmrr install`), what the DKMS kernel hook recorded when it built (or
// could not build) that module, and `relax-rmrr boot`, which ties them together and never fails the boot.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "lifecycle/lifecycle.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

// <root>/etc/relax-rmrr/consent: "yes" once the administrator agreed (debconf question or `relax-rmrr install`).
std::filesystem::path consent_file(const std::filesystem::path& root);
bool consent_given(const std::filesystem::path& root);
Status write_consent(const std::filesystem::path& root);
Status withdraw_consent(const std::filesystem::path& root);

// The module files for `release`, in the order they are tried: <root>/lib/modules/R/{updates,extra,updates/dkms}/
// NAME.ko, each also compressed (.ko.xz, .ko.zst, .ko.gz: DKMS compresses like the kernel's own modules).
std::vector<std::filesystem::path> module_candidates(const std::filesystem::path& root, const std::string& release,
                                                     const std::string& name);
std::optional<std::filesystem::path> find_installed_module(const std::filesystem::path& root, const std::string& release,
                                                           const std::string& name);

// What the DKMS kernel hook recorded for one kernel release (<root>/var/lib/relax-rmrr/dkms/R.status).
struct DkmsRecord {
  std::string release;
  std::string status;  // installed, failed, skipped, waiting-headers
  std::string reason;  // why, when not installed
  std::string hint;  // what to run or install
  std::string time;
  std::string log;  // DKMS's make.log
};
std::filesystem::path dkms_status_dir(const std::filesystem::path& root);
std::optional<DkmsRecord> read_dkms_record(const std::filesystem::path& root, const std::string& release);
std::vector<DkmsRecord> read_dkms_records(const std::filesystem::path& root);
Json to_json(const DkmsRecord& r);

struct BootReport {
  std::string action;  // loaded, already-loaded, no-consent, no-module, failed
  std::string release;
  std::string module;  // the file loaded or tried
  std::string message;  // one line for the journal
  std::vector<std::string> notes;
};
// At boot: with consent, load the module built for the running kernel and wait for the transition. Every outcome is
// a report (never an Error): the unit must not fail the boot, it logs why and what to run instead.
BootReport boot(const Env& env, const std::string& name, const LoadOptions& options);
Json to_json(const BootReport& r);

}  // namespace rr::lifecycle
