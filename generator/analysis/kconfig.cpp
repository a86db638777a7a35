#include "analysis/kconfig.h"

#include "analysis/bzimage.h"
#include "common/file.h"

namespace rr::analysis {

namespace {
std::string_view strip_prefix(std::string_view name) {
  if (name.substr(0, 7) == "CONFIG_") name.remove_prefix(7);
  return name;
}
}  // namespace

std::optional<std::string> KernelConfig::value(std::string_view name) const {
  auto it = values_.find(strip_prefix(name));
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> KernelConfig::string(std::string_view name) const {
  auto v = value(name);
  if (!v) return v;
  std::string_view s = *v;
  if (s.size() < 2 || s.front() != '"' || s.back() != '"') return v;
  s = s.substr(1, s.size() - 2);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out.push_back(s[i]);
  }
  return out;
}

bool KernelConfig::enabled(std::string_view name) const { return value(name) == "y"; }
bool KernelConfig::modular(std::string_view name) const { return value(name) == "m"; }

void KernelConfig::set(std::string name, std::string value) { values_[std::string(strip_prefix(name))] = std::move(value); }

Result<KernelConfig> parse_kconfig(std::string_view text, std::string origin) {
  KernelConfig c;
  c.set_origin(origin);
  size_t line_no = 0;
  for (const auto& raw : split_lines(text)) {
    ++line_no;
    std::string line = trim(raw);
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# CONFIG_FOO is not set"
      constexpr std::string_view kNotSet = " is not set";
      if (starts_with(line, "# CONFIG_") && line.size() > kNotSet.size() &&
          std::string_view(line).substr(line.size() - kNotSet.size()) == kNotSet)
        c.set(line.substr(2, line.size() - 2 - kNotSet.size()), "n");
      continue;
    }
    size_t eq = line.find('=');
    if (!starts_with(line, "CONFIG_") || eq == std::string::npos || eq == 7)
      return make_error(ExitCode::bad_input, "{} line {}: expected CONFIG_NAME=value, got '{}'", origin, line_no, line.substr(0, 80));
    c.set(line.substr(0, eq), line.substr(eq + 1));
  }
  if (c.size() == 0) return make_error(ExitCode::bad_input, "{}: no CONFIG_ entries", origin);
  return c;
}

Result<KernelConfig> read_kconfig(const std::filesystem::path& path) {
  RR_ASSIGN(Bytes bytes, read_file_bytes(path, size_t{64} << 20));
  ByteView view(bytes.data(), bytes.size());
  if (detect_compression(view) == Compression::gzip) {
    DecompressOptions o;
    o.max_output = size_t{64} << 20;
    auto plain = decompress(view, Compression::gzip, o);
    if (!plain) return plain.error().with_context(path.string());
    return parse_kconfig(std::string_view(reinterpret_cast<const char*>(plain->data()), plain->size()), path.string());
  }
  return parse_kconfig(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path.string());
}

}  // namespace rr::analysis
