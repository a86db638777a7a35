// The IBT guard's view of the real Debian 6.12 kernel (ctest label `kernel`; IBT on): its image's seal list is
// read, every entry is an ENDBR64 in the image, and the functions the 6.12 livepatch replaces or refers to
// resolve, with the replaced intel_iommu_get_resv_regions (called through iommu_ops) left unsealed.
// Inputs: kernel.env from `tests/setup/kernel.sh debian-6.12` (VMLINUZ, CONFIG, KALLSYMS, RELEASE).
#include "analysis/kernel.h"
#include "kernel_env.h"
#include "klp/ibt_guard.h"

#include <gtest/gtest.h>

#include <cstring>

namespace fs = std::filesystem;
using namespace rr;

namespace {

const analysis::LoadedKernel& kernel612() {
  static std::optional<analysis::LoadedKernel> k = []() -> std::optional<analysis::LoadedKernel> {
    auto env = test::read_kernel_env("debian-6.12");
    for (const char* key : {"RELEASE", "VMLINUZ", "CONFIG", "KALLSYMS"})
      if (env[key].empty()) return std::nullopt;
    analysis::AnalyzeInputs in;
    in.release = env["RELEASE"];
    in.kallsyms = env["KALLSYMS"];
    in.image = env["VMLINUZ"];
    in.config = env["CONFIG"];
    in.root = "/nonexistent";  // nothing from this host
    auto loaded = analysis::load_kernel(in);
    if (!loaded) return std::nullopt;
    return std::move(*loaded);
  }();
  if (!k) {
    static analysis::LoadedKernel none;
    return none;
  }
  return *k;
}

}  // namespace

TEST(Ibt612, SealListIsReadAndEveryEntryIsAnEndbr) {
  const auto& k = kernel612();
  ASSERT_TRUE(k.image && k.symbols && k.config) << test::kernel_env_setup_hint("debian-6.12");
  auto t = klp::ibt_target(k);
  ASSERT_TRUE(t.enabled) << t.enabled_from;
  ASSERT_TRUE(t.sealed.has_value()) << (t.notes.empty() ? "" : t.notes[0]);
  EXPECT_GT(t.sealed->size(), 1000u);
  size_t endbr = 0;
  for (uint64_t a : *t.sealed)
    if (auto b = k.image->bytes_at(a, 4); b && std::memcmp(b->data(), klp::kEndbr64, 4) == 0) ++endbr;
  EXPECT_EQ(endbr, t.sealed->size());
  EXPECT_NE(t.slide, 0);  // a kallsyms dump taken under KASLR
}

TEST(Ibt612, LivepatchTargetsResolveAndTheReplacedOpIsNotSealed) {
  const auto& k = kernel612();
  ASSERT_TRUE(k.image && k.symbols && k.config) << test::kernel_env_setup_hint("debian-6.12");
  auto t = klp::ibt_target(k);
  ASSERT_TRUE(t.sealed.has_value());
  for (const char* name : {"intel_iommu_get_resv_regions", "iommu_get_resv_regions", "iommu_put_resv_regions", "pci_get_device"}) {
    auto found = k.symbols->find_vmlinux(name);
    ASSERT_EQ(found.size(), 1u) << name;
    ASSERT_TRUE(found[0]->is_function()) << name;
    uint64_t link = found[0]->address - static_cast<uint64_t>(t.slide);
    auto b = k.image->bytes_at(link, 4);
    ASSERT_TRUE(b.has_value()) << name;
    // Called through iommu_ops or exported: the kernel keeps their ENDBR.
    EXPECT_EQ(std::memcmp(b->data(), klp::kEndbr64, 4), 0) << name;
    EXPECT_EQ(t.sealed->count(link), 0u) << name << " is sealed";
  }
  // Some function of the driver is sealed: the list covers intel-iommu's code too.
  size_t sealed_in_driver = 0;
  for (const char* name : {"device_rmrr_is_relaxable", "device_is_rmrr_locked", "iommu_prepare_static_identity_mapping",
                           "dmar_find_matched_drhd_unit", "domain_context_mapping", "intel_iommu_init"})
    for (const auto* s : k.symbols->find_vmlinux(name))
      if (t.sealed->count(s->address - static_cast<uint64_t>(t.slide))) ++sealed_in_driver;
  EXPECT_GT(sealed_in_driver, 0u);
}
