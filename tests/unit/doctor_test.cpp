// `relax-rmrr doctor --root` against fake hosts: real DMAR tables and PCI trees transcribed from real machines.
#include "fake_host.h"
#include "host/dmar.h"
#include "host/host.h"
#include "test_util.h"

#include <gtest/gtest.h>

using namespace rr;
using rr::test::FakeHost;
using rr::test::FakePci;

namespace {

struct DoctorRun {
  int exit_code;
  Json json;
  std::string text;
};

DoctorRun doctor(const FakeHost& host, const std::string& extra = "") {
  auto j = test::run_command(fmt::format("{} doctor --json --root {} {} 2>/dev/null", RELAX_RMRR_BINARY, host.root().string(), extra));
  auto h = test::run_command(fmt::format("{} doctor --root {} {}", RELAX_RMRR_BINARY, host.root().string(), extra));
  auto parsed = Json::parse(j.output);
  EXPECT_TRUE(parsed.ok()) << j.output;
  EXPECT_EQ(j.exit_code, h.exit_code);
  if (std::getenv("RELAX_RMRR_TEST_VERBOSE")) fmt::print("{}\n", h.output);
  return {j.exit_code, parsed ? *parsed : Json(), h.output};
}

const Json* device(const Json& report, const std::string& bdf) {
  for (const auto& d : report["devices"].as_array())
    if (d["bdf"].as_string() == bdf) return &d;
  return nullptr;
}

std::string lspci_fixture(const std::string& name) {
  auto t = read_file_text(std::filesystem::path(RELAX_RMRR_FIXTURES) / "dmar" / name);
  EXPECT_TRUE(t.ok());
  return t ? *t : "";
}

void build_dl360(FakeHost& h) {
  h.set_dmar_fixture("hp-proliant-dl360-g7.dat");
  h.add_pci_from_lspci(lspci_fixture("hp-proliant-dl360-g7.lspci"));
  h.enable_iommu();
  h.set_cmdline("BOOT_IMAGE=/vmlinuz intel_iommu=on iommu=pt");
}

}  // namespace

TEST(Doctor, HpDl360G7LocksTheRaidControllerAndSlotNics) {
  FakeHost h;
  build_dl360(h);
  h.set_kmsg({"DMAR: RMRR base: 0x000000df7e6000 end: 0x000000df7e7fff",
              "vfio-pci 0000:06:00.0: DMAR: Device is ineligible for IOMMU domain attach due to platform RMRR requirement.  Contact your "
              "platform vendor.",
              "e1000e: unrelated line"});
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "locked");
  // Smart Array P410i behind root port 00:01.0 (scope 01.0/00.0), iLO behind 00:1c.4, the X540 NIC in slot 1 behind 00:09.0.
  for (const char* bdf : {"0000:05:00.0", "0000:02:00.0", "0000:02:00.2", "0000:06:00.0"}) {
    const Json* d = device(r.json, bdf);
    ASSERT_NE(d, nullptr) << bdf;
    EXPECT_EQ((*d)["verdict"].as_string(), "locked") << bdf;
  }
  EXPECT_EQ((*device(r.json, "0000:05:00.0"))["iommu_group"].as_uint(), 32u);
  EXPECT_EQ((*device(r.json, "0000:05:00.0"))["regions"][0]["base"].as_uint(), 0xdf61e000u);
  // iLO's virtual USB controller and the chipset UHCI/EHCI controllers are USB: the kernel's own exception.
  for (const char* bdf : {"0000:02:00.4", "0000:00:1d.0", "0000:00:1d.7"})
    EXPECT_EQ((*device(r.json, bdf))["verdict"].as_string(), "relaxable") << bdf;
  // The NIC behind root port 00:03.0 is not in the transcribed lspci: its scope resolves to nothing.
  bool unresolved = false;
  for (const auto& s : r.json["scopes"].as_array())
    if (s["resolved"].is_null() && s.find("problem")) unresolved = true;
  EXPECT_TRUE(unresolved);
  EXPECT_EQ(r.json["host"]["rmrr_log_lines"].size(), 2u);
  EXPECT_NE(r.text.find("relax-rmrr build"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("0000:05:00.0"), std::string::npos);
}

