// The `devices` grammar (templates/relax_rmrr_devices.h): one definition for the module and the tool. Every case
// below goes through the tool's parser (C++) and through the same header compiled as the kernel compiles C
// (gcc -std=gnu11 with the kernel's declaration rule), and both must agree with the expected answer.
#include "host/device_selection.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace rr::host {
namespace {

struct Case {
  std::string input;
  std::string normalised;  // the text read back; "!" when the input is refused
};

const std::vector<Case> kCases = {
    {"", ""},
    {"\n", ""},
    {"03:00.0", "0000:03:00.0"},
    {"0000:03:00.0\n", "0000:03:00.0"},
    {"0000:05:00.1,03:00.0", "0000:03:00.0,0000:05:00.1"},
    {"03:00.0,0000:03:00.0", "0000:03:00.0"},
    {"1:2.3", "0000:01:02.3"},
    {"AbCd:Ef:1F.7", "abcd:ef:1f.7"},
    {"10000:00:1f.7", "10000:00:1f.7"},
    {"7fffffff:00:1f.7", "7fffffff:00:1f.7"},
    {"00010000:00:1f.7", "10000:00:1f.7"},
    {"03:00", "!"},
    {"03:00.8", "!"},
    {"03:20.0", "!"},
    {"100:00.0", "!"},
    {"0000:100:00.0", "!"},
    {"80000000:00:00.0", "!"},
    {"123456789:00:00.0", "!"},
    {"03:00.0,", "!"},
    {",03:00.0", "!"},
    {"03:00.0,,05:00.0", "!"},
    {"03:00.0 05:00.0", "!"},
    {"03:00.0;", "!"},
    {"g3:00.0", "!"},
    {"03:00.0\n\n", "!"},
    {std::string(1100, '0'), "!"},
};

std::string many(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += fmt::format("{}{:02x}:00.0", i ? "," : "", i);
  return s;
}

TEST(DeviceSelection, TheToolParsesEveryCaseAsExpected) {
  for (const auto& c : kCases) {
    auto s = parse_device_selection(c.input);
    if (c.normalised == "!") {
      ASSERT_FALSE(s) << "accepted: '" << c.input << "'";
      EXPECT_EQ(s.error().code, ExitCode::bad_input);
    } else {
      ASSERT_TRUE(s) << "'" << c.input << "': " << s.error().message;
      EXPECT_EQ(s->text, c.normalised) << c.input;
    }
  }
  EXPECT_TRUE(parse_device_selection(many(64)));
  auto too_many = parse_device_selection(many(65));
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message.find("more addresses"), std::string::npos);
}

TEST(DeviceSelection, SelectsTheListedDevicesOrEveryDeviceWhenEmpty) {
  auto some = parse_device_selection("03:00.0,0001:05:00.1");
  ASSERT_TRUE(some);
  EXPECT_TRUE(some->selects("0000:03:00.0"));
  EXPECT_TRUE(some->selects("0001:05:00.1"));
  EXPECT_FALSE(some->selects("0000:05:00.1"));  // another domain
  EXPECT_FALSE(some->selects("0000:03:00.1"));
  EXPECT_FALSE(some->selects("not-an-address"));
  auto all = parse_device_selection("");
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->all());
  EXPECT_TRUE(all->selects("0000:03:00.0"));
}

TEST(DeviceSelection, TheModuleHeaderCompiledAsKernelCAgreesWithTheTool) {
  test::TempDir dir;
  // The driver prints, per input line (with \n standing for a newline), the normalised text or "!".
  std::string driver = R"(#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "relax_rmrr_devices.h"
int main(void)
{
	static char line[4096];
	while (fgets(line, sizeof line, stdin)) {
		char text[4096], out[2048];
		size_t len = 0, i, at;
		struct relax_rmrr_devices list;
		for (i = 0; line[i] && line[i] != '\n'; i++) {
			if (line[i] == '\\' && line[i + 1] == 'n') { text[len++] = '\n'; i++; } else text[len++] = line[i];
		}
		if (relax_rmrr_parse_devices(text, len, &list, &at) != RELAX_RMRR_DEVICES_OK) { puts("!"); continue; }
		relax_rmrr_format_devices(&list, out, sizeof out);
		puts(out);
	}
	return 0;
}
)";
  ASSERT_TRUE(write_file_text(dir.path() / "driver.c", driver));
  std::string input, expected;
  for (const auto& c : kCases) {
    std::string escaped;
    for (char ch : c.input) escaped += ch == '\n' ? std::string("\\n") : std::string(1, ch);
    input += escaped + "\n";
    expected += c.normalised + "\n";
  }
  input += many(64) + "\n" + many(65) + "\n";
  expected += parse_device_selection(many(64))->text + "\n!\n";
  ASSERT_TRUE(write_file_text(dir.path() / "cases.txt", input));
  auto built =
      test::run_command(fmt::format("gcc -std=gnu11 -Wall -Wextra -Wdeclaration-after-statement -Werror -I'{}/templates' -o '{}' '{}'",
                                    RELAX_RMRR_SOURCE_DIR, (dir.path() / "driver").string(), (dir.path() / "driver.c").string()));
  ASSERT_EQ(built.exit_code, 0) << built.output;
  auto ran = test::run_command(fmt::format("'{}' < '{}'", (dir.path() / "driver").string(), (dir.path() / "cases.txt").string()));
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_EQ(ran.output, expected);
}

}  // namespace
}  // namespace rr::host
