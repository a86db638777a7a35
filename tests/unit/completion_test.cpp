// `relax-rmrr completion bash`: the script passes bash -n and completes every subcommand and every option that
// `relax-rmrr --help` and `relax-rmrr SUB --help` list, plus option values and positional file names.
#include "cli_help.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;

namespace rr {
namespace {

using test::help_of;
using test::run_command;

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class Completion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    script_ = dir_->path() / "relax-rmrr.bash";
    auto r = run_command(fmt::format("{} completion bash > {}", RELAX_RMRR_BINARY, quote(script_.string())));
    generated_ = r.exit_code == 0;
    generate_output_ = r.output;
    // Sources the script, finds its function through `complete -p`, then runs it once per input line: the words
    // of a command line separated by \x1f (the last one is being completed), ended by an END field. Prints what
    // each offers on one line, separated by \x1f.
    driver_ = dir_->path() / "complete.sh";
    ASSERT_TRUE(write_file_text(driver_,
                                "source \"$1\" || exit 90\n"
                                "spec=$(complete -p relax-rmrr) || exit 91\n"
                                "fn=${spec#*-F }; fn=${fn%% *}\n"
                                "while IFS=$'\\x1f' read -r -a COMP_WORDS; do\n"
                                "  unset 'COMP_WORDS[${#COMP_WORDS[@]}-1]'\n"
                                "  COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}\n"
                                "  \"$fn\" relax-rmrr \"${COMP_WORDS[COMP_CWORD]}\" \"${COMP_WORDS[COMP_CWORD-1]}\" || exit 92\n"
                                "  printf '%s\\x1f' \"${COMPREPLY[@]}\"; echo\n"
                                "done\n")
                    .ok());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // What the completion offers for each command line of `queries` (the last word of each is the word being
  // completed), run in `cwd` (default: the test directory). One bash for all of them.
  static std::vector<std::set<std::string>> complete_all(const std::vector<std::vector<std::string>>& queries, const fs::path& cwd = {}) {
    std::string input;
    for (const auto& words : queries) {
      for (const auto& w : words) input += w + "\x1f";
      input += "END\n";
    }
    fs::path in = dir_->path() / "queries";
    EXPECT_TRUE(write_file_text(in, input).ok());
    std::string cmd = fmt::format("cd {} && bash --norc --noprofile {} {} < {}", quote((cwd.empty() ? dir_->path() : cwd).string()),
                                  quote(driver_.string()), quote(script_.string()), quote(in.string()));
    auto r = run_command(cmd);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
    std::vector<std::set<std::string>> out;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      std::set<std::string> offered;
      std::istringstream words(line);
      for (std::string w; std::getline(words, w, '\x1f');)
        if (!w.empty()) offered.insert(w);
      out.push_back(offered);
    }
    EXPECT_EQ(out.size(), queries.size()) << r.output;
    out.resize(queries.size());
    return out;
  }
  static std::set<std::string> complete(const std::vector<std::string>& words, const fs::path& cwd = {}) {
    return complete_all({words}, cwd).front();
  }

  static std::string show(const std::set<std::string>& s) {
    std::string out;
    for (const auto& w : s) out += (out.empty() ? "" : " ") + w;
    return "{" + out + "}";
  }

  static inline test::TempDir* dir_ = nullptr;
  static inline fs::path script_, driver_;
  static inline bool generated_ = false;
  static inline std::string generate_output_;
};

