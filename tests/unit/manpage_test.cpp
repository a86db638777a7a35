// docs/relax-rmrr.8 documents what the CLI has: every subcommand of `relax-rmrr --help` in its own .SS of
// COMMANDS, every option of `relax-rmrr SUB --help` in that subsection (or, like --help, in the general
// OPTIONS section), every exit code, and every RELAX_RMRR_* variable the generator, its templates and DKMS hooks read.
#include "cli_help.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace rr {
namespace {

using test::help_of;

const fs::path kManPage = fs::path(RELAX_RMRR_SOURCE_DIR) / "docs" / "relax-rmrr.8";

// troff to searchable text: font changes dropped, \- and \(en/\(em as '-', quotes around macro arguments kept.
std::string plain(std::string s) {
  s = std::regex_replace(s, std::regex(R"(\\f(\[[A-Z]*\]|\([A-Z]{2}|[BIRP]))"), "");
  s = std::regex_replace(s, std::regex(R"(\\-)"), "-");
  s = std::regex_replace(s, std::regex(R"(\\\((en|em|hy))"), "-");
  s = std::regex_replace(s, std::regex(R"(\\&)"), "");
  return s;
}

struct Page {
  std::vector<std::string> lines;  // plain text, one per troff input line
};

Page load_page() {
  Page p;
  auto text = read_file_text(kManPage);
  EXPECT_TRUE(text.ok()) << kManPage;
  if (!text.ok()) return p;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) p.lines.push_back(plain(line));
  return p;
}

std::string unquote(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '"'), s.end());
  return s;
}

// The text of the .SH (level "SH") or .SS (level "SS") whose title's first word is `title` (a whole title for
// .SH), up to the next heading of the same or a higher level.
std::string section(const Page& p, const std::string& level, const std::string& title) {
  std::string out;
  bool in = false;
  for (const auto& l : p.lines) {
    bool sh = l.rfind(".SH", 0) == 0, ss = l.rfind(".SS", 0) == 0;
    if (sh || ss) {
      std::string heading = unquote(l.substr(3));
      heading.erase(0, heading.find_first_not_of(' '));
      if (in && (sh || level == "SS")) break;
      if ((level == "SH" && sh && heading == title) || (level == "SS" && ss && heading.substr(0, heading.find(' ')) == title)) {
        in = true;
        continue;
      }
    }
    if (in) out += l + "\n";
  }
  return out;
}

// `name` as a whole word: not part of a longer option or word.
bool mentions(const std::string& text, const std::string& name) {
  auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; };
  for (size_t p = text.find(name); p != std::string::npos; p = text.find(name, p + 1)) {
    bool before = p == 0 || !word(text[p - 1]);
    bool after = p + name.size() == text.size() || !word(text[p + name.size()]);
    if (before && after) return true;
  }
  return false;
}

