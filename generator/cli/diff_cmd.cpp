// relax-rmrr diff ORIGINAL.o PATCHED.o: which functions really changed between two compiles.
#include "cli/commands.h"
#include "cli/output.h"
#include "diff/function_diff.h"

#include <fmt/core.h>

namespace rr::cli {

Command add_diff_command(CLI::App& root) {
  struct Options {
    std::string original, patched;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  CLI::App* app = root.add_subcommand("diff", "Compare two objects compiled with -ffunction-sections: which functions changed");
  app->add_option("original", o->original, "Object compiled from the original source")->required()->check(CLI::ExistingFile);
  app->add_option("patched", o->patched, "Object compiled from the patched source")->required()->check(CLI::ExistingFile);
  app->add_flag("--json", o->json, "Print the result as JSON");
  app->footer(
      "Line-number and string-offset changes are not changes; .cold pieces belong to their function.\n"
      "Exit codes: 0 compared, 2 unreadable object.");
  return {app, [o] {
            auto a = obj::load(o->original);
            if (!a) return report_error(a.error());
            auto b = obj::load(o->patched);
            if (!b) return report_error(b.error());
            auto d = diff::compare(*a, *b);
            if (!d) return report_error(d.error());
            if (o->json) {
              print_json(diff::to_json(*d));
              return 0;
            }
            fmt::print("{} functions compared, {} differ\n", d->functions_compared, d->functions.size());
            for (const auto& f : d->functions)
              fmt::print("  {:<8} {}{}\n           {}\n", diff::status_name(f.status), f.name, f.is_init ? " (__init)" : "", f.reason);
            for (const auto& x : d->data) fmt::print("  data {:<8} {}: {}\n", diff::status_name(x.status), x.name, x.reason);
            return 0;
          }};
}

}  // namespace rr::cli
