#include "pipeline/build.h"

#include "common/atomic_file.h"
#include "common/file.h"

#include "compile/compile.h"
#include "source/transform.h"

#include <chrono>
#include <thread>

namespace fs = std::filesystem;

namespace rr::pipeline {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The state of one build, and its steps as methods; build_module() below calls them in order.
class BuildJob {
 public:
  BuildJob(const BuildRequest& request, Progress& progress) : req_(request), progress_(progress), work_(request.keep_work_dir, "build") {}
  ~BuildJob() {
    if (linker_.joinable()) linker_.join();  // its make must be done before the work directory goes
  }

  // analysis -> source -> compile -> diff -> plan (pipeline/prepare.h). kbuild's module make starts as soon as
  // the kbuild tree is known and waits for the plan (klp/module.h): its start-up overlaps the compiles.
  Status prepare() {
    RR_ASSIGN(out_.change, prepare_change(req_.kernel, req_.source, work_.path(), progress_,
                                          [this](const fs::path& kbuild) { start_module_link(kbuild); }));
    return ok_status();
  }

  // The klp object and the module depend on the plan, not on verify's outcome (only `forced` goes into the
  // module): they are cut and linked, unsigned, on a thread while verify runs, so that kbuild's link and verify's
  // compile overlap. Nothing is signed or written before verify has passed.
  Status start_klp_and_link();

  // The source must build the kernel's own code (verify/verify.h) before anything is written.
  Status verify(Refusal* refused);

  // The klp object, checked for IBT (klp/ibt_guard.h): no address-taking reference to a sealed function.
  Status finish_klp_object();

  // The module: linked again with the flag when forced, else signed; under IBT, what the kernel calls through
  // the module's pointers must start with ENDBR64.
  Status finish_module();

  Status write_output();

  BuiltModule take_result() { return std::move(out_); }

 private:
  void start_module_link(const fs::path& kbuild_dir);
  klp::ModuleRequest module_request(bool with_key) const;

  const BuildRequest& req_;
  Progress& progress_;
  WorkDir work_;
  std::unique_ptr<klp::EarlyModuleLink> early_link_;  // after work_: waited for before the directory goes
  std::vector<std::string> early_make_variables_;
  klp::SpecialLayouts layouts_;
  std::optional<Result<klp::KlpObject>> klp_object_;
  std::optional<Result<klp::ModuleResult>> module_;
  double klp_seconds_ = 0, link_seconds_ = 0;
  std::thread linker_;
  BuiltModule out_;
};

void BuildJob::start_module_link(const fs::path& kbuild_dir) {
  klp::ModuleRequest r;
  r.kbuild_dir = kbuild_dir;
  r.work_dir = work_.path() / "module";
  r.module_name = req_.module_name;
  // The compiler as compile_pair() passes it (compile/compile.h); checked against it once the compiles are done.
  if (auto tc = compile::target_compiler(kbuild_dir); tc && tc->found)
    if (auto cc = compile::make_cc(tc->program); !cc.empty()) r.make_variables.push_back("CC=" + cc);
  early_make_variables_ = r.make_variables;
  if (auto started = klp::EarlyModuleLink::start(r)) early_link_ = std::move(*started);
}

klp::ModuleRequest BuildJob::module_request(bool with_key) const {
  const PreparedChange& c = *out_.change;
  klp::ModuleRequest m;
  m.kbuild_dir = c.kernel.kbuild->dir;
  m.work_dir = work_.path() / "module";
  m.module_name = req_.module_name;
  m.kernel_release = c.kernel.release;
  m.tool_version = RELAX_RMRR_VERSION;
  m.require_direct_callbacks = c.era == analysis::Era::require_direct;
  if (!c.compiled.cc.empty()) m.make_variables.push_back("CC=" + c.compiled.cc);
  if (with_key && !req_.sign_key.empty()) m.sign_key = req_.sign_key;
  if (with_key && !req_.sign_cert.empty()) m.sign_cert = req_.sign_cert;
  m.forced = out_.forced;
  return m;
}

Status BuildJob::start_klp_and_link() {
  const PreparedChange& c = *out_.change;
  klp::ModuleRequest unsigned_req = module_request(false);
  if (early_link_ && early_make_variables_ != unsigned_req.make_variables) early_link_.reset();  // another CC: link after the plan
  RR_ASSIGN(layouts_, klp::layouts_from_btf(*c.kernel.btf));
  klp::KlpObjectRequest kreq;
  for (const auto& f : c.plan.replace) kreq.functions.push_back(f.name);
  kreq.glue_symbols.emplace_back(source::kSelectionFunction);
  linker_ = std::thread([this, kreq, unsigned_req] {
    const PreparedChange& ch = *out_.change;
    klp::TargetLookup lookup = [&](const std::string& n) { return ch.symbols->lookup(n); };
    auto t0 = std::chrono::steady_clock::now();
    klp_object_.emplace(klp::build_klp_object(ch.patched, kreq, lookup, layouts_));
    auto t1 = std::chrono::steady_clock::now();
    klp_seconds_ = std::chrono::duration<double>(t1 - t0).count();
    if (klp_object_->ok())
      module_.emplace(early_link_ ? early_link_->finish(**klp_object_, unsigned_req) : klp::build_module(**klp_object_, unsigned_req));
    link_seconds_ = seconds_since(t1);
  });
  return ok_status();
}

Status BuildJob::verify(Refusal* refused) {
  const PreparedChange& c = *out_.change;
  progress_.begin("comparing the source with the kernel's code");
  auto inputs = verify::inputs_after_plan(c.kernel, c.original, c.patched, *c.symbols, c.plan, c.compiled.original, c.kernel.kbuild->dir,
                                          work_.path() / "verify");
  auto forced = verify::gate_build(inputs, req_.force, &out_.verify);
  if (!forced) {
    if (refused) *refused = Refusal{out_.verify, c.kernel.release};
    return forced.error();
  }
  out_.forced = *forced;
  out_.timings.set("verify", progress_.end());
  return ok_status();
}

Status BuildJob::finish_klp_object() {
  progress_.begin("cutting the klp object");
  linker_.join();
  if (!*klp_object_) return klp_object_->error();
  klp::IbtTarget target = klp::ibt_target(out_.change->kernel);
  RR_CHECK(klp::check_klp_object(**klp_object_, layouts_, target, out_.ibt));
  progress_.end();
  out_.timings.set("klp_object", klp_seconds_);
  return ok_status();
}

Status BuildJob::finish_module() {
  progress_.begin("linking, converting and signing the module");
  auto started = std::chrono::steady_clock::now();
  klp::ModuleRequest signed_req = module_request(true);
  if (out_.forced) {
    module_.emplace(klp::build_module(**klp_object_, signed_req));  // again, with relax_rmrr_forced=yes (and signed)
  } else if (*module_) {
    RR_CHECK(klp::sign_module(**module_, signed_req));
  }
  if (!*module_) return module_->error();
  if (out_.ibt.enabled) {
    auto ko = obj::load((*module_)->ko);
    if (!ko) return ko.error().with_context("IBT check of the linked module");
    std::vector<std::string> replacements;
    for (const auto& r : (*klp_object_)->replaced) replacements.push_back(r.new_symbol);
    RR_CHECK(klp::check_module_endbr(*ko, replacements, klp::ibt_target(out_.change->kernel), out_.ibt));
  }
  out_.klp = std::move(**klp_object_);
  out_.module = std::move(**module_);
  progress_.end();
  // The module's own time: the link that ran alongside verify, plus what came after verify (signing, copying).
  out_.timings.set("module", link_seconds_ + seconds_since(started));
  return ok_status();
}

Status BuildJob::write_output() {
  out_.output = req_.output.empty() ? fs::path(req_.module_name + ".ko") : req_.output;
  RR_ASSIGN(Bytes ko, read_file_bytes(out_.module->ko));
  RR_CHECK(write_file_atomically(out_.output, std::string_view(reinterpret_cast<const char*>(ko.data()), ko.size())));
  out_.early_link = early_link_ && !early_link_->fell_back();
  if (early_link_ && early_link_->fell_back()) out_.link_fallback = early_link_->fallback_reason();
  // prepare()'s timings first, then the steps after it.
  Json all = std::move(out_.change->timings);
  for (const auto& [k, v] : out_.timings.as_object()) all.set(k, v);
  out_.timings = std::move(all);
  return ok_status();
}

}  // namespace

