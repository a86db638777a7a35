// relax-rmrr build: the whole pipeline, analysis -> source -> build -> diff -> klp, for one target kernel.
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/pipeline.h"
#include "klp/ibt_guard.h"
#include "klp/klp_object.h"
#include "klp/module.h"
#include "verify/verify.h"

#include <fmt/core.h>

#include <chrono>
#include <optional>
#include <thread>

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

int run_build(const BuildOptions& o) {
  Progress progress(kPrepareSteps + 3, o.quiet);
  WorkDir work(o.keep_tmp, "build");
  // kbuild's module make starts as soon as the kbuild tree is known and waits for the plan (klp/module.h): its
  // start-up overlaps the compiles. Declared after the work directory, so it is waited for before that goes.
  std::unique_ptr<klp::EarlyModuleLink> early_link;
  std::vector<std::string> early_make_variables;
  auto start_module_link = [&](const fs::path& kbuild_dir) {
    klp::ModuleRequest r;
    r.kbuild_dir = kbuild_dir;
    r.work_dir = work.path() / "module";
    r.module_name = o.name;
    // The compiler as compile_pair() passes it (build/compile.h); checked against it once the compiles are done.
    if (auto tc = build::target_compiler(kbuild_dir); tc && tc->found)
      if (auto cc = build::make_cc(tc->program); !cc.empty()) r.make_variables.push_back("CC=" + cc);
    early_make_variables = r.make_variables;
    if (auto started = klp::EarlyModuleLink::start(r)) early_link = std::move(*started);
  };
  auto prepared = prepare_change(o.kernel, o.source, work.path(), progress, start_module_link);
  if (!prepared) return report_error(prepared.error());
  PreparedChange& c = **prepared;
  const analysis::LoadedKernel* kernel = &c.kernel;
  Json& timings = c.timings;

  // The klp object and the module depend on the plan, not on verify's outcome (only `forced`, set by --force
  // over a mismatch, goes into the module): they are cut and linked, unsigned, in the work directory while
  // verify runs (kbuild's module link and verify's compile overlap on two cores). Nothing is signed
  // or written to the output before verify has passed; a forced build links again with the flag recorded.
  klp::ModuleRequest mreq;
  mreq.kbuild_dir = kernel->kbuild->dir;
  mreq.work_dir = work.path() / "module";
  mreq.module_name = o.name;
  mreq.kernel_release = kernel->release;
  mreq.tool_version = RELAX_RMRR_VERSION;
  mreq.require_direct_callbacks = c.era == analysis::Era::require_direct;
  if (!c.compiled.cc.empty()) mreq.make_variables.push_back("CC=" + c.compiled.cc);
  klp::ModuleRequest unsigned_req = mreq;  // no key: signing waits for verify
  if (early_link && early_make_variables != mreq.make_variables) early_link.reset();  // another CC: link after the plan
  if (!o.sign_key.empty()) mreq.sign_key = fs::path(o.sign_key);
  if (!o.sign_cert.empty()) mreq.sign_cert = fs::path(o.sign_cert);

  auto layouts = klp::layouts_from_btf(*kernel->btf);
  if (!layouts) return report_error(layouts.error());
  klp::KlpObjectRequest kreq;
  for (const auto& f : c.plan.replace) kreq.functions.push_back(f.name);
  klp::TargetLookup lookup = [&](const std::string& n) { return c.symbols->lookup(n); };
  std::optional<Result<klp::KlpObject>> klp_object;
  std::optional<Result<klp::ModuleResult>> module;
  double klp_seconds = 0, link_seconds = 0;
  std::thread linker([&] {
    auto t0 = std::chrono::steady_clock::now();
    klp_object.emplace(klp::build_klp_object(c.patched, kreq, lookup, *layouts));
    auto t1 = std::chrono::steady_clock::now();
    klp_seconds = std::chrono::duration<double>(t1 - t0).count();
    if (klp_object->ok())
      module.emplace(early_link ? early_link->finish(**klp_object, unsigned_req) : klp::build_module(**klp_object, unsigned_req));
    link_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  });
  struct JoinAtExit {
    std::thread& t;
    ~JoinAtExit() {
      if (t.joinable()) t.join();
    }
  } join_linker{linker};

  // Verify (verify/verify.h): the source must build the kernel's own code before anything is written.
  progress.begin("comparing the source with the kernel's code");
  verify::Report verify_report;
  auto forced = verify::gate_build(verify::inputs_after_plan(c.kernel, c.original, c.patched, *c.symbols, c.plan, c.compiled.original,
                                                             kernel->kbuild->dir, work.path() / "verify"),
                                   o.force, &verify_report);
  if (!forced) {
    linker.join();  // its make must be done before the work directory goes
    // A refusal with --json still says on stdout what was compared and where it differs, as `verify --json` does.
    if (o.json && !verify_report.text_from.empty()) {
      Json j = Json::object();
      j.set("built", false);
      j.set("kernel_release", kernel->release);
      j.set("verify", verify::to_json(verify_report));
      j.set("error", error_json(forced.error()));
      print_json(j);
    }
    return report_error(forced.error());
  }
  timings.set("verify", progress.end());

  progress.begin("cutting the klp object");
  linker.join();
  if (!*klp_object) return report_error(klp_object->error());
  // IBT (klp/ibt_guard.h): no address-taking reference to a function the kernel seals, replacements keep ENDBR64.
  klp::IbtTarget ibt_target = klp::ibt_target(*kernel);
  klp::IbtReport ibt;
  if (auto s = klp::check_klp_object(**klp_object, *layouts, ibt_target, ibt); !s) return report_error(s.error());
  progress.end();
  timings.set("klp_object", klp_seconds);

  progress.begin("linking, converting and signing the module");
  auto link_started = std::chrono::steady_clock::now();
  mreq.forced = *forced;
  if (mreq.forced) {
    module.emplace(klp::build_module(**klp_object, mreq));  // again, with relax_rmrr_forced=yes (and signed)
  } else if (*module) {
    if (auto s = klp::sign_module(**module, mreq); !s) return report_error(s.error());
  }
  if (!*module) return report_error(module->error());
  if (ibt.enabled) {  // what the kernel calls through the module's pointers (klp callbacks, init) starts with ENDBR64
    auto ko = obj::load((*module)->ko);
    if (!ko) return report_error(ko.error().with_context("IBT check of the linked module"));
    std::vector<std::string> replacements;
    for (const auto& r : (*klp_object)->replaced) replacements.push_back(r.new_symbol);
    if (auto s = klp::check_module_endbr(*ko, replacements, ibt_target, ibt); !s) return report_error(s.error());
  }
  const klp::KlpObject& klp_built = **klp_object;
  const klp::ModuleResult& module_built = **module;
  fs::path output = o.output.empty() ? fs::path(o.name + ".ko") : fs::path(o.output);
  std::error_code ec;
  fs::copy_file(module_built.ko, output, fs::copy_options::overwrite_existing, ec);
  if (ec) return report_error(make_error(ExitCode::environment, "cannot write {}: {}", output.string(), ec.message()));
  progress.end();
  // The module's own time: the link that ran alongside verify, plus what came after verify (signing, copying).
  timings.set("module", link_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - link_started).count());

  if (o.json) {
    Json j = Json::object();
    j.set("built", true);
    j.set("module", fs::absolute(output).string());
    j.set("name", o.name);
    j.set("kernel_release", kernel->release);
    j.set("era", std::string(analysis::era_name(c.era)));
    Json symbols = Json::object();  // where sympos, inlining decisions and verify's sizes came from
    symbols.set("kind", std::string(analysis::source_name(kernel->symbols->source())));
    symbols.set("from", kernel->symbols->origin());
    symbols.set("count", kernel->symbols->size());
    j.set("symbols", std::move(symbols));
    j.set("source", source::to_json(c.tree));
    j.set("changed", diff::to_json(c.diff));
    j.set("plan", klp::to_json(c.plan));
    j.set("compile", build::to_json(c.compiled));
    j.set("verify", verify::to_json(verify_report));
    j.set("forced", *forced);
    j.set("klp", klp::to_json(klp_built));
    j.set("ibt", klp::to_json(ibt));
    Json conv = Json::object();
    conv.set("klp_symbols", module_built.conversion.klp_symbols);
    conv.set("klp_relocations", module_built.conversion.klp_relocations);
    conv.set("klp_sections", module_built.conversion.klp_sections);
    j.set("conversion", std::move(conv));
    j.set("signed", module_built.is_signed);
    // How kbuild linked it: started alongside the compiles ("early"), or after the plan ("after plan", with why).
    Json link = Json::object();
    link.set("early", early_link && !early_link->fell_back());
    link.set("fallback", early_link && early_link->fell_back() ? Json(early_link->fallback_reason()) : Json(nullptr));
    j.set("module_link", std::move(link));
    j.set("timings", std::move(timings));
    print_json(j);
  } else {
    fmt::print("Built {} for {}\n", output.string(), kernel->release);
    for (const auto& f : c.plan.replace) fmt::print("  replaces {} (sympos {}): {}\n", f.name, f.sympos, f.why);
    for (const auto& f : klp_built.carried_functions) fmt::print("  carries  {} (the kernel inlined it)\n", f);
    fmt::print("  {} livepatch relocations against {} kernel symbols{}\n", module_built.conversion.klp_relocations,
               module_built.conversion.klp_symbols, module_built.is_signed ? ", signed" : ", unsigned");
    if (ibt.enabled)
      fmt::print("  IBT: {} address-taken kernel function(s), {} sealed; {} function(s) start with ENDBR64\n", ibt.address_taken.size(),
                 ibt.sealed_hits, ibt.endbr_checked.size());
    for (const auto& n : c.plan.notes) fmt::print("  note: {}\n", n);
    fmt::print("Load it with: sudo relax-rmrr load {}\n", output.string());
  }
  return 0;
}

}  // namespace

Command add_build_command(CLI::App& root) {
  auto o = std::make_shared<BuildOptions>();
  CLI::App* app = root.add_subcommand("build", "Build the relax-rmrr livepatch module for a kernel (default: the running one)");
  add_kernel_options(app, o->kernel);
  add_source_option(app, o->source);
  app->add_option("--output,-o", o->output, "Where to write the module (default: NAME.ko here)");
  app->add_option("--name", o->name, "Module and livepatch name: /sys/kernel/livepatch/NAME")->capture_default_str();
  auto* key = app->add_option("--sign-key", o->sign_key, "Private key for scripts/sign-file (Secure Boot, enforced signatures)");
  auto* cert = app->add_option("--sign-cert", o->sign_cert, "Certificate matching --sign-key");
  key->needs(cert);
  cert->needs(key);
  app->add_option("--keep-tmp", o->keep_tmp, "Keep the work directory (objects, glue, kbuild logs) in DIR");
  app->add_flag("--json", o->json, "Print a JSON summary on stdout");
  app->add_flag("--quiet,-q", o->quiet, "No progress on stderr");
  app->add_flag("--force", o->force,
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
