// relax-rmrr patch: the same change as a kernel source patch.
//   --format full    the boot option intel_iommu=relax_rmrr, for people who build their kernel (kernel-patch/)
//   --format kpatch  always on, the livepatch's own edit, for kpatch-build / scripts/livepatch/klp-build (kpatch/)
// The patch is rendered from the given tree itself and checked with `patch -p1 --dry-run` before anything is
// written; on any error nothing is written.
#include "cli/commands.h"
#include "cli/output.h"
#include "common/atomic_file.h"
#include "common/file.h"
#include "source/kernel_patch.h"
#include "source/source.h"

#include <fmt/core.h>

#include <unistd.h>
#include <cstdio>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct PatchOptions {
  std::string format = "full";
  std::string source;
  std::string output;  // empty or "-": stdout
  bool json = false;
  bool no_check = false;
};

int run_patch(const PatchOptions& o) {
  auto format = source::parse_format(o.format);
  if (!format) return report_error(format.error());
  if (o.source.empty()) {
    Error e = make_error(ExitCode::bad_input, "--source is required");
    e.hint = "pass a linux-source tarball or a kernel tree: relax-rmrr patch --format " + o.format +
             " --source /usr/src/linux-source-6.1.tar.xz";
    return report_error(e);
  }
  auto tree = source::locate(o.source);
  if (!tree) return report_error(tree.error());
  auto text = read_file_text(tree->iommu_c, 64u << 20);
  if (!text) return report_error(text.error());
  auto patch = source::make_kernel_patch(*tree, *text, *format, RELAX_RMRR_VERSION);
  if (!patch) return report_error(patch.error());
  if (!o.no_check) {
    // The tarball cache and a tree hold the driver at <root>/<path>: the check is patch's own verdict there.
    if (auto s = source::check_patch_applies(tree->root, patch->text); !s) return report_error(s.error());
  }
  const bool to_stdout = o.output.empty() || o.output == "-";
  if (to_stdout && o.json) {
    Error e = make_error(ExitCode::bad_input, "--json needs --output FILE (stdout carries the JSON summary)");
    return report_error(e);
  }
  if (to_stdout) {
    std::fwrite(patch->text.data(), 1, patch->text.size(), stdout);
    std::fflush(stdout);
  } else if (auto s = write_file_atomically(o.output, patch->text); !s) {
    return report_error(s.error());
  }
  for (const auto& n : patch->notes) warn(n);

  if (o.json) {
    Json j = source::to_json(*patch);
    j.set("output", fs::absolute(o.output).string());
    j.set("checked", !o.no_check);
    j.set("source", source::to_json(*tree));
    print_json(j);
  } else if (!to_stdout) {
    fmt::print("Wrote {} ({} patch, {} of {}, era {}){}\n", o.output, source::format_name(*format), patch->path,
               tree->version ? "Linux " + tree->version->str() : std::string("the tree"), patch->era,
               o.no_check ? "" : "; `patch -p1 --dry-run` applies it to the source");
    if (*format == source::PatchFormat::full)
      fmt::print("Apply it at the top of the kernel tree with `patch -p1 < {}`, build, and boot with intel_iommu=on,relax_rmrr.\n",
                 o.output);
    else
      fmt::print("Build a live patch with `kpatch-build {}` (kpatch) or `./scripts/livepatch/klp-build {}` (Linux 6.19+).\n", o.output,
                 o.output);
  }
  return 0;
}

}  // namespace

Command add_patch_command(CLI::App& root) {
  auto o = std::make_shared<PatchOptions>();
  CLI::App* app = root.add_subcommand("patch", "Write the change as a kernel source patch (full: boot option; kpatch: always on)");
  app->add_option("--format", o->format,
                  "full: adds the boot option intel_iommu=relax_rmrr (off by default); "
                  "kpatch: the livepatch's edit, always on, for kpatch-build or klp-build")
      ->check(CLI::IsMember({"full", "kpatch"}))
      ->capture_default_str();
  app->add_option("--source", o->source, "The kernel source the patch is for: a linux-source tarball or a kernel tree")->required();
  app->add_option("--output,-o", o->output, "Where to write the patch (default: stdout)");
  app->add_flag("--json", o->json, "Print a JSON summary on stdout (needs --output)");
  app->add_flag("--no-check", o->no_check, "Do not run `patch -p1 --dry-run` on the source");
  app->footer(
      "The patch is generated from the given source (5.3-5.7 drivers/iommu/intel-iommu.c, 5.8 and later\n"
      "drivers/iommu/intel/iommu.c) by the parser-based transform the livepatch uses, and checked to apply.\n"
      "Example: relax-rmrr patch --format full --source /usr/src/linux-source-6.1.tar.xz -o relax-rmrr.patch\n"
      "Exit codes: 0 written, 2 malformed input (not a kernel source, unexpected driver shape, already patched),\n"
      "3 something missing (file, the patch program), 5 cannot write.");
  return {app, [o] { return run_patch(*o); }};
}

}  // namespace rr::cli
