// The relax transform: the one change relax-rmrr makes to the kernel's intel-iommu source.
//
// `device_rmrr_is_relaxable()` decides whether a device's RMRRs may be left unenforced (upstream: USB and
// graphics only). The transform replaces its body so it answers true for every device, which is what the
// out-of-tree `intel_iommu=relax_rmrr` option does when set. The change is a list of text edits over the
// original file, so the same edit produces the patched file (to compile) and a unified diff (for kpatch/ and
// kernel-patch/): one source of truth.
//
// The function is found by tokenizing C (comments, string and character literals and preprocessor lines
// skipped, braces matched), never by line numbers.
#pragma once

#include "common/result.h"
#include "source/c_scan.h"
#include "source/text_edit.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rr::source {

struct Transform {
  std::string path;  // the file the edits apply to, as given (e.g. "drivers/iommu/intel/iommu.c")
  std::string function;  // "device_rmrr_is_relaxable"
  size_t line = 0;  // where the function is, for messages
  std::vector<TextEdit> edits;
};

inline constexpr std::string_view kRelaxFunction = "device_rmrr_is_relaxable";
// The function the livepatch's glue defines (templates/klp_glue.c.in) and the selective transform calls: true for
// a device in the `devices` selection, and for every device while the selection is empty.
inline constexpr std::string_view kSelectionFunction = "relax_rmrr_device_selected";

enum class RelaxScope {
  // `return true` for every device: the kernel patch, kpatch/ and intel_iommu=relax_rmrr.
  every_device,
  // The livepatch: true for the devices kSelectionFunction selects, the kernel's own answer for the others. The
  // original body stays, as a block of its own after the test, so its declarations still open a block.
  selected_devices,
};

// The relax transform of one intel-iommu source file. `display_path` is used in messages and as
// Transform::path. Errors name the file and what was expected (ExitCode::bad_input).
Result<Transform> relax_transform(std::string_view text, std::string_view display_path, RelaxScope scope = RelaxScope::every_device);

// The one definition of device_rmrr_is_relaxable() with the shape both transforms expect (this one and
// option_transform.h's), or an Error that says what was found instead.
Result<FunctionDefinition> find_relaxable_definition(std::string_view text, std::string_view display_path);

}  // namespace rr::source