TEST(ManPage, RendersWithoutWarnings) {
  if (test::run_command("command -v groff").exit_code != 0) GTEST_SKIP() << "groff is not installed (groff-base)";
  auto r = test::run_command(fmt::format("groff -man -Tutf8 -ww -z '{}'", kManPage.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "") << "groff warnings";
  if (test::run_command("command -v man").exit_code == 0) {
    auto m = test::run_command(fmt::format("MANWIDTH=100 man --warnings -l '{}' 2>&1 >/dev/null", kManPage.string()));
    EXPECT_EQ(m.output, "") << "man --warnings";
  }
}

TEST(ManPage, HasTheStandardSections) {
  Page p = load_page();
  ASSERT_FALSE(p.lines.empty());
  auto first = std::find_if(p.lines.begin(), p.lines.end(), [](const std::string& l) { return l.rfind(".\\\"", 0) != 0; });
  ASSERT_NE(first, p.lines.end());
  EXPECT_EQ(first->rfind(".TH RELAX-RMRR 8 ", 0), 0u) << "the first request is not .TH: " << *first;
  for (const char* s :
       {"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "OPTIONS", "BOOT", "EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO"})
    EXPECT_FALSE(section(p, "SH", s).empty()) << "no .SH " << s;
}

TEST(ManPage, DocumentsEverySubcommandAndOption) {
  Page p = load_page();
  ASSERT_FALSE(p.lines.empty());
  auto root = help_of("");
  ASSERT_EQ(root.exit_code, 0);
  ASSERT_GE(root.subcommands.size(), 10u) << "the --help parser found too few subcommands";
  std::string general = section(p, "SH", "OPTIONS");
  for (const auto& names : root.options)
    for (const auto& n : names) EXPECT_TRUE(mentions(general, n)) << "OPTIONS does not describe " << n;
  size_t checked = 0;
  for (const auto& sub : root.subcommands) {
    std::string text = section(p, "SS", sub);
    EXPECT_FALSE(text.empty()) << "COMMANDS has no .SS " << sub;
    auto page = help_of(sub);
    ASSERT_EQ(page.exit_code, 0) << sub;
    ASSERT_FALSE(page.options.empty()) << "no options parsed from relax-rmrr " << sub << " --help";
    for (const auto& names : page.options)
      for (const auto& n : names) {
        EXPECT_TRUE(mentions(text, n) || mentions(general, n)) << "relax-rmrr(8) does not describe " << sub << " " << n;
        ++checked;
      }
  }
  EXPECT_GE(checked, 50u);
  // The hidden completion command is documented.
  EXPECT_TRUE(mentions(section(p, "SH", "FILES") + section(p, "SH", "SEE ALSO"), "completion")) << "relax-rmrr completion bash";
}

TEST(ManPage, DescribesEveryExitCode) {
  Page p = load_page();
  std::string text = section(p, "SH", "EXIT STATUS");
  ASSERT_FALSE(text.empty());
  // Each code is the tag of a .TP paragraph whose text says what it means.
  const std::map<int, std::string> meaning = {{0, "success"}, {1, "no"},      {2, "malformed"},
                                              {3, "missing"}, {4, "refused"}, {5, "forbids"}};  // lower case
  for (const auto& [code, word] : meaning) {
    std::regex tag(fmt::format(R"(\.TP\n(\.B )?{}\n([^.][^\n]*\n)+)", code));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, tag)) << "exit code " << code << " is not a .TP entry of EXIT STATUS";
    std::string entry = m.str(0);
    std::transform(entry.begin(), entry.end(), entry.begin(), [](unsigned char c) { return std::tolower(c); });
    EXPECT_TRUE(mentions(entry, word)) << "exit code " << code << " does not say '" << word << "': " << m.str(0);
  }
}

// RELAX_RMRR_* variables the generator reads (getenv) and its shell templates and DKMS hooks use
// (${RELAX_RMRR_...}).
TEST(ManPage, DocumentsEveryEnvironmentVariable) {
  Page p = load_page();
  std::string text = section(p, "SH", "ENVIRONMENT");
  ASSERT_FALSE(text.empty());
  const fs::path src(RELAX_RMRR_SOURCE_DIR);
  std::set<std::string> vars;
  std::regex getenv_re(R"(getenv\("(RELAX_RMRR_[A-Z0-9_]+)\"\))"), shell_re(R"(\$\{?(RELAX_RMRR_[A-Z0-9_]+))");
  for (const auto& dir : {src / "generator", src / "templates", src / "dkms"})
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file() || e.path().extension() == ".md") continue;
      auto body = read_file_text(e.path());
      if (!body.ok()) continue;
      const std::regex& re = dir.filename() == "generator" ? getenv_re : shell_re;
      for (std::sregex_iterator it(body->begin(), body->end(), re), end; it != end; ++it) vars.insert((*it)[1]);
    }
  EXPECT_TRUE(vars.count("RELAX_RMRR_CACHE")) << "the scan found no getenv(\"RELAX_RMRR_CACHE\")";
  for (const auto& v : vars) EXPECT_TRUE(mentions(text, v)) << "ENVIRONMENT does not describe " << v;
}

}  // namespace
}  // namespace rr
