// The subcommands and options relax-rmrr's --help lists (CLI11 2.1 layout), for tests that check that
// everything the CLI has is documented and completed.
#pragma once

#include "test_util.h"

#include <sstream>
#include <string>
#include <vector>

namespace rr::test {

struct HelpPage {
  std::vector<std::string> subcommands;  // "Subcommands:" section, first word of each entry
  std::vector<std::vector<std::string>> options;  // "Options:" section, each entry's names ("-o", "--output")
  int exit_code = -1;
};

// Parses CLI11 help text. Entries are indented by exactly two spaces; an option entry starts with '-' and its
// names are the first word, comma-separated ("-o,--output TEXT  desc", "--kallsyms TEXT Excludes: ...");
// continuation lines are indented further.
inline HelpPage parse_help(const std::string& text) {
  HelpPage page;
  std::istringstream in(text);
  std::string line, section;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == ':' && line[0] != ' ') {
      section = line.substr(0, line.size() - 1);
      continue;
    }
    if (line.empty()) {
      section.clear();
      continue;
    }
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    std::string first = line.substr(2, line.find(' ', 2) == std::string::npos ? std::string::npos : line.find(' ', 2) - 2);
    if (section == "Subcommands") {
      page.subcommands.push_back(first);
    } else if (section == "Options" && first[0] == '-') {
      std::vector<std::string> names;
      std::stringstream ss(first);
      for (std::string n; std::getline(ss, n, ',');)
        if (!n.empty()) names.push_back(n);
      page.options.push_back(names);
    }
  }
  return page;
}

// `relax-rmrr ARGS --help`, parsed (ARGS: "" for the program, else a subcommand).
inline HelpPage help_of(const std::string& args) {
  std::string cmd = std::string(RELAX_RMRR_BINARY) + (args.empty() ? "" : " " + args) + " --help";
  CommandResult r = run_command(cmd);
  HelpPage page = parse_help(r.output);
  page.exit_code = r.exit_code;
  return page;
}

}  // namespace rr::test
