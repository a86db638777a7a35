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

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rr::source {

// Replace old_text, found at byte offset `offset` of the original, with new_text.
struct TextEdit {
  size_t offset = 0;
  std::string old_text;
  std::string new_text;
  bool operator==(const TextEdit&) const = default;
};

// A function definition found in C source. Offsets are bytes into the text; lines are 1-based.
struct FunctionDefinition {
  std::string name;
  std::vector<std::string> specifiers;  // tokens before the name: {"static", "bool"}
  std::vector<std::string> parameters;  // parameter names in order ("dev"); empty for (void)
  size_t decl_offset = 0;  // first specifier token
  size_t body_open = 0;  // the '{'
  size_t body_close = 0;  // the matching '}'
  size_t line = 0;  // line of the name
};

// Every definition (not prototype, not call) of `name` at file scope. Error on text the tokenizer cannot
// follow (unterminated comment or literal, unbalanced braces or parentheses); `display_path` names the file.
Result<std::vector<FunctionDefinition>> find_function_definitions(std::string_view text, std::string_view name,
                                                                  std::string_view display_path);

struct Transform {
  std::string path;  // the file the edits apply to, as given (e.g. "drivers/iommu/intel/iommu.c")
  std::string function;  // "device_rmrr_is_relaxable"
  size_t line = 0;  // where the function is, for messages
  std::vector<TextEdit> edits;
};

inline constexpr std::string_view kRelaxFunction = "device_rmrr_is_relaxable";

// The relax transform of one intel-iommu source file. `display_path` is used in messages and as
// Transform::path. Errors name the file and what was expected (ExitCode::bad_input).
Result<Transform> relax_transform(std::string_view text, std::string_view display_path);

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

// The same edits with blank lines added before the last line of every new text that has fewer lines than
// the text it replaces, so the patched file keeps its line count: `__LINE__` (WARN, might_sleep, ...) of the
// code below is unchanged, which kpatch-build and klp-build want. Whitespace only: the code is the same.
std::vector<TextEdit> preserve_line_count(std::vector<TextEdit> edits);

// Applies edits (any order, non-overlapping); an edit whose old_text is not at its offset is an error.
Result<std::string> apply_edits(std::string_view text, const std::vector<TextEdit>& edits);

// A unified diff (`--- a/<path>`, `+++ b/<path>`, hunks with `context` lines) that `patch -p1` applies
// to the original text and that yields exactly apply_edits()'s result.
Result<std::string> unified_diff(std::string_view text, const std::vector<TextEdit>& edits, std::string_view path, size_t context = 3);

}  // namespace rr::source