TEST(Doctor, AnEnabledRelaxRmrrLivepatchRelaxesThem) {
  FakeHost h;
  build_dl360(h);
  h.add_livepatch("relax_rmrr", true);
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "relaxed");
  EXPECT_EQ((*device(r.json, "0000:05:00.0"))["verdict"].as_string(), "relaxed");
  EXPECT_EQ((*device(r.json, "0000:00:1d.0"))["verdict"].as_string(), "relaxable");

  FakeHost disabled;
  build_dl360(disabled);
  disabled.add_livepatch("relax_rmrr", false);
  EXPECT_EQ(doctor(disabled).json["verdict"]["code"].as_string(), "locked");
}

// A mixed host: the NIC goes to a VM, the RAID controller the host boots from keeps its protection.
TEST(Doctor, TheDevicesSelectionRelaxesOnlyTheListedDevices) {
  FakeHost h;
  build_dl360(h);
  h.add_livepatch("relax_rmrr", true);
  h.write("sys/module/relax_rmrr/parameters/devices", "0000:06:00.0\n");
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "relaxed");
  EXPECT_EQ((*device(r.json, "0000:06:00.0"))["verdict"].as_string(), "relaxed");
  EXPECT_TRUE((*device(r.json, "0000:06:00.0"))["selected"].as_bool());
  EXPECT_EQ((*device(r.json, "0000:05:00.0"))["verdict"].as_string(), "locked");
  EXPECT_FALSE((*device(r.json, "0000:05:00.0"))["selected"].as_bool());
  EXPECT_TRUE((*device(r.json, "0000:00:1d.0"))["selected"].is_null()) << "the kernel relaxes USB itself";
  EXPECT_NE(r.json["verdict"]["summary"].as_string().find("0000:05:00.0"), std::string::npos);
  EXPECT_NE(r.text.find("locked, not selected"), std::string::npos) << r.text;

  // Not loaded: the persisted selection says which devices the next load relaxes.
  FakeHost next;
  build_dl360(next);
  next.write("etc/relax-rmrr/devices", "0000:06:00.0\n");
  auto n = doctor(next);
  EXPECT_EQ(n.exit_code, 1);
  EXPECT_EQ(n.json["verdict"]["code"].as_string(), "locked");
  EXPECT_NE(n.text.find("locked, selectable"), std::string::npos) << n.text;
  EXPECT_NE(n.text.find("locked, not selected"), std::string::npos) << n.text;
  EXPECT_EQ(n.json["verdict"]["summary"].as_string().find("1 device(s) are RMRR-locked"), 0u) << n.json["verdict"]["summary"].as_string();

  // A selection file that holds no list is an error, never "every device".
  next.write("etc/relax-rmrr/devices", "0000:zz:00.0\n");
  auto bad = test::run_command(fmt::format("{} doctor --json --root {} 2>/dev/null", RELAX_RMRR_BINARY, next.root().string()));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("etc/relax-rmrr/devices"), std::string::npos) << bad.output;
}

TEST(Doctor, UsbAndGraphicsOnlyHostHasNothingLocked) {
  FakeHost h;
  h.set_dmar_fixture("lenovo-thinkcentre-m93p.dat");
  h.enable_iommu();
  h.add_pci({.bdf = "00:02.0", .class_code = 0x030000, .group = 0, .driver = "i915"});
  h.add_pci({.bdf = "00:14.0", .class_code = 0x0c0330, .group = 1, .driver = "xhci_hcd"});
  h.add_pci({.bdf = "00:1a.0", .class_code = 0x0c0320, .group = 2, .driver = "ehci-pci"});
  h.add_pci({.bdf = "00:1d.0", .class_code = 0x0c0320, .group = 3, .driver = "ehci-pci"});
  h.add_pci({.bdf = "00:19.0", .class_code = 0x020000, .group = 4, .driver = "e1000e"});
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "ok");
  EXPECT_EQ(r.json["devices"].size(), 4u);
  EXPECT_EQ(device(r.json, "0000:00:19.0"), nullptr) << "the NIC is in no RMRR scope";
}

