// relax-rmrr build: options in, pipeline::build_module() (pipeline/build.h), the result out.
#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "pipeline/build.h"

#include <fmt/core.h>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

// The options bind straight into the request, but for the kernel's (cli/kernel_options.h).
struct BuildOptions {
  KernelOptions kernel;
  pipeline::BuildRequest request;
  bool json = false;
  bool quiet = false;
};

int run_build(const BuildOptions& o) {
  pipeline::BuildRequest req = o.request;
  req.kernel = to_analyze_inputs(o.kernel);
  Progress progress(pipeline::kBuildSteps, o.quiet);
  pipeline::Refusal refusal;
  auto built = pipeline::build_module(req, progress, &refusal);
  if (!built) {
    // A refusal with --json still says on stdout what was compared and where it differs, as `verify --json` does.
    if (o.json && !refusal.report.text_from.empty()) {
      Json j = Json::object();
      j.set("built", false);
      j.set("kernel_release", refusal.kernel_release);
      j.set("verify", verify::to_json(refusal.report));
      j.set("error", error_json(built.error()));
      print_json(j);
    }
    return report_error(built.error());
  }
  if (o.json) {
    print_json(pipeline::to_json(*built, req));
    return 0;
  }
  const pipeline::BuiltModule& b = *built;
  const klp::Plan& plan = b.change->plan;
  fmt::print("Built {} for {}\n", b.output.string(), b.change->kernel.release);
  for (const auto& f : plan.replace) fmt::print("  replaces {} (sympos {}): {}\n", f.name, f.sympos, f.why);
  for (const auto& f : b.klp->carried_functions) fmt::print("  carries  {} (the kernel inlined it)\n", f);
  fmt::print("  {} livepatch relocations against {} kernel symbols{}\n", b.module->conversion.klp_relocations,
             b.module->conversion.klp_symbols, b.module->is_signed ? ", signed" : ", unsigned");
  if (b.ibt.enabled)
    fmt::print("  IBT: {} address-taken kernel function(s), {} sealed; {} function(s) start with ENDBR64\n", b.ibt.address_taken.size(),
               b.ibt.sealed_hits, b.ibt.endbr_checked.size());
  for (const auto& n : plan.notes) fmt::print("  note: {}\n", n);
  fmt::print("Load it with: sudo relax-rmrr load {}\n", b.output.string());
  return 0;
}

}  // namespace

Command add_build_command(CLI::App& root) {
  auto o = std::make_shared<BuildOptions>();
  CLI::App* app = root.add_subcommand("build", "Build the relax-rmrr livepatch module for a kernel (default: the running one)");
  add_kernel_options(app, o->kernel);
  add_source_option(app, o->request.source);
  app->add_option("--output,-o", o->request.output, "Where to write the module (default: NAME.ko here)");
  app->add_option("--name", o->request.module_name, "Module and livepatch name: /sys/kernel/livepatch/NAME")
      ->capture_default_str()
      ->check(module_name_check());
  auto* key = app->add_option("--sign-key", o->request.sign_key, "Private key for scripts/sign-file (Secure Boot, enforced signatures)");
  auto* cert = app->add_option("--sign-cert", o->request.sign_cert, "Certificate matching --sign-key");
  key->needs(cert);
  cert->needs(key);
  app->add_option("--keep-tmp", o->request.keep_work_dir, "Keep the work directory (objects, glue, kbuild logs) in DIR");
  app->add_flag("--json", o->json, "Print a JSON summary on stdout");
  app->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  app->add_flag("--force", o->request.force,
                "Build even if the source does not match the kernel's code (DANGEROUS; recorded in the module's modinfo)");
  app->footer(
      "Steps: analyse the kernel, find its intel-iommu source, apply the relax transform, compile original and patched\n"
      "through the kernel's kbuild tree, find the functions that really changed, cut them into a klp object, link it.\n"
      "Example: relax-rmrr build --kallsyms kallsyms.txt --image vmlinuz --kbuild /usr/src/linux-headers-6.1.0-56-amd64 \\\n"
      "           --source /usr/src/linux-source-6.1.tar.xz -o relax_rmrr.ko\n"
      "Exit codes: 0 built, 2 malformed input, 3 something missing, 4 refused (unsafe to build), 5 not permitted.");
  return {app, [o] { return run_build(*o); }};
}

}  // namespace rr::cli
