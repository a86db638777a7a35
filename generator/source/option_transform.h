#pragma once

#include "source/transform.h"

#include <string_view>

namespace rr::source {

// The option transform: the full kernel patch (kernel-patch/). It adds the boot option
// `intel_iommu=relax_rmrr`, off by default, with the same effect as relax_transform() when given:
//   - a file-scope `static bool intel_iommu_relax_rmrr;` before intel_iommu_setup() (or before
//     device_rmrr_is_relaxable() when that comes first), above any comment block that introduces it;
//   - in intel_iommu_setup()'s `if (!strncmp(<str>, "...", N)) { ... } else if ...` chain, a branch for
//     "relax_rmrr" that sets the variable and pr_warn()s that this can lead to instability or data loss
//     (before a final bare `else`, or after the last branch when there is none);
//   - in device_rmrr_is_relaxable(), after its leading declarations, `if (intel_iommu_relax_rmrr) return true;`.
// Every anchor is found by tokenizing C; a file whose functions have another shape, or that already has the
// option (Proxmox kernels carry it natively), is an error (ExitCode::bad_input) and no edit is produced.
inline constexpr std::string_view kSetupFunction = "intel_iommu_setup";
inline constexpr std::string_view kOptionVariable = "intel_iommu_relax_rmrr";
inline constexpr std::string_view kOptionName = "relax_rmrr";
Result<Transform> option_transform(std::string_view text, std::string_view display_path);

}  // namespace rr::source
