// Names that end up as one component of a path (a module name, a kernel release, a unit name): whatever their
// origin (an option, a .ko's .modinfo, a directory listing), they are checked here before a path is built from
// them, so that none can climb out of its directory or name something else.
#pragma once

#include "common/result.h"

#include <string_view>

namespace rr {

// One path component: not empty, at most max_length bytes, not "." or "..", no '/', no NUL, no control
// character (so it also prints on one line). `what` names the field in the error ("--name", "the module's name=").
Status check_plain_name(std::string_view what, std::string_view value, size_t max_length = 255);

// A kernel module (and livepatch) name: a plain name of letters, digits and '_' or '-' (the kernel treats them
// alike), shorter than the kernel's 56-byte module name field.
Status check_module_name(std::string_view what, std::string_view value);

// A kernel release (uname -r): a plain name of at most 64 bytes (the kernel's utsname field) of printable
// characters other than whitespace.
Status check_kernel_release(std::string_view what, std::string_view value);

}  // namespace rr
