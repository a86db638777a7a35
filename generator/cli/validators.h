// Option checks shared by the subcommands: a value that will become part of a path is checked when the command
// line is parsed (common/names.h), so a bad one is a usage error (exit 2) before anything is read or written.
#pragma once

#include "common/names.h"

#include <CLI/CLI.hpp>

#include <string>

namespace rr::cli {

// A CLI11 check from one of common/names.h's: its error message is the usage error.
inline CLI::Validator name_check(Status (*check)(std::string_view, std::string_view), std::string label) {
  return CLI::Validator(
      [check](std::string& value) {
        auto st = check("the value", value);
        return st ? std::string() : st.error().message;
      },
      std::move(label));
}

inline CLI::Validator module_name_check() { return name_check(&check_module_name, "NAME"); }
inline CLI::Validator kernel_release_check() { return name_check(&check_kernel_release, "RELEASE"); }

}  // namespace rr::cli