TEST(Doctor, BridgeScopeLocksEverythingBelowTheBridge) {
  auto base = dmar::decode_file(std::filesystem::path(RELAX_RMRR_FIXTURES) / "dmar/hp-z220-cmt-workstation.dat");
  ASSERT_TRUE(base.ok());
  dmar::Table t = *base;
  t.rmrrs.clear();
  dmar::Rmrr r;
  r.base = 0xf0000;
  r.limit = 0xfffff;
  r.scopes.push_back(dmar::make_scope(dmar::ScopeType::bridge, 0, {{0x1c, 0}}));
  t.rmrrs.push_back(r);
  FakeHost h;
  h.set_dmar(dmar::encode(t));
  h.enable_iommu();
  h.add_pci({.bdf = "00:1c.0", .class_code = 0x060400, .secondary = 3, .subordinate = 4, .group = 7});
  h.add_pci({.bdf = "03:00.0", .class_code = 0x060400, .secondary = 4, .subordinate = 4, .group = 7}, "00:1c.0");
  h.add_pci({.bdf = "04:00.0", .class_code = 0x010400, .group = 7, .driver = "megaraid_sas"}, "03:00.0");
  h.add_pci({.bdf = "04:00.1", .class_code = 0x020000, .group = 7}, "03:00.0");
  h.add_pci({.bdf = "00:1f.0", .class_code = 0x060100, .group = 8});
  auto rep = doctor(h);
  EXPECT_EQ(rep.exit_code, 1);
  for (const char* bdf : {"0000:00:1c.0", "0000:03:00.0", "0000:04:00.0", "0000:04:00.1"}) {
    const Json* d = device(rep.json, bdf);
    ASSERT_NE(d, nullptr) << bdf;
    EXPECT_EQ((*d)["verdict"].as_string(), "locked");
  }
  EXPECT_TRUE((*device(rep.json, "0000:04:00.0"))["via_bridge_scope"].as_bool());
  EXPECT_EQ(device(rep.json, "0000:00:1f.0"), nullptr);
}

TEST(Doctor, BrokenPathScopeMatchesLikeTheKernelWorkaround) {
  FakeHost h;
  h.set_dmar_fixture("asus-strix-z270e-gaming.dat");
  h.enable_iommu();
  h.add_pci({.bdf = "00:1c.0", .class_code = 0x060400, .secondary = 5, .subordinate = 5, .group = 9});
  h.add_pci({.bdf = "00:1c.4", .class_code = 0x060400, .secondary = 6, .subordinate = 6, .group = 10});
  h.add_pci({.bdf = "05:00.0", .vendor = 0x1b21, .device = 0x2142, .class_code = 0x0c0330, .group = 9}, "00:1c.0");
  h.add_pci({.bdf = "06:00.0", .vendor = 0x1b21, .device = 0x2142, .class_code = 0x0c0330, .group = 10}, "00:1c.4");
  auto r = doctor(h);
  const Json* d = device(r.json, "0000:05:00.0");
  ASSERT_NE(d, nullptr) << r.json.dump(2);
  EXPECT_TRUE((*d)["broken_path"].as_bool());
  EXPECT_EQ((*d)["verdict"].as_string(), "relaxable");
  ASSERT_NE(device(r.json, "0000:06:00.0"), nullptr);
  EXPECT_NE(r.text.find("broken RMRR"), std::string::npos);
}

TEST(Doctor, NoDmarTableMeansNothingToDo) {
  FakeHost h;
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "no-dmar");
  EXPECT_FALSE(r.json["dmar"]["present"].as_bool());
}

TEST(Doctor, IommuNotEnabledIsSaidFirst) {
  FakeHost h;
  build_dl360(h);
  std::filesystem::remove_all(h.root() / "sys/class/iommu");
  h.set_cmdline("BOOT_IMAGE=/vmlinuz quiet");
  auto r = doctor(h);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.json["verdict"]["code"].as_string(), "iommu-off");
  EXPECT_NE(r.json["verdict"]["next"].as_string().find("intel_iommu=on"), std::string::npos);
  EXPECT_FALSE(r.json["host"]["iommu_active"].as_bool());

  h.set_cmdline("BOOT_IMAGE=/vmlinuz intel_iommu=off");
  auto off = doctor(h);
  EXPECT_NE(off.json["verdict"]["summary"].as_string().find("intel_iommu=off"), std::string::npos);
}

