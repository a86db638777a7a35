#include "source/transform.h"

#include <algorithm>

namespace rr::source {

// The one definition of device_rmrr_is_relaxable() with the shape both transforms expect.
Result<FunctionDefinition> find_relaxable_definition(std::string_view text, std::string_view display_path) {
  const std::string_view fn = kRelaxFunction;
  RR_ASSIGN(auto defs, find_function_definitions(text, fn, display_path));
  const std::string expected = fmt::format("expected exactly one definition `static bool {}(struct device *dev) {{ ... }}`", fn);
  if (defs.empty())
    return Error{fmt::format("{}: no definition of {}() found; {}", display_path, fn, expected), ExitCode::bad_input,
                 "the relax transform needs the intel-iommu driver of Linux 5.3 or later "
                 "(drivers/iommu/intel-iommu.c or drivers/iommu/intel/iommu.c)"};
  if (defs.size() > 1) {
    std::string lines;
    for (const auto& d : defs) lines += (lines.empty() ? "" : ", ") + std::to_string(d.line);
    return Error{fmt::format("{}: {} definitions of {}() (lines {}); {}", display_path, defs.size(), fn, lines, expected),
                 ExitCode::bad_input, "the file may be patched already or preprocessor-dependent; check it by hand"};
  }
  const FunctionDefinition& d = defs.front();
  bool returns_bool =
      std::any_of(d.specifiers.begin(), d.specifiers.end(), [](const std::string& s) { return s == "bool" || s == "_Bool" || s == "int"; });
  if (!returns_bool || std::find(d.specifiers.begin(), d.specifiers.end(), "*") != d.specifiers.end()) {
    std::string spec;
    for (const auto& s : d.specifiers) spec += (spec.empty() ? "" : " ") + s;
    return Error{fmt::format("{}:{}: {}() is declared `{}`; {}", display_path, d.line, fn, spec, expected), ExitCode::bad_input, {}};
  }
  if (d.parameters.empty())
    return Error{fmt::format("{}:{}: {}() takes no parameters; {}", display_path, d.line, fn, expected), ExitCode::bad_input, {}};
  return d;
}

Result<Transform> relax_transform(std::string_view text, std::string_view display_path, RelaxScope scope) {
  const std::string_view fn = kRelaxFunction;
  RR_ASSIGN(const FunctionDefinition d, find_relaxable_definition(text, display_path));

  Transform tr;
  tr.path = std::string(display_path);
  tr.function = std::string(fn);
  tr.line = d.line;
  const std::string original_body(text.substr(d.body_open, d.body_close + 1 - d.body_open));
  if (scope == RelaxScope::selected_devices) {
    // Three insertions that add no line, so __LINE__ of everything below stays as compiled in the kernel: the
    // declaration before the definition, the test before the original body, a brace closing the outer block.
    // The first parameter is the device (find_relaxable_definition checked the shape).
    tr.edits.push_back(TextEdit{d.decl_offset, "", fmt::format("bool {}(struct device *dev); ", kSelectionFunction)});
    tr.edits.push_back(TextEdit{
        d.body_open, "{",
        fmt::format("{{ /* relax-rmrr: selected devices */ if ({}({})) return true; {{", kSelectionFunction, d.parameters.front())});
    tr.edits.push_back(TextEdit{d.body_close, "}", "} }"});
    return tr;
  }
  // The new body keeps every parameter referenced, so -Wunused-parameter (-Werror builds) stays quiet.
  std::string body = "{\n\t/* relax-rmrr: every RMRR is relaxable, as with intel_iommu=relax_rmrr */\n";
  for (const auto& p : d.parameters) body += fmt::format("\t(void){};\n", p);
  body += "\treturn true;\n}";
  tr.edits.push_back(TextEdit{d.body_open, original_body, std::move(body)});
  return tr;
}

}  // namespace rr::source
