// relax-rmrr build: the whole pipeline, analysis -> source -> build -> diff -> klp, for one target kernel.
#include "analysis/kernel.h"
#include "build/compile.h"
#include "cli/commands.h"
#include "cli/kernel_options.h"
#include "cli/output.h"
#include "diff/function_diff.h"
#include "klp/klp_object.h"
#include "klp/module.h"
#include "klp/plan.h"
#include "source/source.h"
#include "source/transform.h"
#include "verify/verify.h"

#include <fmt/core.h>

#include <cstdlib>
#include <unistd.h>

namespace fs = std::filesystem;

namespace rr::cli {

namespace {

struct BuildOptions {
  KernelOptions kernel;
  std::string source;
  std::string output;
  std::string name = "relax_rmrr";
  std::string sign_key, sign_cert;
  std::string keep_tmp;
  bool json = false;
  bool quiet = false;
  bool force = false;  // build even when verify finds the source does not match (loud, recorded in modinfo)
};

// A private work directory, removed at the end unless the user asked to keep it.
class WorkDir {
 public:
  explicit WorkDir(const std::string& keep) {
    if (!keep.empty()) {
      path_ = fs::absolute(keep);
      keep_ = true;
      fs::create_directories(path_);
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "relax-rmrr-build-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~WorkDir() {
    std::error_code ec;
    if (!keep_ && !path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  bool keep_ = false;
};

Result<source::SourceTree> find_source(const BuildOptions& o, const std::string& release) {
  if (!o.source.empty()) return source::locate(o.source);
  auto candidates = source::distro_source_tarballs(release);
  if (candidates.empty()) {
    Error e = make_error(ExitCode::missing, "no kernel source given and none found in /usr/src for {}", release);
    e.hint = "install your distribution's kernel source (Debian: apt install linux-source-X.Y) or pass --source TARBALL|DIR";
    return e;
  }
  return source::locate(candidates.front());
}

int run_build(const BuildOptions& o) {
  Progress progress(7, o.quiet);
  Json timings = Json::object();
  WorkDir work(o.keep_tmp);
  if (work.path().empty()) return report_error(make_error(ExitCode::environment, "cannot create a work directory in {}", fs::temp_directory_path().string()));

  progress.begin("analysing the target kernel");
  auto kernel = analysis::load_kernel(to_analyze_inputs(o.kernel));
  if (!kernel) return report_error(kernel.error());
  for (const auto& m : kernel->missing)
    if (m.blocking) {
      Error e = make_error(ExitCode::missing, "cannot build for {}: {} is missing", kernel->release, m.what);
      e.hint = m.how;
      return report_error(e);
    }
  if (!kernel->symbols || !kernel->btf || !kernel->kbuild)
    return report_error(make_error(ExitCode::missing, "the target's symbols, BTF and kbuild tree are all needed (see relax-rmrr analyze)"));
  std::string era_reason;
  analysis::BtfFacts btf_facts = analysis::collect_btf_facts(*kernel->btf, {});
  analysis::Era era = analysis::decide_era(&*kernel->symbols, &btf_facts, era_reason);
  if (era == analysis::Era::unknown) {
    Error e = make_error(ExitCode::refused, "cannot tell how this kernel enforces RMRRs: {}", era_reason);
    e.hint = "relax-rmrr analyze shows what was found; a kernel without intel_iommu_attach_device and without "
             "dev_iommu.require_direct is not one relax-rmrr knows";
    return report_error(e);
  }
  timings.set("analyse", progress.end());

  progress.begin("finding the intel-iommu source");
  auto tree = find_source(o, kernel->release);
  if (!tree) return report_error(tree.error());
  auto text = read_file_text(tree->iommu_c);
  if (!text) return report_error(text.error());
  timings.set("source", progress.end());

  progress.begin("applying the relax transform");
  auto transform = source::relax_transform(*text, tree->iommu_c_relative);
  if (!transform) return report_error(transform.error());
  timings.set("transform", progress.end());

  progress.begin("compiling original and patched objects");
  build::CompileOptions copts;
  copts.kbuild = kernel->kbuild->dir;
  copts.work_dir = work.path() / "compile";
  auto compiled = build::compile_source(*tree, *transform, copts);
  if (!compiled) return report_error(compiled.error());
  timings.set("compile", progress.end());

  progress.begin("finding the functions that really changed");
  auto original = obj::load(compiled->original.object);
  if (!original) return report_error(original.error());
  auto patched = obj::load(compiled->patched.object);
  if (!patched) return report_error(patched.error());
  auto diff = diff::compare(*original, *patched);
  if (!diff) return report_error(diff.error());
  klp::KernelSymbols ksyms(*kernel->symbols, kernel->symvers ? &*kernel->symvers : nullptr, *original);
  auto plan = klp::plan_replacements(*diff, *patched, ksyms, kernel->traceable ? &*kernel->traceable : nullptr);
  if (!plan) return report_error(plan.error());
  timings.set("diff", progress.end());

  // Verify (verify/verify.h): the source must build the kernel's own code before anything is written.
  auto forced = verify::gate_build(verify::inputs_after_plan(*kernel, *original, *patched, ksyms, *plan, compiled->original,
                                                             kernel->kbuild->dir, work.path() / "verify"), o.force);
  if (!forced) return report_error(forced.error());

  progress.begin("cutting the klp object");
  auto layouts = klp::layouts_from_btf(*kernel->btf);
  if (!layouts) return report_error(layouts.error());
  klp::KlpObjectRequest kreq;
  for (const auto& f : plan->replace) kreq.functions.push_back(f.name);
  klp::TargetLookup lookup = [&](const std::string& n) { return ksyms.lookup(n); };
  auto klp_object = klp::build_klp_object(*patched, kreq, lookup, *layouts);
  if (!klp_object) return report_error(klp_object.error());
  timings.set("klp_object", progress.end());

  progress.begin("linking, converting and signing the module");
  klp::ModuleRequest mreq;
  mreq.kbuild_dir = kernel->kbuild->dir;
  mreq.work_dir = work.path() / "module";
  mreq.module_name = o.name;
  mreq.kernel_release = kernel->release;
  mreq.tool_version = RELAX_RMRR_VERSION;
  mreq.forced = *forced;
  mreq.require_direct_callbacks = era == analysis::Era::require_direct;
  if (!compiled->cc.empty()) mreq.make_variables.push_back("CC=" + compiled->cc);
  if (!o.sign_key.empty()) mreq.sign_key = fs::path(o.sign_key);
  if (!o.sign_cert.empty()) mreq.sign_cert = fs::path(o.sign_cert);
  auto module = klp::build_module(*klp_object, mreq);
  if (!module) return report_error(module.error());
  fs::path output = o.output.empty() ? fs::path(o.name + ".ko") : fs::path(o.output);
  std::error_code ec;
  fs::copy_file(module->ko, output, fs::copy_options::overwrite_existing, ec);
  if (ec) return report_error(make_error(ExitCode::environment, "cannot write {}: {}", output.string(), ec.message()));
  timings.set("module", progress.end());

  if (o.json) {
    Json j = Json::object();
    j.set("module", fs::absolute(output).string());
    j.set("name", o.name);
    j.set("kernel_release", kernel->release);
    j.set("era", std::string(analysis::era_name(era)));
    j.set("source", source::to_json(*tree));
    j.set("changed", diff::to_json(*diff));
    j.set("plan", klp::to_json(*plan));
    j.set("klp", klp::to_json(*klp_object));
    Json conv = Json::object();
    conv.set("klp_symbols", module->conversion.klp_symbols);
    conv.set("klp_relocations", module->conversion.klp_relocations);
    conv.set("klp_sections", module->conversion.klp_sections);
    j.set("conversion", std::move(conv));
    j.set("signed", module->is_signed);
    j.set("timings", std::move(timings));
    print_json(j);
  } else {
    fmt::print("Built {} for {}\n", output.string(), kernel->release);
    for (const auto& f : plan->replace) fmt::print("  replaces {} (sympos {}): {}\n", f.name, f.sympos, f.why);
    for (const auto& c : klp_object->carried_functions) fmt::print("  carries  {} (the kernel inlined it)\n", c);
    fmt::print("  {} livepatch relocations against {} kernel symbols{}\n", module->conversion.klp_relocations,
               module->conversion.klp_symbols, module->is_signed ? ", signed" : ", unsigned");
    for (const auto& n : plan->notes) fmt::print("  note: {}\n", n);
    fmt::print("Load it with: sudo relax-rmrr load {}\n", output.string());
  }
  return 0;
}

}  // namespace

Command add_build_command(CLI::App& root) {
  auto o = std::make_shared<BuildOptions>();
  CLI::App* app = root.add_subcommand("build", "Build the relax-rmrr livepatch module for a kernel (default: the running one)");
  add_kernel_options(app, o->kernel);
  app->add_option("--source", o->source, "Kernel source: a linux-source tarball, a kernel tree, or a directory with drivers/iommu "
                                         "(default: the distribution's tarball in /usr/src)");
  app->add_option("--output,-o", o->output, "Where to write the module (default: NAME.ko here)");
  app->add_option("--name", o->name, "Module and livepatch name: /sys/kernel/livepatch/NAME")->capture_default_str();
  auto* key = app->add_option("--sign-key", o->sign_key, "Private key for scripts/sign-file (Secure Boot, enforced signatures)");
  auto* cert = app->add_option("--sign-cert", o->sign_cert, "Certificate matching --sign-key");
  key->needs(cert);
  cert->needs(key);
  app->add_option("--keep-tmp", o->keep_tmp, "Keep the work directory (objects, glue, kbuild logs) in DIR");
  app->add_flag("--json", o->json, "Print a JSON summary on stdout");
  app->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  app->add_flag("--force", o->force, "Build even if the source does not match the kernel's code (DANGEROUS; recorded in the module's modinfo)");
  app->footer(
      "Steps: analyse the kernel, find its intel-iommu source, apply the relax transform, compile original and patched\n"
      "through the kernel's kbuild tree, find the functions that really changed, cut them into a klp object, link it.\n"
      "Example: relax-rmrr build --kallsyms kallsyms.txt --image vmlinuz --kbuild /usr/src/linux-headers-6.1.0-56-amd64 \\\n"
      "           --source /usr/src/linux-source-6.1.tar.xz -o relax_rmrr.ko\n"
      "Exit codes: 0 built, 2 malformed input, 3 something missing, 4 refused (unsafe to build), 5 not permitted.");
  return {app, [o] { return run_build(*o); }};
}

}  // namespace rr::cli