TEST(Doctor, ProxmoxKernelThatKnowsTheOptionIsToldSo) {
  FakeHost h;
  build_dl360(h);
  h.set_release("6.8.12-4-pve");
  auto r = doctor(h);
  EXPECT_TRUE(r.json["host"]["proxmox_knows_relax_rmrr"].as_bool());
  EXPECT_NE(r.json["verdict"]["next"].as_string().find("intel_iommu=relax_rmrr"), std::string::npos);

  h.set_cmdline("BOOT_IMAGE=/vmlinuz intel_iommu=on,relax_rmrr");
  auto relaxed = doctor(h);
  EXPECT_EQ(relaxed.json["verdict"]["code"].as_string(), "relaxed");
  EXPECT_EQ(relaxed.exit_code, 0);
}

TEST(Doctor, LockdownPointsToSigning) {
  FakeHost h;
  build_dl360(h);
  h.write("sys/kernel/security/lockdown", "none [integrity] confidentiality\n");
  auto r = doctor(h);
  EXPECT_EQ(r.json["host"]["lockdown"].as_string(), "integrity");
  EXPECT_NE(r.json["verdict"]["next"].as_string().find("--sign-key"), std::string::npos);
}

TEST(Doctor, MalformedFirmwareTableIsAnErrorNotAGuess) {
  FakeHost h;
  build_dl360(h);
  auto b = read_file_bytes(h.root() / "sys/firmware/acpi/tables/DMAR");
  ASSERT_TRUE(b.ok());
  b->resize(0x60);
  h.set_dmar(*b);
  auto r = test::run_command(fmt::format("{{ {} doctor --json --root {} 2>/dev/null; }}", RELAX_RMRR_BINARY, h.root().string()));
  EXPECT_EQ(r.exit_code, 2);
  // No verdict: stdout holds the error object alone, and it names the table.
  auto j = Json::parse(r.output);
  ASSERT_TRUE(j.ok()) << r.output;
  ASSERT_NE(j->find("error"), nullptr) << r.output;
  EXPECT_EQ(j->find("verdict"), nullptr) << r.output;
  EXPECT_NE((*j)["error"]["message"].as_string().find("DMAR"), std::string::npos) << r.output;
}

TEST(Proxmox, ReleaseComparison) {
  EXPECT_TRUE(host::proxmox_release_has_relax_rmrr("6.2.16-13-pve"));
  EXPECT_TRUE(host::proxmox_release_has_relax_rmrr("6.8.12-4-pve"));
  EXPECT_FALSE(host::proxmox_release_has_relax_rmrr("6.2.16-12-pve"));
  EXPECT_FALSE(host::proxmox_release_has_relax_rmrr("5.15.108-1-pve"));
  EXPECT_FALSE(host::proxmox_release_has_relax_rmrr("6.8.12-amd64"));
  EXPECT_FALSE(host::proxmox_release_has_relax_rmrr("garbage-pve"));
}

TEST(Doctor, ReadsTheKernelConfigAndSaysWhenLivepatchIsMissing) {
  FakeHost h;
  build_dl360(h);
  h.write("boot/config-6.1.0-56-amd64", "CONFIG_LIVEPATCH=y\nCONFIG_INTEL_IOMMU=y\n");
  auto r = doctor(h);
  EXPECT_TRUE(r.json["host"]["config_livepatch"].as_bool());
  EXPECT_TRUE(r.json["host"]["config_intel_iommu"].as_bool());
  EXPECT_NE(r.text.find("from /boot/config-6.1.0-56-amd64"), std::string::npos) << r.text;

  h.write("boot/config-6.1.0-56-amd64", "# CONFIG_LIVEPATCH is not set\nCONFIG_INTEL_IOMMU=y\n");
  auto no_lp = doctor(h);
  EXPECT_FALSE(no_lp.json["host"]["config_livepatch"].as_bool());
  EXPECT_NE(no_lp.json["verdict"]["next"].as_string().find("relax-rmrr patch"), std::string::npos);
  EXPECT_EQ(no_lp.exit_code, 1);
}
