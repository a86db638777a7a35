// Text edits over a source file: applied, rendered as a unified diff, or padded to keep the line count.
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
