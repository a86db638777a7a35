// Persistence and distribution of a built livepatch: install/uninstall under /lib/modules with a systemd unit,
// a .deb for one kernel build, and a DKMS source tree. Files are rendered from templates/ (klp/templates.h);
// every path is below a root so tests work in a temporary directory.
#pragma once

#include "common/result.h"
#include "host/device_selection.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

// relax-rmrr.service for the default name, relax-rmrr-<name>.service otherwise.
std::string unit_name(const std::string& module_name);

struct UnitRequest {
  std::string module_name = "relax_rmrr";
  std::string module_path;  // may use %v (the running kernel's release, a systemd specifier)
  std::string only_release;  // non-empty: ConditionKernelVersion= that release
  std::string tool_version;
};
Result<std::string> render_unit(const UnitRequest& request);

struct InstallRequest {
  std::filesystem::path root = "/";
  std::filesystem::path module;  // the .ko built by relax-rmrr build
  std::string subdir = "updates";  // or "extra"
  std::string release;  // default: the module's vermagic release
  bool depmod = true;
  bool enable = true;  // link the unit into sysinit.target.wants
  std::string tool_version;
  // --devices: persisted (lifecycle/selection.h) for the unit's loads; refused for a module without the parameter.
  std::optional<host::DeviceSelection> devices;
};
struct InstallReport {
  std::string release;
  std::string module_name;
  std::vector<std::filesystem::path> written;  // or removed, for uninstall
  std::vector<std::string> notes;
};
Result<InstallReport> install(const InstallRequest& request);

struct UninstallRequest {
  std::filesystem::path root = "/";
  std::string module_name = "relax_rmrr";
  std::string release;  // empty: every release that has the module
  bool depmod = true;
};
Result<InstallReport> uninstall(const UninstallRequest& request);

struct DebRequest {
  std::filesystem::path module;
  std::filesystem::path output_dir = ".";
  std::string kernel_build;  // text of /proc/version that identifies the build ("#1 SMP ... Debian 6.1.192-2 (...)")
  std::string version;  // package version; default: the module's relax_rmrr_version
  std::string maintainer = "relax-rmrr <root@localhost>";
  std::string tool_version;
};
// The control files and the unit, by file name (control, preinst, postinst, prerm, postrm, unit name): exposed
// for tests.
struct DebFiles {
  std::string package, version, release, unit, module_name;
  std::map<std::string, std::string> files;
};
Result<DebFiles> render_deb(const DebRequest& request);
Result<std::filesystem::path> build_deb(const DebRequest& request);

// The build identity of the running kernel in /proc/version: from " #" to the end ("#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2025-...)").
std::string kernel_build_from_proc_version(const std::string& proc_version);

struct DkmsRequest {
  std::filesystem::path output_dir;  // default: /usr/src/relax-rmrr-<version>
  std::string version;  // default: the tool's version
  std::string module_name = "relax_rmrr";
  std::string tool_version;
  // AUTOINSTALL in dkms.conf: DKMS's own kernel hooks build the module for each new kernel, and on Debian 12 a
  // failed build then fails that kernel's installation. Off: the relax-rmrr-dkms package's hook builds instead.
  bool autoinstall = true;
};
Result<std::filesystem::path> write_dkms_tree(const DkmsRequest& request);

}  // namespace rr::lifecycle
