// disable/unload refuse while a VFIO user holds an RMRR device (lifecycle/assigned.h explains why).
#include "lifecycle/assigned.h"
#include "fake_host.h"

#include <gtest/gtest.h>

using namespace rr;

namespace {

void build_host_with_vfio_nic(test::FakeHost& h) {
  h.set_dmar_fixture("hp-proliant-dl360-g7.dat");
  h.enable_iommu();
  // The Smart Array behind root port 00:01.0 is in the RMRR; bound to vfio-pci, IOMMU group 32.
  h.add_pci({.bdf = "00:01.0", .class_code = 0x060400, .secondary = 5, .subordinate = 5, .group = 1});
  h.add_pci({.bdf = "05:00.0", .vendor = 0x103c, .device = 0x323a, .class_code = 0x010400, .group = 32, .driver = "vfio-pci"}, "00:01.0");
  h.add_livepatch("relax_rmrr", true);
}

void hold(test::FakeHost& h, int pid, const std::string& comm, const std::string& device) {
  h.write(fmt::format("proc/{}/comm", pid), comm + "\n");
  std::filesystem::create_directories(h.root() / fmt::format("proc/{}/fd", pid));
  std::filesystem::create_symlink(device, h.root() / fmt::format("proc/{}/fd/7", pid));
}

}  // namespace

TEST(Assigned, FindsTheVmHoldingAnRmrrDevice) {
  test::FakeHost h;
  build_host_with_vfio_nic(h);
  EXPECT_TRUE(lifecycle::rmrr_devices_in_use(h.root()).empty()) << "bound to vfio-pci but not opened: not held";
  hold(h, 4242, "qemu-system-x86", "/dev/vfio/32");
  hold(h, 77, "bash", "/dev/null");
  auto held = lifecycle::rmrr_devices_in_use(h.root());
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].bdf, "0000:05:00.0");
  EXPECT_EQ(held[0].iommu_group, 32u);
  ASSERT_EQ(held[0].holders.size(), 1u);
  EXPECT_EQ(held[0].holders[0], "pid 4242 (qemu-system-x86)");
}

TEST(Assigned, DisableAndUnloadRefuseUnlessForced) {
  test::FakeHost h;
  build_host_with_vfio_nic(h);
  hold(h, 4242, "qemu-system-x86", "/dev/vfio/32");
  for (const char* cmd : {"disable", "unload"}) {
    auto r = test::run_command(fmt::format("{} {} --root {} -q", RELAX_RMRR_BINARY, cmd, h.root().string()));
    EXPECT_EQ(r.exit_code, 4) << cmd << ": " << r.output;
    EXPECT_NE(r.output.find("0000:05:00.0"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("qemu-system-x86"), std::string::npos) << r.output;
  }
  auto forced = test::run_command(fmt::format("{} disable --force --root {} -q", RELAX_RMRR_BINARY, h.root().string()));
  EXPECT_NE(forced.exit_code, 4) << forced.output;
  EXPECT_NE(forced.output.find("--force"), std::string::npos) << forced.output;
}
