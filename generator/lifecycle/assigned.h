// Which RMRR devices a VM (or any VFIO user) holds right now. Disabling the patch under such a device is
// unsafe before Linux 6.6: when VFIO lets go, the restored RMRR veto makes the kernel refuse the device its
// blocking domain, the group stays on the VM's domain while VFIO frees it, and the driver warns about
// freeing a domain in use. (Seen in QEMU on Debian 6.1; 6.6+ kernels keep such a device relaxed instead.)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace rr::lifecycle {

struct AssignedDevice {
  std::string bdf;
  unsigned iommu_group = 0;
  std::vector<std::string> holders;  // "pid 1234 (qemu-system-x86)"
};

// RMRR-covered PCI devices whose VFIO group or VFIO device file is open, read below `root` (/, or a fake
// host in tests). Empty when there is no DMAR table or nothing is held.
std::vector<AssignedDevice> rmrr_devices_in_use(const std::filesystem::path& root);

}  // namespace rr::lifecycle
