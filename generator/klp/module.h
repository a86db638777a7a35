// The loadable module: klp glue rendered from templates/, linked with the klp object through the target's
// kbuild tree, converted to the livepatch ELF format, then optionally signed. Conversion happens before
// signing so the signature covers the final bytes.
#pragma once

#include "common/result.h"
#include "common/subprocess.h"
#include "klp/klp_convert.h"
#include "klp/klp_object.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace rr::klp {

struct ModuleRequest {
  std::filesystem::path kbuild_dir;  // /lib/modules/<release>/build
  std::filesystem::path work_dir;  // emptied and filled by the build
  std::string module_name = "relax_rmrr";
  std::string kernel_release;
  std::string tool_version;
  bool forced = false;  // recorded in modinfo: a safety check was overridden
  // The 6.6+ era: klp callbacks that recompute dev->iommu->require_direct after (un)patching
  // (templates/klp_callbacks_require_direct.c.in explains why that is the minimal change).
  bool require_direct_callbacks = false;
  std::vector<std::string> make_variables;  // e.g. "CC=gcc-12"
  std::optional<std::filesystem::path> sign_key;
  std::optional<std::filesystem::path> sign_cert;
};

struct ModuleResult {
  std::filesystem::path ko;  // inside work_dir
  ConversionReport conversion;
  bool is_signed = false;
  double seconds = 0;
};

// Source of the glue for a klp object: exposed so tests can compile-check it without kbuild.
Result<std::string> render_glue(const KlpObject& klp, const ModuleRequest& request);

Result<ModuleResult> build_module(const KlpObject& klp, const ModuleRequest& request);

// kbuild's module link started before the plan exists. Every make run first spends about half a
// second reading kbuild's Makefiles and probing the compiler; `build` starts the module's make while the driver
// compiles, and that make waits at a gate (a rule reading a pipe it inherits as fd 9) for the glue and the klp
// object. Once they are written, finish() opens the gate and what is left is the glue compile, modpost and
// the link. If relax-rmrr exits without opening it, make reads end-of-file there and fails: it never hangs.
// Whatever goes wrong in the early make (another kbuild era's rules, say), finish() falls back to build_module().
class EarlyModuleLink {
 public:
  // Writes the gated Kbuild file into request.work_dir (emptied) and starts make; returns at once.
  // Only kbuild_dir, work_dir, module_name and make_variables are used.
  static Result<std::unique_ptr<EarlyModuleLink>> start(const ModuleRequest& request);
  // Writes the glue and the klp object, opens the gate, waits for make, then converts and signs as
  // build_module() does (which it runs instead when the early make failed).
  Result<ModuleResult> finish(const KlpObject& klp, const ModuleRequest& request);
  // Not finished: the gate is closed, make fails at it and is waited for.
  ~EarlyModuleLink();
  EarlyModuleLink(const EarlyModuleLink&) = delete;
  EarlyModuleLink& operator=(const EarlyModuleLink&) = delete;

  bool fell_back() const { return fell_back_; }  // finish() had to link the usual way
  std::string fallback_reason() const { return fallback_reason_; }

 private:
  EarlyModuleLink() = default;
  void close_gate();
  void wait();
  int gate_write_ = -1, gate_read_ = -1;
  std::thread make_;
  std::optional<Result<proc::Outcome>> made_;
  std::chrono::steady_clock::time_point started_;
  bool fell_back_ = false;
  std::string fallback_reason_;
};

// The signing step of build_module() on its own (request.sign_key/sign_cert; nothing to do without them): `build`
// links the module while verify runs and signs it only once verify has passed.
Status sign_module(ModuleResult& module, const ModuleRequest& request);

}  // namespace rr::klp
