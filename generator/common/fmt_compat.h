// Differences between the {fmt} versions relax-rmrr builds against, in one place: Debian 11 ships fmt 7,
// Debian 12 fmt 9. FMT_VERSION is fmt's own version macro (fmt/core.h).
#pragma once

#include <fmt/format.h>

namespace rr {

// A format string for Args: checked at compile time from fmt 8 on; fmt 7 has no fmt::format_string and checks
// the format at run time (a bad one throws fmt::format_error there).
#if FMT_VERSION >= 80000
template <typename... Args>
using format_string = fmt::format_string<Args...>;
#else
template <typename... Args>
using format_string = fmt::string_view;
#endif

}  // namespace rr
