// Facts about the host that decide whether a device can be passed through: kernel, IOMMU, boot options,
// lockdown, Secure Boot, messages the kernel already logged. Everything is read below a root directory so
// tests can build a fake host.
#pragma once

#include "host/livepatch_sysfs.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::host {

struct Facts {
  std::filesystem::path root;
  std::string kernel_release;
  std::string cmdline;
  std::vector<std::string> intel_iommu_options;  // values of every intel_iommu= on the command line
  bool iommu_enabled_on_cmdline = false;  // intel_iommu=on (or sm_on)
  bool iommu_disabled_on_cmdline = false;  // intel_iommu=off
  bool relax_rmrr_on_cmdline = false;  // intel_iommu=relax_rmrr (patched kernels, Proxmox)
  std::vector<std::string> iommu_units;  // /sys/class/iommu/*: active remapping units
  std::optional<std::string> lockdown;  // none, integrity, confidentiality; nullopt when not reported
  std::optional<bool> secure_boot;  // nullopt on BIOS boot or unreadable efivars
  bool proxmox_kernel = false;
  bool proxmox_knows_relax_rmrr = false;  // pve kernels from 6.2.16-13 carry the option
  std::optional<bool> config_livepatch;  // nullopt when no config could be read
  std::optional<bool> config_intel_iommu;
  std::string config_source;  // where the config came from
  bool kernel_log_readable = false;
  std::vector<std::string> rmrr_log_lines;  // the kernel's RMRR veto messages, and RMRR parse lines
  std::vector<host::LivepatchState> livepatches;
  std::optional<Error> livepatch_error;  // livepatch sysfs holds what no kernel writes: no verdict can rest on it

  bool iommu_active() const { return !iommu_units.empty(); }
};

Facts read_facts(const std::filesystem::path& root);

// "6.2.16-13-pve" -> true when the Proxmox patch with relax_rmrr is in (6.2.16-13 or later).
bool proxmox_release_has_relax_rmrr(const std::string& release);

// The two messages that mean "this device is RMRR-locked", across kernel eras.
bool is_rmrr_veto_message(std::string_view line);

}  // namespace rr::host
