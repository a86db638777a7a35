#include "klp/module.h"

#include "common/file.h"
#include "common/subprocess.h"
#include "compile/compile.h"
#include "elf/writer.h"
#include "klp/templates.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace fs = std::filesystem;

namespace rr::klp {

namespace {
constexpr const char* kPatchObject = "livepatch_code.o";
constexpr const char* kDevicesHeader = "relax_rmrr_devices.h";

bool valid_module_name(const std::string& n) {
  if (n.empty() || n.size() > 55) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return !(n[0] >= '0' && n[0] <= '9');
}

std::string c_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

Result<std::string> render_glue(const KlpObject& klp, const ModuleRequest& r) {
  if (!valid_module_name(r.module_name))
    return make_error(ExitCode::bad_input, "module name '{}' must be lower-case letters, digits and '_' (at most 55)", r.module_name);
  std::string externs, funcs;
  for (const auto& f : klp.replaced) {
    externs += fmt::format("extern void {}(void);\n", f.new_symbol);
    funcs += fmt::format("\t{{\n\t\t.old_name = {},\n\t\t.new_func = {},\n\t\t.old_sympos = {},\n\t}},\n", c_string(f.name), f.new_symbol,
                         f.sympos);
  }
  std::string callbacks, object_callbacks;
  if (r.require_direct_callbacks) {
    RR_ASSIGN(callbacks, render("klp_callbacks_require_direct.c.in", {{"MODULE_NAME", r.module_name}}));
    object_callbacks =
        "\t\t.callbacks = {\n\t\t\t.post_patch = relax_rmrr_post_patch,\n\t\t\t.pre_unpatch = relax_rmrr_pre_unpatch,\n"
        "\t\t\t.post_unpatch = relax_rmrr_post_unpatch,\n\t\t},";
  } else {
    callbacks =
        "/* Before 6.6 the replaced functions read the selection at every attach: a change needs no more work. */\n"
        "static void relax_rmrr_selection_changed(void)\n{\n}\n";
  }
  return render("klp_glue.c.in", {{"MODULE_NAME", r.module_name},
                                  {"TOOL_VERSION", r.tool_version},
                                  {"KERNEL_RELEASE", r.kernel_release},
                                  {"EXTERN_DECLARATIONS", externs},
                                  {"KLP_FUNCS", funcs},
                                  {"CALLBACKS", callbacks},
                                  {"OBJECT_CALLBACKS", object_callbacks},
                                  {"FORCED", r.forced ? "yes" : "no"}});
}

namespace {

// The klp object, its kbuild command file and the glue, into a work directory make reads.
Status write_module_inputs(const KlpObject& klp, const ModuleRequest& r) {
  RR_CHECK(write_object(klp.object, r.work_dir / kPatchObject));
  // modpost reads every object's kbuild command file (for srcversion); ours was not built by kbuild.
  RR_CHECK(write_file_text(r.work_dir / fmt::format(".{}.cmd", kPatchObject),
                           fmt::format("cmd_{0} := relax-rmrr (prebuilt klp object)\n", (r.work_dir / kPatchObject).string())));
  RR_ASSIGN(std::string glue, render_glue(klp, r));
  RR_CHECK(write_file_text(r.work_dir / "klp_glue.c", glue));
  // The `devices` grammar, shared with the tool (host/device_selection.h), next to the glue that includes it.
  RR_ASSIGN(std::string_view devices_header, template_text(kDevicesHeader));
  return write_file_text(r.work_dir / kDevicesHeader, std::string(devices_header));
}

Status reset_work_dir(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) return make_error(ExitCode::environment, "cannot create {}: {}", dir.string(), ec.message());
  return ok_status();
}

proc::Command module_make(const ModuleRequest& r) {
  // modpost cannot know the .klp.sym.* names (they are not exported): it may only warn about them.
  proc::Command make{{"make", "-C", r.kbuild_dir.string(), "M=" + r.work_dir.string(), "KBUILD_MODPOST_WARN=1", "modules"}, {}, {}, {}, {}};
  for (const auto& v : r.make_variables) make.argv.push_back(v);
  make.env = compile::kbuild_env();
  return make;
}

// What follows kbuild's make: its outcome checked, the module converted to the livepatch format, signed.
Result<ModuleResult> after_make(const proc::Outcome& made, const ModuleRequest& r) {
  ModuleResult out;
  fs::path ko = r.work_dir / (r.module_name + ".ko");
  std::error_code ec;
  if (!made.ok() || !fs::exists(ko, ec)) {
    Error e = make_error(ExitCode::failure, "linking the module failed: {}", proc::last_lines(made.err + made.out, 12));
    e.hint = fmt::format("the kbuild tree {} must match the target kernel; rerun with --keep-tmp to inspect {}", r.kbuild_dir.string(),
                         r.work_dir.string());
    return e;
  }
  // Anything modpost calls undefined must be one of ours: a real missing symbol would fail at load.
  for (const auto& line : split_lines(made.err + made.out)) {
    if (line.find("undefined!") == std::string::npos) continue;
    if (line.find(".klp.sym.") == std::string::npos)
      return make_error(ExitCode::failure, "modpost: {} (a symbol the module needs is neither exported nor a livepatch symbol)",
                        trim(line));
  }
  RR_ASSIGN(out.conversion, convert_to_klp_module(ko, "vmlinux"));
  out.ko = ko;
  RR_CHECK(sign_module(out, r));
  return out;
}

}  // namespace

Result<ModuleResult> build_module(const KlpObject& klp, const ModuleRequest& r) {
  auto started = std::chrono::steady_clock::now();
  RR_CHECK(reset_work_dir(r.work_dir));
  RR_CHECK(write_module_inputs(klp, r));
  RR_ASSIGN(std::string kbuild, render("Kbuild.in", {{"MODULE_NAME", r.module_name}, {"PATCH_OBJECT", kPatchObject}, {"GATE", ""}}));
  RR_CHECK(write_file_text(r.work_dir / "Kbuild", kbuild));
  RR_ASSIGN(proc::Outcome made, proc::run(module_make(r)));
  RR_ASSIGN(ModuleResult out, after_make(made, r));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

namespace {
constexpr int kGateFd = 9;  // a POSIX shell's `<&N` takes one digit
}

Result<std::unique_ptr<EarlyModuleLink>> EarlyModuleLink::start(const ModuleRequest& r) {
  if (!valid_module_name(r.module_name))
    return make_error(ExitCode::bad_input, "module name '{}' must be lower-case letters, digits and '_' (at most 55)", r.module_name);
  std::unique_ptr<EarlyModuleLink> link(new EarlyModuleLink());
  link->started_ = std::chrono::steady_clock::now();
  RR_CHECK(reset_work_dir(r.work_dir));
  std::string gate = fmt::format(
      "# The glue and the klp object are written by relax-rmrr once it knows what to replace; until then make waits\n"
      "# here, reading the pipe relax-rmrr gave it as fd {0} (end-of-file, if relax-rmrr is gone: make fails).\n"
      "$(obj)/klp_glue.c:\n"
      "\t@read -r relax_rmrr_gate <&{0} && test \"$$relax_rmrr_gate\" = go\n"
      "$(obj)/{1}: $(obj)/klp_glue.c\n"
      "\t@test -f $@\n",
      kGateFd, kPatchObject);
  RR_ASSIGN(std::string kbuild, render("Kbuild.in", {{"MODULE_NAME", r.module_name}, {"PATCH_OBJECT", kPatchObject}, {"GATE", gate}}));
  RR_CHECK(write_file_text(r.work_dir / "Kbuild", kbuild));
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return make_error(ExitCode::environment, "cannot create a pipe: {}", std::strerror(errno));
  // We keep the read end open too, so writing to the gate never meets a pipe without readers (no SIGPIPE).
  link->gate_read_ = fds[0];
  link->gate_write_ = fds[1];
  proc::Command make = module_make(r);
  make.inherit_fds = {{fds[0], kGateFd}};
  EarlyModuleLink* self = link.get();
  link->make_ = std::thread([self, make] { self->made_.emplace(proc::run(make)); });
  return link;
}

void EarlyModuleLink::close_gate() {
  if (gate_write_ >= 0) ::close(gate_write_);
  gate_write_ = -1;
}

void EarlyModuleLink::wait() {
  close_gate();
  if (make_.joinable()) make_.join();
  if (gate_read_ >= 0) ::close(gate_read_);
  gate_read_ = -1;
}

EarlyModuleLink::~EarlyModuleLink() { wait(); }

Result<ModuleResult> EarlyModuleLink::finish(const KlpObject& klp, const ModuleRequest& r) {
  Status written = write_module_inputs(klp, r);
  if (written) {
    constexpr char go[] = "go\n";
    if (::write(gate_write_, go, sizeof go - 1) != static_cast<ssize_t>(sizeof go - 1))
      written = make_error(ExitCode::environment, "cannot open the module link's gate: {}", std::strerror(errno));
  }
  wait();
  if (written && *made_ && (*made_)->ok()) {
    auto out = after_make(**made_, r);
    if (out) out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    return out;
  }
  fell_back_ = true;
  if (!written) fallback_reason_ = written.error().message;
  else if (!*made_) fallback_reason_ = made_->error().message;
  else
    fallback_reason_ =
        fmt::format("make: {}: {}", (*made_)->describe_end(), proc::last_lines((*made_)->err.empty() ? (*made_)->out : (*made_)->err, 3));
  return build_module(klp, r);
}

Status sign_module(ModuleResult& out, const ModuleRequest& r) {
  if (!r.sign_key && !r.sign_cert) return ok_status();
  if (!r.sign_key || !r.sign_cert) return make_error(ExitCode::bad_input, "signing needs both --sign-key and --sign-cert");
  fs::path sign_file = r.kbuild_dir / "scripts/sign-file";
  if (!fs::exists(sign_file))
    return make_error(ExitCode::missing, "{} is missing: cannot sign (the kbuild tree has no scripts/sign-file)", sign_file.string());
  RR_ASSIGN(proc::Outcome signed_,
            proc::run({{sign_file.string(), "sha256", r.sign_key->string(), r.sign_cert->string(), out.ko.string()}, {}, {}, {}, {}}));
  if (!signed_.ok()) return make_error(ExitCode::failure, "sign-file failed: {}", signed_.describe_end());
  out.is_signed = true;
  return ok_status();
}

}  // namespace rr::klp
