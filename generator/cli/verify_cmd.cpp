// relax-rmrr verify: does this source build the target kernel's code? The check `build` runs before it writes a
// module, alone (for fleets that build elsewhere): compile original and patched, plan the replacement, then
// compare the functions and struct layouts the livepatch relies on with the kernel (verify/verify.h).
#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/output.h"
#include "pipeline/check.h"
#include "verify/verify.h"

#include <fmt/core.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct VerifyOptions {
  KernelOptions kernel;
  std::string source;
  std::vector<std::string> objects;  // ORIGINAL.o PATCHED.o compiled elsewhere: no source or compiler here
  std::string text = "auto";
  std::string keep_tmp;
  bool json = false;
  bool quiet = false;
};

int run_verify(const VerifyOptions& o) {
  pipeline::CheckRequest req;
  req.kernel = to_analyze_inputs(o.kernel);
  req.source = o.source;
  if (!o.objects.empty()) req.objects = std::make_pair(fs::path(o.objects.at(0)), fs::path(o.objects.at(1)));
  req.text = o.text == "image"   ? verify::TextPreference::image
             : o.text == "kcore" ? verify::TextPreference::kcore
                                 : verify::TextPreference::automatic;
  req.keep_work_dir = o.keep_tmp;
  Progress progress(pipeline::check_steps(req), o.quiet || o.json);
  auto checked = pipeline::check_source(req, progress);
  if (!checked) return report_error(checked.error());
  const pipeline::PreparedChange& c = *checked->change;
  const analysis::LoadedKernel* kernel = &c.kernel;
  const verify::Report* report = &checked->report;
  const bool from_objects = req.objects.has_value();

  if (o.json) {
    Json j = verify::to_json(*report);
    j.set("kernel_release", kernel->release);
    if (from_objects) j.set("objects", Json::strings(o.objects));
    else j.set("source", source::to_json(c.tree));
    if (!report->ok()) j.set("error", error_json(verify::refusal(*report)));
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
      fmt::print("  {} struct layouts ({} members) compared with BTF{}\n", report->layouts.size(), members, report->ok() ? "" : "");
    for (const auto& l : report->layouts)
      if (!l.ok()) fmt::print("  DIFFER struct {}: {}\n", l.name, l.problem);
    for (const auto& n : report->notes) fmt::print("  note: {}\n", n);
    fmt::print("{}\n", report->ok() ? "The source matches the kernel." : "The source does NOT match the kernel.");
  }
  if (!report->ok()) return report_error(verify::refusal(*report));  // with --json the report on stdout carries it
  return 0;
}

}  // namespace

Command add_verify_command(CLI::App& root) {
  auto o = std::make_shared<VerifyOptions>();
  CLI::App* app =
      root.add_subcommand("verify", "Check that a kernel source builds exactly the target kernel's code (what build checks first)");
  add_kernel_options(app, o->kernel);
  auto* source = add_source_option(app, o->source);
  app->add_option("--objects", o->objects,
                  "ORIGINAL.o PATCHED.o compiled elsewhere (build --keep-tmp DIR leaves them in DIR/compile/): check them "
                  "against this kernel with no source, compiler or headers here (no struct layout check then)")
      ->expected(2)
      ->check(CLI::ExistingFile)
      ->excludes(source);
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
      "Fleets: build once (relax-rmrr build --keep-tmp DIR), then on each host, as root, with nothing but this tool:\n"
      "  relax-rmrr verify --objects DIR/compile/original/iommu.o DIR/compile/patched/iommu.o\n"
      "Exit codes: 0 the source matches, 2 malformed input, 3 something missing, 4 mismatch (refused), 5 not permitted.");
  return {app, [o] { return run_verify(*o); }};
}

}  // namespace rr::cli
