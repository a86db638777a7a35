#include "source/text_edit.h"

#include <fmt/format.h>

#include <algorithm>

namespace rr::source {

namespace {

Result<std::vector<TextEdit>> sorted_checked(std::string_view text, const std::vector<TextEdit>& edits) {
  std::vector<TextEdit> s = edits;
  std::sort(s.begin(), s.end(), [](const TextEdit& a, const TextEdit& b) { return a.offset < b.offset; });
  for (size_t i = 0; i < s.size(); ++i) {
    const TextEdit& e = s[i];
    if (e.offset > text.size() || text.substr(e.offset, e.old_text.size()) != e.old_text)
      return make_error(ExitCode::bad_input, "edit at offset {} does not apply: the text there differs from what the edit replaces",
                        e.offset);
    if (i > 0 && s[i - 1].offset + s[i - 1].old_text.size() > e.offset)
      return make_error(ExitCode::bad_input, "edits at offsets {} and {} overlap", s[i - 1].offset, e.offset);
  }
  return s;
}

// Lines with their terminating newline (the last may lack one).
std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    out.push_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

}  // namespace

Result<std::string> apply_edits(std::string_view text, const std::vector<TextEdit>& edits) {
  RR_ASSIGN(auto s, sorted_checked(text, edits));
  std::string out;
  out.reserve(text.size() + 256);
  size_t at = 0;
  for (const auto& e : s) {
    out.append(text.substr(at, e.offset - at));
    out.append(e.new_text);
    at = e.offset + e.old_text.size();
  }
  out.append(text.substr(at));
  return out;
}

Result<std::string> unified_diff(std::string_view text, const std::vector<TextEdit>& edits, std::string_view path, size_t context) {
  RR_ASSIGN(auto s, sorted_checked(text, edits));
  RR_ASSIGN(std::string patched, apply_edits(text, s));
  auto a = lines_of(text);
  auto b = lines_of(patched);

  // Line starts of the original, to map offsets to line indexes.
  std::vector<size_t> starts;
  for (size_t i = 0, off = 0; i < a.size(); off += a[i].size(), ++i) starts.push_back(off);
  auto line_index = [&](size_t offset) -> size_t {
    auto it = std::upper_bound(starts.begin(), starts.end(), offset);
    return it == starts.begin() ? 0 : static_cast<size_t>(it - starts.begin()) - 1;
  };

  // Each edit widened to whole lines: original lines [a0, a1) become patched lines [b0, b1).
  struct Change {
    size_t a0, a1, b0, b1;
  };
  std::vector<Change> changes;
  std::ptrdiff_t shift = 0;  // patched line index minus original line index before the current change
  size_t previous_end = 0;  // the previous edit's widened end line
  bool first = true;
  for (const auto& e : s) {
    if (e.old_text == e.new_text) continue;
    const size_t end_off = e.offset + e.old_text.size();
    size_t a0 = (e.offset == text.size() && (text.empty() || text.back() == '\n')) ? a.size() : line_index(e.offset);
    size_t a1 = e.old_text.empty() ? a0 : line_index(end_off - 1) + 1;
    // A pure insertion in the middle of a line rewrites that line.
    if (a1 == a0 && a0 < a.size() && e.offset > starts[a0]) a1 = a0 + 1;
    auto line_start = [&](size_t li) { return li < starts.size() ? starts[li] : text.size(); };
    // Widen to whole lines: prefix of the first line, the new text, the rest of the last line.
    std::string widened;
    for (;;) {
      widened = std::string(text.substr(line_start(a0), e.offset - line_start(a0))) + e.new_text +
                std::string(text.substr(end_off, line_start(a1) - end_off));
      if (a1 >= a.size() || widened.empty() || widened.back() == '\n') break;
      ++a1;  // the change ends mid-line: take in the line it continues into
    }
    if (!first && a0 < previous_end)
      return make_error(ExitCode::bad_input, "edits at offsets {} and earlier share a line; merge them into one edit", e.offset);
    first = false;
    previous_end = a1;
    size_t new_lines = lines_of(widened).size();
    size_t b0 = static_cast<size_t>(static_cast<std::ptrdiff_t>(a0) + shift);
    shift += static_cast<std::ptrdiff_t>(new_lines) - static_cast<std::ptrdiff_t>(a1 - a0);
    // Lines the edit rewrote identically (a kept '{' or '}') are context, not change.
    size_t b1 = b0 + new_lines;
    while (a0 < a1 && b0 < b1 && a[a0] == b[b0]) ++a0, ++b0;
    while (a1 > a0 && b1 > b0 && a[a1 - 1] == b[b1 - 1]) --a1, --b1;
    if (a0 == a1 && b0 == b1) continue;
    changes.push_back(Change{a0, a1, b0, b1});
  }
  // Merge changes whose context would touch (sorted edits may also share a line).
  std::vector<std::vector<Change>> hunks;
  for (const auto& c : changes) {
    if (!hunks.empty()) {
      const Change& p = hunks.back().back();
      if (c.a0 <= p.a1 + 2 * context) {
        hunks.back().push_back(c);
        continue;
      }
    }
    hunks.push_back({c});
  }

  auto emit = [](std::string& out, char mark, std::string_view line) {
    out += mark;
    out.append(line);
    if (line.empty() || line.back() != '\n') out += "\n\\ No newline at end of file\n";
  };
  auto range = [](size_t start, size_t count) {
    // Unified diff convention: a 1-based start, or the line before an empty range.
    return count == 0 ? fmt::format("{},0", start) : count == 1 ? fmt::format("{}", start + 1) : fmt::format("{},{}", start + 1, count);
  };

  std::string out = fmt::format("--- a/{}\n+++ b/{}\n", path, path);
  for (const auto& h : hunks) {
    size_t a_begin = h.front().a0 > context ? h.front().a0 - context : 0;
    size_t a_end = std::min(a.size(), h.back().a1 + context);
    size_t b_begin = static_cast<size_t>(static_cast<std::ptrdiff_t>(a_begin) +
                                         (static_cast<std::ptrdiff_t>(h.front().b0) - static_cast<std::ptrdiff_t>(h.front().a0)));
    size_t b_end = static_cast<size_t>(static_cast<std::ptrdiff_t>(a_end) +
                                       (static_cast<std::ptrdiff_t>(h.back().b1) - static_cast<std::ptrdiff_t>(h.back().a1)));
    std::string body;
    size_t ai = a_begin;
    for (const auto& c : h) {
      for (; ai < c.a0; ++ai) emit(body, ' ', a[ai]);
      for (size_t k = c.a0; k < c.a1; ++k) emit(body, '-', a[k]);
      for (size_t k = c.b0; k < c.b1; ++k) emit(body, '+', b[k]);
      ai = c.a1;
    }
    for (; ai < a_end; ++ai) emit(body, ' ', a[ai]);
    out += fmt::format("@@ -{} +{} @@\n", range(a_begin, a_end - a_begin), range(b_begin, b_end - b_begin));
    out += body;
  }
  return out;
}

std::vector<TextEdit> preserve_line_count(std::vector<TextEdit> edits) {
  for (auto& e : edits) {
    auto old_lines = static_cast<size_t>(std::count(e.old_text.begin(), e.old_text.end(), '\n'));
    auto new_lines = static_cast<size_t>(std::count(e.new_text.begin(), e.new_text.end(), '\n'));
    if (new_lines >= old_lines) continue;
    const size_t pad = old_lines - new_lines;
    // The start of the last line (a final newline ends that line, it does not start another).
    size_t end = !e.new_text.empty() && e.new_text.back() == '\n' ? e.new_text.size() - 1 : e.new_text.size();
    size_t last_nl = end == 0 ? std::string::npos : e.new_text.rfind('\n', end - 1);
    size_t at = last_nl == std::string::npos ? 0 : last_nl + 1;
    std::string filler;
    if (pad >= 4) {
      // A comment that says why, as long as needed, indented like the line before it.
      size_t prev_begin = 0;
      if (at >= 2)
        if (size_t p = e.new_text.rfind('\n', at - 2); p != std::string::npos) prev_begin = p + 1;
      size_t ind_end = e.new_text.find_first_not_of(" \t", prev_begin);
      std::string ind = e.new_text.substr(prev_begin, (ind_end == std::string::npos ? at : ind_end) - prev_begin);
      filler = ind + "/*\n" + ind + " * relax-rmrr: padding that keeps the file's line count, so that __LINE__\n" + ind +
               " * in the code below is unchanged (kpatch-build, klp-build).\n";
      for (size_t i = 4; i < pad; ++i) filler += ind + " *\n";
      filler += ind + " */\n";
    } else {
      filler.assign(pad, '\n');
    }
    e.new_text.insert(at, filler);
  }
  return edits;
}

}  // namespace rr::source
