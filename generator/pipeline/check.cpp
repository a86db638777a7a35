#include "pipeline/check.h"

namespace rr::pipeline {

int check_steps(const CheckRequest& request) { return (request.objects ? kObjectSteps : kPrepareSteps) + 1; }

Result<CheckedSource> check_source(const CheckRequest& request, Progress& progress) {
  WorkDir work(request.keep_work_dir, "verify");
  CheckedSource out;
  auto prepared = request.objects ? prepare_from_objects(request.kernel, request.objects->first, request.objects->second, progress)
                                  : prepare_change(request.kernel, request.source, work.path(), progress);
  RR_ASSIGN(out.change, std::move(prepared));
  const PreparedChange& c = *out.change;

  progress.begin("comparing with the kernel");
  verify::VerifyInputs in;
  if (request.objects) {
    // No compiler here, so no layout probe: the code comparison alone (noted in the report).
    in = verify::VerifyInputs{&c.kernel, &c.original, &c.patched, c.symbols.get(), {}, std::nullopt};
    for (const auto& f : c.plan.replace) in.functions.push_back(f.name);
  } else {
    in = verify::inputs_after_plan(c.kernel, c.original, c.patched, *c.symbols, c.plan, c.compiled.original, c.kernel.kbuild->dir,
                                   work.path() / "layout-probe");
  }
  in.text = request.text;
  RR_ASSIGN(out.report, verify::verify(in));
  progress.end();
  return out;
}

}  // namespace rr::pipeline
