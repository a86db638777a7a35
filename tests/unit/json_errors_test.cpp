// With --json, every error is one JSON object on stdout, {"error": {"code", "message", "hint"}}, with the same
// exit code as without it (cli/output.h); a command that already printed its document puts the error inside it.
#include "common/json.h"
#include "test_util.h"

#include <gtest/gtest.h>

namespace fs = std::filesystem;
using namespace rr;

namespace {

struct JsonRun {
  int exit_code = -1;
  std::string stdout_text;
  Result<Json> doc = Error{"not run", ExitCode::failure, {}};
};

// Runs relax-rmrr with `args`; stderr goes to /dev/null so that stdout alone is parsed.
JsonRun run_json(const std::string& args) {
  auto r = test::run_command(fmt::format("{{ {} {} 2>/dev/null; }}", RELAX_RMRR_BINARY, args));
  JsonRun j;
  j.exit_code = r.exit_code;
  j.stdout_text = r.output;
  j.doc = Json::parse(r.output);
  return j;
}

void expect_error(const JsonRun& r, int code, std::string_view in_message) {
  ASSERT_TRUE(r.doc.ok()) << "stdout is not one JSON document: " << r.stdout_text;
  const Json* e = r.doc->find("error");
  ASSERT_NE(e, nullptr) << r.stdout_text;
  EXPECT_EQ(r.exit_code, code);
  EXPECT_EQ((*e)["code"].as_int(), code);
  EXPECT_NE((*e)["message"].as_string().find(in_message), std::string::npos) << (*e)["message"].as_string();
  EXPECT_NE(e->find("hint"), nullptr);
}

}  // namespace

TEST(JsonErrors, MissingInputFileIsExitThreeOnStdout) { expect_error(run_json("dmar --json /nonexistent/DMAR"), 3, "/nonexistent/DMAR"); }

TEST(JsonErrors, MalformedInputIsExitTwoOnStdout) {
  test::TempDir dir;
  fs::path dmar = dir.path() / "DMAR";
  ASSERT_TRUE(write_file_text(dmar, "DMAR but far too short").ok());
  expect_error(run_json("dmar --json " + dmar.string()), 2, "");
  fs::path text = dir.path() / "not-an-image";
  ASSERT_TRUE(write_file_text(text, "plain text, no ELF, no bzImage\n").ok());
  expect_error(run_json("kallsyms --json " + text.string()), 2, "");
}

TEST(JsonErrors, UsageErrorsAreJsonToo) {
  expect_error(run_json("status --json --no-such-option"), 2, "--no-such-option");
  expect_error(run_json("build --json --sign-key only-a-key"), 2, "");
}

TEST(JsonErrors, WithoutJsonStdoutStaysEmpty) {
  auto r = test::run_command(fmt::format("{{ {} dmar /nonexistent/DMAR 2>/dev/null; }}", RELAX_RMRR_BINARY));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.output, "");
}
