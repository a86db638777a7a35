#include "klp/templates.h"

#include "klp/templates_embedded.h"

#include <set>

namespace rr::klp {

Result<std::string_view> template_text(std::string_view name) {
  for (const auto& t : embedded_templates)
    if (t.name == name) return t.text;
  return make_error(ExitCode::failure, "no template named {}", name);
}

Result<std::string> render(std::string_view name, const std::map<std::string, std::string>& values) {
  RR_ASSIGN(std::string_view text, template_text(name));
  std::string out;
  std::set<std::string> used;
  size_t at = 0;
  while (at < text.size()) {
    size_t open = text.find('@', at);
    if (open == std::string_view::npos) break;
    size_t close = text.find('@', open + 1);
    std::string_view key = close == std::string_view::npos ? std::string_view{} : text.substr(open + 1, close - open - 1);
    bool is_key = !key.empty() && key.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string_view::npos;
    if (!is_key) {
      out.append(text.substr(at, open + 1 - at));
      at = open + 1;
      continue;
    }
    auto it = values.find(std::string(key));
    if (it == values.end()) return make_error(ExitCode::failure, "template {}: no value for @{}@", name, key);
    out.append(text.substr(at, open - at));
    out.append(it->second);
    used.insert(it->first);
    at = close + 1;
  }
  out.append(text.substr(at));
  for (const auto& [k, v] : values)
    if (!used.count(k)) return make_error(ExitCode::failure, "template {}: value {} has no placeholder", name, k);
  return out;
}

}  // namespace rr::klp