TEST_F(Completion, ScriptIsValidBash) {
  ASSERT_TRUE(generated_) << generate_output_;
  auto r = run_command("bash -n " + quote(script_.string()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  auto text = read_file_text(script_);
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->find("complete -F "), std::string::npos);
  if (run_command("command -v shellcheck").exit_code == 0) {
    auto sc = run_command("shellcheck -s bash " + quote(script_.string()));
    EXPECT_EQ(sc.exit_code, 0) << sc.output;
  }
}

TEST_F(Completion, IsHiddenFromHelp) {
  auto root = help_of("");
  ASSERT_EQ(root.exit_code, 0);
  EXPECT_EQ(std::count(root.subcommands.begin(), root.subcommands.end(), "completion"), 0);
  EXPECT_NE(run_command(fmt::format("{} completion zsh", RELAX_RMRR_BINARY)).exit_code, 0);
}

TEST_F(Completion, OffersEverySubcommand) {
  ASSERT_TRUE(generated_) << generate_output_;
  auto root = help_of("");
  ASSERT_EQ(root.exit_code, 0);
  ASSERT_GE(root.subcommands.size(), 10u) << "the --help parser found too few subcommands";
  std::vector<std::vector<std::string>> queries{{"relax-rmrr", ""}, {"relax-rmrr", "-"}};
  for (const auto& sub : root.subcommands) queries.push_back({"relax-rmrr", sub.substr(0, sub.size() - 1)});
  auto offered = complete_all(queries);
  const auto& all = offered[0];
  for (size_t i = 0; i < root.subcommands.size(); ++i) {
    const auto& sub = root.subcommands[i];
    EXPECT_TRUE(all.count(sub)) << "relax-rmrr <TAB> does not offer " << sub << ": " << show(all);
    EXPECT_TRUE(offered[i + 2].count(sub)) << "relax-rmrr " << sub.substr(0, sub.size() - 1) << "<TAB> does not offer " << sub;
  }
  EXPECT_FALSE(all.count("completion")) << "the hidden subcommand is offered";
  for (const auto& names : root.options)
    for (const auto& n : names) EXPECT_TRUE(offered[1].count(n)) << "relax-rmrr -<TAB> lacks " << n;
}

TEST_F(Completion, OffersEveryOptionOfEverySubcommand) {
  ASSERT_TRUE(generated_) << generate_output_;
  auto root = help_of("");
  ASSERT_EQ(root.exit_code, 0);
  size_t checked = 0;
  for (const auto& sub : root.subcommands) {
    auto page = help_of(sub);
    ASSERT_EQ(page.exit_code, 0) << sub;
    ASSERT_FALSE(page.options.empty()) << "no options parsed from relax-rmrr " << sub << " --help";
    // relax-rmrr SUB -<TAB>, then relax-rmrr SUB --optio<TAB> for each long option.
    std::vector<std::vector<std::string>> queries{{"relax-rmrr", sub, "-"}};
    for (const auto& names : page.options)
      for (const auto& name : names)
        if (name.size() > 2) queries.push_back({"relax-rmrr", sub, name.substr(0, name.size() - 1)});
    auto offered = complete_all(queries);
    const auto& dash = offered.front();
    size_t q = 1;
    for (const auto& names : page.options)
      for (const auto& name : names) {
        EXPECT_TRUE(dash.count(name)) << "relax-rmrr " << sub << " -<TAB> does not offer " << name << ": " << show(dash);
        if (name.size() > 2) {
          const auto& got = offered[q++];
          EXPECT_TRUE(got.count(name)) << "relax-rmrr " << sub << " " << name.substr(0, name.size() - 1) << "<TAB> does not offer " << name
                                       << ": " << show(got);
        }
        ++checked;
      }
  }
  EXPECT_GE(checked, 50u);
}

TEST_F(Completion, CompletesOptionValuesAndPositionalFiles) {
  ASSERT_TRUE(generated_) << generate_output_;
  test::TempDir d;
  fs::create_directory(d.path() / "kbuild-dir");
  ASSERT_TRUE(write_file_text(d.path() / "relax_rmrr.ko", "x").ok());
  ASSERT_TRUE(write_file_text(d.path() / "kallsyms.txt", "x").ok());
  // Fixed values of a checked option.
  EXPECT_EQ(complete({"relax-rmrr", "patch", "--format", ""}), (std::set<std::string>{"full", "kpatch"}));
  EXPECT_EQ(complete({"relax-rmrr", "verify", "--text", "k"}), (std::set<std::string>{"kcore"}));
  EXPECT_EQ(complete({"relax-rmrr", "completion", ""}), (std::set<std::string>{"bash"}));
  // --option=value split at '=' as bash does.
  EXPECT_EQ(complete({"relax-rmrr", "patch", "--format", "=", "kp"}), (std::set<std::string>{"kpatch"}));
  // Paths: files for file options and positionals, directories for directory options.
  EXPECT_TRUE(complete({"relax-rmrr", "load", "rel"}, d.path()).count("relax_rmrr.ko"));
  ASSERT_TRUE(write_file_text(d.path() / "my module.ko", "x").ok());
  EXPECT_EQ(complete({"relax-rmrr", "install", "my"}, d.path()), (std::set<std::string>{"my module.ko"}));
  EXPECT_TRUE(complete({"relax-rmrr", "build", "--kallsyms", "kall"}, d.path()).count("kallsyms.txt"));
  EXPECT_TRUE(complete({"relax-rmrr", "build", "-o", "rel"}, d.path()).count("relax_rmrr.ko"));
  EXPECT_EQ(complete({"relax-rmrr", "doctor", "--root", ""}, d.path()), (std::set<std::string>{"kbuild-dir"}));
  // An option with two values: the second is still a file.
  EXPECT_TRUE(complete({"relax-rmrr", "verify", "--objects", "kallsyms.txt", "rel"}, d.path()).count("relax_rmrr.ko"));
  // A value that is not a path offers no file names; after a flag, options are offered again.
  EXPECT_TRUE(complete({"relax-rmrr", "build", "--name", "rel"}, d.path()).empty());
  EXPECT_TRUE(complete({"relax-rmrr", "build", "--json", ""}, d.path()).count("--kallsyms"));
  // After an option's value the positional file is completed.
  EXPECT_TRUE(complete({"relax-rmrr", "load", "--timeout", "5", "rel"}, d.path()).count("relax_rmrr.ko"));
}

}  // namespace
}  // namespace rr
