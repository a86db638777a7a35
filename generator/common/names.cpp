#include "common/names.h"

#include <fmt/format.h>

namespace rr {

namespace {

constexpr size_t kModuleNameMax = 55;  // MODULE_NAME_LEN (56) less the terminating NUL
constexpr size_t kReleaseMax = 64;  // the kernel's utsname release field

std::string shown(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, 80)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  if (value.size() > 80) out += "...";
  return out;
}

Error refused(std::string_view what, std::string_view value, std::string_view why) {
  Error e = make_error(ExitCode::bad_input, "{} '{}' is not a usable name: {}", what, shown(value), why);
  e.hint = "a name becomes one file name below a directory relax-rmrr manages";
  return e;
}

}  // namespace

Status check_plain_name(std::string_view what, std::string_view value, size_t max_length) {
  if (value.empty()) return refused(what, value, "it is empty");
  if (value.size() > max_length) return refused(what, value, fmt::format("it is longer than {} bytes", max_length));
  if (value == "." || value == "..") return refused(what, value, "it names a directory, not an entry in it");
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (c == '/') return refused(what, value, "it contains '/'");
    if (u == 0) return refused(what, value, "it contains a NUL byte");
    if (u < 0x20 || u == 0x7f) return refused(what, value, "it contains a control character");
  }
  return ok_status();
}

Status check_module_name(std::string_view what, std::string_view value) {
  RR_CHECK(check_plain_name(what, value, kModuleNameMax));
  for (char c : value)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return refused(what, value, "a module name has only letters, digits, '_' and '-'");
  return ok_status();
}

Status check_kernel_release(std::string_view what, std::string_view value) {
  RR_CHECK(check_plain_name(what, value, kReleaseMax));
  for (char c : value)
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
      return refused(what, value, "a kernel release has no whitespace or non-ASCII character");
  return ok_status();
}

}  // namespace rr
