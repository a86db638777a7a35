// relax-rmrr verify: does this source build the target kernel's code? The check `build` runs before it writes a
// module, alone (for fleets that build elsewhere): compile original and patched, plan the replacement, then
// compare the functions and struct layouts the livepatch relies on with the kernel (verify/verify.h).
#include "analysis/kernel.h"
#include "build/compile.h"
#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/output.h"
#include "diff/function_diff.h"
#include "klp/plan.h"
#include "source/source.h"
#include "source/transform.h"
#include "verify/verify.h"

#include <fmt/core.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct VerifyOptions {
  KernelOptions kernel;
  std::string source;
  std::string text = "auto";
  std::string keep_tmp;
  bool json = false;
  bool quiet = false;
};

int run_verify(const VerifyOptions& o) {
  Progress progress(4, o.quiet || o.json);
  fs::path work;
  bool keep = !o.keep_tmp.empty();
  if (keep) {
    work = fs::absolute(o.keep_tmp);
    std::error_code ec;
    fs::create_directories(work, ec);
  } else {
    std::string tmpl = (fs::temp_directory_path() / "relax-rmrr-verify-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return report_error(make_error(ExitCode::environment, "cannot create a work directory in {}", fs::temp_directory_path().string()));
    work = tmpl;
  }
  struct Cleanup {
    fs::path p;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(p, ec);
    }
  } cleanup{work, keep};

  progress.begin("analysing the target kernel");
  auto kernel = analysis::load_kernel(to_analyze_inputs(o.kernel));
  if (!kernel) return report_error(kernel.error());
  if (!kernel->symbols || !kernel->kbuild)
    return report_error(make_error(ExitCode::missing, "verify needs the target's symbols and kbuild tree (see relax-rmrr analyze)"));
  progress.end();

  progress.begin("finding the source and compiling it");
  Result<source::SourceTree> tree = make_error(ExitCode::missing, "no source");
  if (!o.source.empty()) tree = source::locate(o.source);
  else {
    auto candidates = source::distro_source_tarballs(kernel->release);
    if (candidates.empty()) {
      Error e = make_error(ExitCode::missing, "no kernel source given and none found in /usr/src for {}", kernel->release);
      e.hint = "pass --source TARBALL|DIR";
      return report_error(e);
    }
    tree = source::locate(candidates.front());
  }
  if (!tree) return report_error(tree.error());
  auto text = read_file_text(tree->iommu_c);
  if (!text) return report_error(text.error());
  auto transform = source::relax_transform(*text, tree->iommu_c_relative);
  if (!transform) return report_error(transform.error());
  build::CompileOptions copts;
  copts.kbuild = kernel->kbuild->dir;
  copts.work_dir = work / "compile";
  auto compiled = build::compile_source(*tree, *transform, copts);
  if (!compiled) return report_error(compiled.error());
  progress.end();

  progress.begin("planning the replacement");
  auto original = obj::load(compiled->original.object);
  if (!original) return report_error(original.error());
  auto patched = obj::load(compiled->patched.object);
  if (!patched) return report_error(patched.error());
  auto diff = diff::compare(*original, *patched);
  if (!diff) return report_error(diff.error());
  klp::KernelSymbols ksyms(*kernel->symbols, kernel->symvers ? &*kernel->symvers : nullptr, *original);
  auto plan = klp::plan_replacements(*diff, *patched, ksyms, kernel->traceable ? &*kernel->traceable : nullptr);
  if (!plan) return report_error(plan.error());
  progress.end();

  progress.begin("comparing with the kernel");
  verify::VerifyInputs in = verify::inputs_after_plan(*kernel, *original, *patched, ksyms, *plan, compiled->original,
                                                      kernel->kbuild->dir, work / "layout-probe");
  in.text = o.text == "image" ? verify::TextPreference::image : o.text == "kcore" ? verify::TextPreference::kcore : verify::TextPreference::automatic;
  auto report = verify::verify(in);
  if (!report) return report_error(report.error());
  progress.end();

  if (o.json) {
    Json j = verify::to_json(*report);
    j.set("kernel_release", kernel->release);
    j.set("source", source::to_json(*tree));
    print_json(j);
  } else {
    fmt::print("Compared with {}\n", report->text_from);
    for (const auto& f : report->functions)
      fmt::print("  {:<6} {} ({}, {} bytes, {} relocation values confirmed, {} bytes masked){}\n", f.comparison.equal() ? "same" : "DIFFER",
                 f.comparison.name, f.role, f.comparison.object_size, f.comparison.relocations_checked, f.comparison.masked_bytes,
                 f.comparison.equal() ? "" : ": " + f.comparison.difference_note);
    for (const auto& n : report->not_comparable) fmt::print("  n/a    {}\n", n);
    size_t members = 0;
    for (const auto& l : report->layouts) members += l.members.size();
    if (report->layouts_checked)
      fmt::print("  {} struct layouts ({} members) compared with BTF{}\n", report->layouts.size(), members,
                 report->ok() ? "" : "");
    for (const auto& l : report->layouts)
      if (!l.ok()) fmt::print("  DIFFER struct {}: {}\n", l.name, l.problem);
    for (const auto& n : report->notes) fmt::print("  note: {}\n", n);
    fmt::print("{}\n", report->ok() ? "The source matches the kernel." : "The source does NOT match the kernel.");
  }
  if (!report->ok()) return report_error(verify::refusal(*report));  // with --json too: stdout has the report, stderr the verdict
  return 0;
}

}  // namespace

Command add_verify_command(CLI::App& root) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* app = root.add_subcommand("verify", "Check that a kernel source builds exactly the target kernel's code (what build checks first)");
  add_kernel_options(app, o->kernel);
  app->add_option("--source", o->source, "Kernel source: a linux-source tarball, a kernel tree, or a directory with drivers/iommu");
  app->add_option("--text", o->text, "Where the kernel's code is read: auto (kcore for the running kernel, else the image), image, kcore")
      ->check(CLI::IsMember({"auto", "image", "kcore"}))
      ->capture_default_str();
  app->add_option("--keep-tmp", o->keep_tmp, "Keep the work directory (objects, layout probe) in DIR");
  app->add_flag("--json", o->json, "Print the report as JSON on stdout");
  app->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  app->footer(
      "Compares every function the livepatch replaces or relies on, compiled from the ORIGINAL source, with the kernel's\n"
      "code (relocation fields masked and, where the kernel names the target, checked; on /proc/kcore also the sites the\n"
      "kernel patches at run time), and the structs they touch with the kernel's BTF.\n"
      "Exit codes: 0 the source matches, 2 malformed input, 3 something missing, 4 mismatch (refused), 5 not permitted.");
  return {app, [o] { return run_verify(*o); }};
}

}  // namespace rr::cli
