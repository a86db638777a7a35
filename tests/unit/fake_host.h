// A fake host below a temporary directory, shaped like the real sysfs/procfs that `doctor --root` reads.
#pragma once

#include "host/dmar.h"
#include "host/pci.h"
#include "test_util.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <string>

namespace rr::test {

struct FakePci {
  std::string bdf;  // "00:1c.4" (segment 0) or "0000:00:1c.4"
  uint16_t vendor = 0x8086;
  uint16_t device = 0x1234;
  uint32_t class_code = 0x020000;
  std::optional<uint8_t> secondary, subordinate;  // set for bridges
  std::optional<unsigned> group;
  std::string driver;
};

class FakeHost {
 public:
  FakeHost() {
    mkdir("sys/bus/pci/devices");
    mkdir("sys/devices");
    mkdir("proc/sys/kernel");
    write("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");
    write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n");
  }

  const std::filesystem::path& root() const { return dir_.path(); }

  void write(const std::string& rel, const std::string& text) {
    auto p = root() / rel;
    std::filesystem::create_directories(p.parent_path());
    if (!write_file_text(p, text).ok()) std::abort();
  }
  void mkdir(const std::string& rel) { std::filesystem::create_directories(root() / rel); }

  void set_release(const std::string& r) { write("proc/sys/kernel/osrelease", r + "\n"); }
  void set_cmdline(const std::string& c) { write("proc/cmdline", c + "\n"); }
  void enable_iommu() { mkdir("sys/class/iommu/dmar0"); }
  void set_dmar(const Bytes& b) { write("sys/firmware/acpi/tables/DMAR", std::string(b.begin(), b.end())); }
  void set_dmar_fixture(const std::string& name) {
    auto b = read_file_bytes(std::filesystem::path(RELAX_RMRR_FIXTURES) / "dmar" / name);
    if (!b) std::abort();
    set_dmar(*b);
  }
  void add_livepatch(const std::string& name, bool enabled) {
    write("sys/kernel/livepatch/" + name + "/enabled", enabled ? "1\n" : "0\n");
    write("sys/kernel/livepatch/" + name + "/transition", "0\n");
  }
  void set_kmsg(const std::vector<std::string>& messages) {
    std::string text;
    for (size_t i = 0; i < messages.size(); ++i) text += fmt::format("6,{},{},-;{}\n", i, i * 1000, messages[i]);
    write("dev/kmsg", text);
  }

  // Adds a device below `parent` (a bdf added before, or "" for the root bus).
  void add_pci(FakePci d, const std::string& parent = "") {
    std::string bdf = d.bdf.size() == 7 ? "0000:" + d.bdf : d.bdf;
    std::filesystem::path dir = parent.empty() ? root() / "sys/devices/pci0000:00" / bdf : paths_.at(normal(parent)) / bdf;
    std::filesystem::create_directories(dir);
    paths_[bdf] = dir;
    auto put = [&](const char* name, const std::string& v) { (void)write_file_text(dir / name, v + "\n"); };
    put("vendor", fmt::format("{:#06x}", d.vendor));
    put("device", fmt::format("{:#06x}", d.device));
    put("class", fmt::format("{:#08x}", d.class_code));
    if (d.secondary) {
      put("secondary_bus_number", fmt::format("{}", *d.secondary));
      put("subordinate_bus_number", fmt::format("{}", d.subordinate.value_or(*d.secondary)));
    }
    if (d.group) {
      mkdir(fmt::format("sys/kernel/iommu_groups/{}/devices", *d.group));
      std::filesystem::create_directory_symlink(root() / fmt::format("sys/kernel/iommu_groups/{}", *d.group), dir / "iommu_group");
    }
    if (!d.driver.empty()) {
      mkdir("sys/bus/pci/drivers/" + d.driver);
      std::filesystem::create_directory_symlink(root() / "sys/bus/pci/drivers" / d.driver, dir / "driver");
    }
    std::filesystem::create_directory_symlink(dir, root() / "sys/bus/pci/devices" / bdf);
  }

  // Builds the PCI tree from an `lspci -vvnn` excerpt (header lines, "Bus:" and "IOMMU group:" lines).
  void add_pci_from_lspci(const std::string& text) {
    std::regex header(R"(^([0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*?\[([0-9a-f]{4})\]: .*\[([0-9a-f]{4}):([0-9a-f]{4})\](.*)$)");
    std::regex progif(R"(\(prog-if ([0-9a-f]{2}))");
    std::regex bus(R"(Bus: primary=([0-9a-f]{2}), secondary=([0-9a-f]{2}), subordinate=([0-9a-f]{2}))");
    std::regex group(R"(IOMMU group: (\d+))");
    std::vector<FakePci> devs;
    for (const auto& line : split_lines(text)) {
      std::smatch m;
      if (std::regex_search(line, m, header) && line[0] != '\t') {
        FakePci d;
        d.bdf = m[1];
        uint32_t cls = static_cast<uint32_t>(*parse_uint(m[2].str(), 16)) << 8;
        std::string rest = m[5];
        std::smatch p;
        if (std::regex_search(rest, p, progif)) cls |= static_cast<uint32_t>(*parse_uint(p[1].str(), 16));
        d.class_code = cls;
        d.vendor = static_cast<uint16_t>(*parse_uint(m[3].str(), 16));
        d.device = static_cast<uint16_t>(*parse_uint(m[4].str(), 16));
        devs.push_back(d);
      } else if (!devs.empty() && std::regex_search(line, m, bus)) {
        devs.back().secondary = static_cast<uint8_t>(*parse_uint(m[2].str(), 16));
        devs.back().subordinate = static_cast<uint8_t>(*parse_uint(m[3].str(), 16));
      } else if (!devs.empty() && std::regex_search(line, m, group)) {
        devs.back().group = static_cast<unsigned>(std::stoul(m[1]));
      }
    }
    // Parents first: a device's parent is the bridge with the narrowest bus range holding its bus.
    std::sort(devs.begin(), devs.end(), [](const FakePci& a, const FakePci& b) { return a.bdf < b.bdf; });
    for (const auto& d : devs) {
      int bus_no = static_cast<int>(*parse_uint(d.bdf.substr(0, 2), 16));
      std::string parent;
      int best = -1;
      for (const auto& b : devs) {
        if (!b.secondary || &b == &d) continue;
        if (bus_no >= *b.secondary && bus_no <= *b.subordinate && *b.secondary > best && bus_no != 0) {
          best = *b.secondary;
          parent = b.bdf;
        }
      }
      add_pci(d, parent);
    }
  }

 private:
  static std::string normal(const std::string& bdf) { return bdf.size() == 7 ? "0000:" + bdf : bdf; }
  TempDir dir_;
  std::map<std::string, std::filesystem::path> paths_;
};

}  // namespace rr::test
