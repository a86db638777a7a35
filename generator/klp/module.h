// The loadable module: klp glue rendered from templates/, linked with the klp object through the target's
// kbuild tree, converted to the livepatch ELF format, then optionally signed. Conversion happens before
// signing so the signature covers the final bytes.
#pragma once

#include "common/result.h"
#include "klp/klp_convert.h"
#include "klp/klp_object.h"

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rr::klp {

struct ModuleRequest {
  std::filesystem::path kbuild_dir;  // /lib/modules/<release>/build
  std::filesystem::path work_dir;    // emptied and filled by the build
  std::string module_name = "relax_rmrr";
  std::string kernel_release;
  std::string tool_version;
  bool forced = false;                    // recorded in modinfo: a safety check was overridden
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

// The signing step of build_module() on its own (request.sign_key/sign_cert; nothing to do without them): `build`
// links the module while verify runs and signs it only once verify has passed.
Status sign_module(ModuleResult& module, const ModuleRequest& request);

}  // namespace rr::klp
