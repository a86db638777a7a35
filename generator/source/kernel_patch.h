// Kernel source patches rendered from the transforms: the same edit the livepatch makes, as a file
// for people who build kernels.
//   full:   option_transform() -- the boot option intel_iommu=relax_rmrr, off by default (kernel-patch/).
//   kpatch: relax_transform()  -- always on, the exact edit `relax-rmrr build` compiles; no __init code and no
//           data added, line count kept (kpatch-build, and upstream scripts/livepatch/klp-build on 6.19+).
// Both are unified diffs for `patch -p1` at the kernel tree's top, produced from the user's own tree.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "source/option_transform.h"
#include "source/source.h"
#include "source/transform.h"

#include <filesystem>
#include <string>
#include <vector>

namespace rr::source {

enum class PatchFormat { full, kpatch };
std::string format_name(PatchFormat format);
Result<PatchFormat> parse_format(std::string_view name);

// The source layout/era a tree belongs to: "5.3-5.7" (drivers/iommu/intel-iommu.c); for
// drivers/iommu/intel/iommu.c "6.6+" when the IOMMU core (drivers/iommu/iommu.c) has require_direct, else
// "5.8-6.5"; without the core file, from the Makefile version, or "5.8+" when there is none.
std::string patch_era(const SourceTree& tree);

struct KernelPatch {
  PatchFormat format = PatchFormat::full;
  std::string era;
  std::string path;  // the file it changes, relative to the tree's top
  std::string text;  // description + unified diff
  Transform transform;  // the edits (for kpatch: already padded by preserve_line_count)
  std::vector<std::string> notes;  // caveats for the user (also in the description)
};

// Renders the patch of one format for a tree whose driver text is `iommu_text`. `tool_version` goes into the
// description. Errors come from the transform (an unexpected shape of the driver).
Result<KernelPatch> make_kernel_patch(const SourceTree& tree, std::string_view iommu_text, PatchFormat format,
                                      std::string_view tool_version);

// `patch -p1 --dry-run` of `patch_text` at `root` (the tree's top). Error with patch's output when it would
// not apply cleanly (any fuzz or offset counts as applying: the check is patch's own exit status).
Status check_patch_applies(const std::filesystem::path& root, std::string_view patch_text);

Json to_json(const KernelPatch& patch);

}  // namespace rr::source
