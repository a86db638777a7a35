// Option checks shared by the subcommands: a value that will become part of a path is checked when the command
// line is parsed (common/names.h), so a bad one is a usage error (exit 2) before anything is read or written.
#pragma once

#include "common/names.h"

#include <CLI/CLI.hpp>

#include <string>

namespace rr::cli {

inline CLI::Validator module_name_check() {
  return CLI::Validator(
      [](std::string& value) {
        auto st = check_module_name("the name", value);
        return st ? std::string() : st.error().message;
      },
      "NAME");
}

inline CLI::Validator kernel_release_check() {
  return CLI::Validator(
      [](std::string& value) {
        auto st = check_kernel_release("the release", value);
        return st ? std::string() : st.error().message;
      },
      "RELEASE");
}

}  // namespace rr::cli
