// The files relax-rmrr renders (templates/ in the source tree, compiled into the binary so that an installed
// relax-rmrr needs no data files). Placeholders are @NAME@.
#pragma once

#include "common/result.h"

#include <map>
#include <string>
#include <string_view>

namespace rr::klp {

// The template's text; Error when there is no such template.
Result<std::string_view> template_text(std::string_view name);

// Replaces every @NAME@; a placeholder without a value, or a value without a placeholder, is an Error.
Result<std::string> render(std::string_view name, const std::map<std::string, std::string>& values);

}  // namespace rr::klp