Result<BuiltModule> build_module(const BuildRequest& request, Progress& progress, Refusal* refused) {
  BuildJob job(request, progress);
  RR_CHECK(job.prepare());  // analyse ‖ source -> transform -> compile; diff -> plan
  RR_CHECK(job.start_klp_and_link());  // klp object and module link, unsigned, alongside verify
  RR_CHECK(job.verify(refused));  // the source builds exactly the kernel's code
  RR_CHECK(job.finish_klp_object());  // IBT checks
  RR_CHECK(job.finish_module());  // relink if forced, else sign; ENDBR64 checks
  RR_CHECK(job.write_output());
  return job.take_result();
}

Json to_json(const BuiltModule& b, const BuildRequest& request) {
  const PreparedChange& c = *b.change;
  const analysis::LoadedKernel& kernel = c.kernel;
  Json j = Json::object();
  j.set("built", true);
  j.set("module", fs::absolute(b.output).string());
  j.set("name", request.module_name);
  j.set("kernel_release", kernel.release);
  j.set("era", std::string(analysis::era_name(c.era)));
  Json symbols = Json::object();  // where sympos, inlining decisions and verify's sizes came from
  symbols.set("kind", std::string(analysis::source_name(kernel.symbols->source())));
  symbols.set("from", kernel.symbols->origin());
  symbols.set("count", kernel.symbols->size());
  j.set("symbols", std::move(symbols));
  j.set("source", source::to_json(c.tree));
  j.set("changed", diff::to_json(c.diff));
  j.set("plan", klp::to_json(c.plan));
  j.set("compile", compile::to_json(c.compiled));
  j.set("verify", verify::to_json(b.verify));
  j.set("forced", b.forced);
  j.set("klp", klp::to_json(*b.klp));
  j.set("ibt", klp::to_json(b.ibt));
  Json conv = Json::object();
  conv.set("klp_symbols", b.module->conversion.klp_symbols);
  conv.set("klp_relocations", b.module->conversion.klp_relocations);
  conv.set("klp_sections", b.module->conversion.klp_sections);
  j.set("conversion", std::move(conv));
  j.set("signed", b.module->is_signed);
  // How kbuild linked it: started alongside the compiles ("early"), or after the plan ("after plan", with why).
  Json link = Json::object();
  link.set("early", b.early_link);
  link.set("fallback", b.link_fallback.empty() ? Json(nullptr) : Json(b.link_fallback));
  j.set("module_link", std::move(link));
  j.set("timings", b.timings);
  return j;
}

}  // namespace rr::pipeline
