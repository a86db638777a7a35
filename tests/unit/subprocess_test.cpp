// Subprocesses without a shell: exit codes, signals, output capture, environment, pipelines.
#include "common/subprocess.h"
#include "test_util.h"

#include <gtest/gtest.h>

using namespace rr;

namespace {

TEST(Subprocess, ExitCodesAndOutput) {
  auto ok = proc::run({{"sh", "-c", "echo out; echo err >&2; exit 0"}, {}, {}, {}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->ok());
  EXPECT_EQ(ok->out, "out\n");
  EXPECT_EQ(ok->err, "err\n");
  auto bad = proc::run({{"sh", "-c", "exit 7"}, {}, {}, {}});
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->exit_code, 7);
  EXPECT_EQ(bad->describe_end(), "exit status 7");
  auto killed = proc::run({{"sh", "-c", "kill -9 $$"}, {}, {}, {}});
  ASSERT_TRUE(killed.ok());
  EXPECT_EQ(killed->signal, 9);
  EXPECT_FALSE(killed->ok());
}

TEST(Subprocess, ArgumentsAreNotInterpretedByAShell) {
  auto r = proc::run({{"printf", "%s|", "a b", "$HOME", "; rm -rf /"}, {}, {}, {}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "a b|$HOME|; rm -rf /|");
}

TEST(Subprocess, MissingProgramIsAnError) {
  auto r = proc::run({{"relax-rmrr-no-such-program"}, {}, {}, {}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ExitCode::missing);
  EXPECT_NE(r.error().message.find("relax-rmrr-no-such-program"), std::string::npos);
  EXPECT_FALSE(proc::run({{}, {}, {}, {}}).ok());
}

TEST(Subprocess, EnvironmentAndDirectory) {
  test::TempDir d;
  setenv("RELAX_RMRR_TEST_UNSET_ME", "x", 1);
  auto r = proc::run({{"sh", "-c", "pwd; echo \"[$A][${RELAX_RMRR_TEST_UNSET_ME-gone}]\""},
                      d.path(),
                      {{"A", "set"}, {"RELAX_RMRR_TEST_UNSET_ME", std::nullopt}},
                      {}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, d.path().string() + "\n[set][gone]\n");
}

TEST(Subprocess, PipelineConnectsStdoutToStdin) {
  test::TempDir d;
  ASSERT_TRUE(write_file_text(d.path() / "in", "hello\nworld\n").ok());
  auto r = proc::run_pipeline({{{"cat"}, {}, {}, d.path() / "in"}, {{"tr", "a-z", "A-Z"}, {}, {}, {}}, {{"sort", "-r"}, {}, {}, {}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(r->back().out, "WORLD\nHELLO\n");
  for (const auto& o : *r) EXPECT_TRUE(o.ok());
  // A failing first stage is reported as such; the last still ends (EOF on its stdin).
  auto f = proc::run_pipeline({{{"sh", "-c", "echo partial; exit 3"}, {}, {}, {}}, {{"cat"}, {}, {}, {}}});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)[0].exit_code, 3);
  EXPECT_EQ((*f)[1].out, "partial\n");
}

TEST(Subprocess, LargeOutputOnBothStreamsDoesNotDeadlock) {
  auto r = proc::run({{"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' a; head -c 3000000 /dev/zero | tr '\\0' b >&2"}, {}, {}, {}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out.size(), 3000000u);
  EXPECT_EQ(r->err.size(), 3000000u);
}

TEST(Subprocess, Helpers) {
  EXPECT_EQ(proc::last_lines("a\n\nb\nc\n\n", 2), "b\nc");
  EXPECT_EQ(proc::last_lines("", 3), "");
  EXPECT_EQ(proc::quote_argv({"make", "-C", "/a b", "M=/x", "it's"}), "make -C '/a b' M=/x 'it'\\''s'");
  EXPECT_TRUE(proc::find_program("sh").has_value());
  EXPECT_FALSE(proc::find_program("relax-rmrr-no-such-program").has_value());
}

}  // namespace
