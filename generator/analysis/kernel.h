// The analysis of one target kernel: load what can be found (symbols, image, BTF, config, kbuild tree), then
// decide the era and the patch targets from symbols and BTF (never from the version number), and list what is
// missing with how to get it. `relax-rmrr analyze` prints KernelFacts; later stages use LoadedKernel.
#pragma once

#include "analysis/btf.h"
#include "analysis/bzimage.h"
#include "analysis/kbuild.h"
#include "analysis/kconfig.h"
#include "analysis/symbols.h"
#include "common/json.h"
#include "common/result.h"
#include "elf/elf_file.h"

#include <filesystem>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace rr::analysis {

// The intel driver's functions the era and the patch targets are decided by.
inline constexpr std::string_view kAttachFunction = "intel_iommu_attach_device";
inline constexpr std::string_view kResvRegionsFunction = "intel_iommu_get_resv_regions";

enum class Era {
  unknown,
  attach_check,  // 3.17 - 6.5: the intel driver refuses RMRR devices in its attach path
  require_direct,  // 6.6 on: the IOMMU core enforces dev->iommu->require_direct
};
std::string_view era_name(Era era);

struct AnalyzeInputs {
  std::optional<std::string> release;
  std::optional<std::filesystem::path> kallsyms, system_map, vmlinux, image, btf, config, kbuild;
  // Prefix for the default locations (/proc, /sys, /boot, /lib/modules); tests point it at a fake tree.
  std::filesystem::path root = "/";
  // The release of the kernel running here (default: uname -r). The target is the running kernel unless a
  // symbol source or image is named, or --kernel-release names another release.
  std::optional<std::string> running_release;
  std::string local_cc = "gcc";
  DecompressOptions decompress;
};

struct MissingItem {
  std::string what;
  std::string how;
  bool blocking = false;  // a livepatch cannot be built or trusted without it
  bool kbuild = false;  // the kbuild tree: needed to build, not to check objects built elsewhere
};

// Everything found for the target, kept for the later stages (klp builder, diff).
struct LoadedKernel {
  std::string release;
  std::string release_from;
  bool running = false;
  std::optional<SymbolTable> symbols;
  std::optional<elf::ElfFile> image;  // the vmlinux ELF (from vmlinuz or --vmlinux)
  std::string image_path;
  Compression compression = Compression::none;
  std::optional<SetupHeader> setup;
  std::optional<Btf> btf;
  std::optional<KernelConfig> config;
  std::optional<KbuildTree> kbuild;
  std::optional<ModuleSymvers> symvers;
  std::optional<std::unordered_set<std::string>> traceable;  // available_filter_functions (vmlinux names)
  std::string traceable_from;
  std::vector<MissingItem> missing;
  std::vector<std::string> notes;
  bool inconsistent = false;  // the inputs describe different kernels (e.g. an image of another release)
};

// Explicitly named inputs that cannot be read or parsed are Errors; defaults that are absent become MissingItems.
Result<LoadedKernel> load_kernel(const AnalyzeInputs& inputs);

// The part of load_kernel() that compiling for the target needs: its release, kbuild tree and configuration,
// found as load_kernel() finds them but without decompressing the image, reading symbols, BTF or the contents of
// Module.symvers (milliseconds, not seconds), so that a caller can check check_build_prerequisites() and compile
// while load_kernel() runs on another thread. nullopt when only load_kernel() can tell the release (from a --vmlinux
// ELF, an image without a version string in its setup header, or the kbuild tree); Errors as load_kernel()'s
// for a named kbuild tree or config that cannot be read.
Result<std::optional<LoadedKernel>> load_build_inputs(const AnalyzeInputs& inputs);

// The era from what symbols and BTF say; `reason` explains the decision for the report.
Era decide_era(const SymbolTable* symbols, const BtfFacts* btf, std::string& reason);
// Names (vmlinux only) from available_filter_functions text ("name" or "name [module]" lines).
std::unordered_set<std::string> parse_filter_functions(std::string_view text);
// kallsyms _text minus the image's link-time _text (or .text start): the KASLR slide of the dump's boot.
std::optional<int64_t> kaslr_offset(const SymbolTable& symbols, const elf::ElfFile& image);
// What building (or verifying) a livepatch needs beyond what load_kernel() reports as blocking, checked before
// any source is extracted or compiled: a kernel that can load livepatches (CONFIG_LIVEPATCH=y) and is not built
// with Clang LTO (its code is optimised across files at link time: no single-file compile reproduces it), and a
// kbuild tree of the target's own release with its Module.symvers. The first problem is the Error (missing,
// or refused for LTO) with what to do about it.
Status check_build_prerequisites(const LoadedKernel& kernel);

}  // namespace rr::analysis
