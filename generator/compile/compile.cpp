#include "compile/compile.h"

#include "common/file.h"
#include "common/subprocess.h"
#include "compile/command_cache.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <thread>

namespace fs = std::filesystem;

namespace rr::compile {

namespace {

bool make_safe(std::string_view s) {
  // make splits on whitespace and gives meaning to these; a path with them cannot go into a Kbuild file.
  return s.find_first_of(" \t\n$#:;\\'\"=%") == std::string_view::npos;
}

std::optional<std::string> config_value(const fs::path& kbuild, std::string_view key) {
  for (const char* f : {"include/config/auto.conf", ".config"}) {
    auto text = read_file_text(kbuild / f, 64u << 20);
    if (!text) continue;
    std::string prefix = std::string(key) + "=";
    for (const auto& line : split_lines(*text)) {
      if (!starts_with(line, prefix)) continue;
      std::string v = trim(std::string_view(line).substr(prefix.size()));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return std::nullopt;
}

// Why a compile failed, as an exit code and what to do: a missing header or tool is something missing (3); C
// errors in the kernel's own driver against the target's headers mean the source is not the target's (4).
std::pair<ExitCode, std::string> diagnose_failure(std::string_view output, const fs::path& kbuild) {
  if (output.find("No such file or directory") != std::string_view::npos && output.find(".h") != std::string_view::npos)
    return {ExitCode::missing,
            fmt::format("a header is missing: install the headers of the target kernel (apt-get install linux-headers-$(uname -r)) "
                        "and check that {} belongs to the same kernel as the source",
                        kbuild.string())};
  if (output.find("not found") != std::string_view::npos || output.find("No such file") != std::string_view::npos)
    return {ExitCode::missing,
            "a build tool is missing: apt-get install make gcc (and the compiler the kernel was built with, e.g. gcc-12)"};
  return {ExitCode::refused,
          "the driver does not compile against the target's headers: the source is not the target kernel's (another "
          "release or a distribution backport); use the linux-source package of exactly the running kernel's version"};
}

// Splits "cmd ; objtool ..." at the first ';' outside quotes.
std::string before_first_separator(std::string_view cmd) {
  char quote = 0;
  for (size_t i = 0; i < cmd.size(); ++i) {
    char c = cmd[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') quote = c;
    else if (c == ';') return trim(cmd.substr(0, i));
  }
  return trim(cmd);
}

}  // namespace

std::vector<std::pair<std::string, std::optional<std::string>>> kbuild_env() {
  return {{"MAKEFLAGS", std::nullopt},     {"MFLAGS", std::nullopt},        {"MAKELEVEL", std::nullopt},
          {"MAKEOVERRIDES", std::nullopt}, {"KBUILD_EXTMOD", std::nullopt}, {"LC_ALL", "C"}};
}

std::string make_cc(std::string_view cc) { return cc.empty() || cc == "-" || cc == "gcc" ? std::string() : std::string(cc); }

std::optional<CommandPaths> command_paths(std::string_view command, const fs::path& object, const fs::path& source,
                                          const fs::path& kbuild) {
  const auto words = split_ws(command);
  auto names = [&](const std::string& w) { return std::find(words.begin(), words.end(), w) != words.end(); };
  if (names(object.string()) && names(source.string())) return CommandPaths{object.string(), source.string(), kbuild};
  // The variant's directory (its own make), or the one above it (one make for both variants).
  for (const fs::path& dir : {object.parent_path(), object.parent_path().parent_path()}) {
    if (dir.empty()) continue;
    const fs::path o = object.lexically_relative(dir), c = source.lexically_relative(dir);
    for (const std::string prefix : {"", "./"})
      if (names(prefix + o.string()) && names(prefix + c.string())) return CommandPaths{prefix + o.string(), prefix + c.string(), dir};
  }
  return std::nullopt;
}

Result<TargetCompiler> target_compiler(const fs::path& kbuild) {
  TargetCompiler tc;
  auto text = config_value(kbuild, "CONFIG_CC_VERSION_TEXT");
  if (!text) return tc;  // kernels before 5.8 do not record it: kbuild's default then
  tc.version_text = *text;
  auto words = split_ws(*text);
  std::vector<std::string> candidates;
  if (!words.empty()) candidates.push_back(words.front());
  // "Debian clang version 16.0.6" / "gcc (GCC) 12.2.0": try the versioned program names too.
  auto clang_at = text->find("clang version ");
  if (clang_at != std::string::npos) {
    std::string ver = text->substr(clang_at + 14);
    candidates.push_back("clang-" + ver.substr(0, ver.find('.')));
    candidates.push_back("clang");
  } else if (!words.empty()) {
    const std::string& last = words.back();
    candidates.push_back("gcc-" + last.substr(0, last.find('.')));
  }
  for (const auto& c : candidates) {
    if (c.empty() || c.find_first_of("()") != std::string::npos) continue;
    if (proc::find_program(c)) {
      tc.program = c;
      tc.found = true;
      return tc;
    }
  }
  tc.program = candidates.empty() ? "" : candidates.front();
  return tc;
}

Result<KbuildCommand> parse_cmd_file(std::string_view text, std::string_view what) {
  for (const auto& line : split_lines(text)) {
    // "cmd_<target> := ..." until 6.2, "savedcmd_<target> := ..." from 6.3.
    if (!starts_with(line, "cmd_") && !starts_with(line, "savedcmd_")) continue;
    auto assign = line.find(":=");
    if (assign == std::string::npos) continue;
    KbuildCommand k;
    k.full = trim(std::string_view(line).substr(assign + 2));
    k.compiler = before_first_separator(k.full);
    return k;
  }
  return make_error(ExitCode::bad_input, "{}: no cmd_/savedcmd_ line (is it a kbuild .cmd file?)", what);
}

namespace {

// One variant on its way through kbuild: its files written, the make that builds it alone, its cache key.
struct VariantJob {
  CompiledObject out;
  std::string object_name;  // "iommu.o"
  std::string cache_key;  // empty: no command cache
};

Result<VariantJob> prepare_variant(const CompileOptions& o, std::string_view variant, std::string_view source_text) {
  if (o.source_relative.empty() || o.work_dir.empty())
    return make_error(ExitCode::bad_input, "internal error: compile_variant needs source_relative and work_dir");
  std::error_code ec;
  if (!fs::is_regular_file(o.kbuild / "Makefile", ec))
    return Error{fmt::format("{} is not a kernel build tree (no Makefile)", o.kbuild.string()), ExitCode::missing,
                 "install the headers of the target kernel: apt-get install linux-headers-$(uname -r)"};

  VariantJob job;
  CompiledObject& out = job.out;
  out.variant = std::string(variant);
  out.directory = fs::absolute(o.work_dir) / variant;
  fs::path rel(o.source_relative);
  std::string stem = rel.stem().string();  // "iommu" / "intel-iommu": KBUILD_MODNAME as in-tree
  std::string in_tree_dir = rel.parent_path().string() + "/";
  job.object_name = stem + ".o";
  out.source = out.directory / rel.filename();
  out.object = out.directory / job.object_name;
  out.cmd_file = out.directory / ("." + job.object_name + ".cmd");

  for (const auto& p : {out.directory.string(), in_tree_dir})
    if (!make_safe(p)) return make_error(ExitCode::bad_input, "path {} contains characters make cannot take (spaces, $, #, :, quotes)", p);
  for (const auto& inc : o.include_dirs)
    if (!make_safe(inc.string()))
      return make_error(ExitCode::bad_input, "path {} contains characters make cannot take (spaces, $, #, :, quotes)", inc.string());

  fs::create_directories(out.directory, ec);
  if (ec) return make_error(ExitCode::environment, "cannot create {}: {}", out.directory.string(), ec.message());
  for (const auto& stale : {out.object, out.cmd_file}) fs::remove(stale, ec);

  std::string ccflags;
  for (const auto& inc : o.include_dirs) ccflags += " -I" + fs::absolute(inc).string();
  ccflags += " -ffunction-sections -fdata-sections";
  // __FILE__ as in the kernel's own build, and the same in both variants.
  ccflags += fmt::format(" -fmacro-prefix-map={}/={}", out.directory.string(), in_tree_dir);
  for (const auto& f : o.extra_cflags) ccflags += " " + f;
  std::string kbuild_file = fmt::format(
      "# Written by relax-rmrr: {} of {}, compiled {}\n"
      "obj-{} := {}\n"
      "ccflags-y :={}\n",
      variant, o.source_relative, o.as_module ? "as a module object" : "like the built-in driver", o.as_module ? "m" : "y", job.object_name,
      ccflags);
  RR_CHECK(write_file_text(out.directory / "Kbuild", kbuild_file));
  RR_CHECK(write_file_text(out.source, source_text));

  std::string cc = o.cc;
  if (cc.empty()) {
    RR_ASSIGN(TargetCompiler tc, target_compiler(o.kbuild));
    if (!tc.program.empty() && !tc.found)
      return Error{fmt::format("the target kernel was built with \"{}\", and {} is not installed", tc.version_text, tc.program),
                   ExitCode::missing, fmt::format("install it (Debian: apt-get install {})", tc.program)};
    cc = tc.program;
  }
  out.make_argv = {"make", "-C", fs::absolute(o.kbuild).string(), "M=" + out.directory.string()};
  if (auto c = make_cc(cc); !c.empty()) out.make_argv.push_back("CC=" + c);
  out.make_argv.push_back(job.object_name);

  if (!o.command_cache_dir.empty()) {
    job.cache_key = command_key({o.kbuild, cc, with_placeholder(kbuild_file, out.directory), job.object_name});
  }
  return job;
}

// kbuild's command for this object, remembered from an earlier make (compile/command_cache.h), run directly.
// false: no command remembered, or it failed (then it is forgotten: make runs, diagnoses and records anew).
bool run_recorded(const CompileOptions& o, VariantJob& job) {
  if (job.cache_key.empty()) return false;
  auto templ = lookup_command(o.command_cache_dir, job.cache_key);
  if (!templ) return false;
  CompiledObject& out = job.out;
  std::string full = from_template(templ->templ, out.directory);
  std::error_code ec;
  auto ran = proc::run({{"/bin/sh", "-c", full}, command_cwd(templ->dir, o.kbuild, out.directory), kbuild_env(), {}, {}});
  if (ran && ran->ok() && fs::is_regular_file(out.object, ec) &&
      // As kbuild would have left it, for --keep-tmp and anything that reads the directory.
      write_file_text(out.cmd_file, fmt::format("cmd_{} := {}\n", out.object.string(), full))) {
    out.seconds = ran->seconds;
    out.make_output = ran->out + ran->err;
    out.kbuild_command = full;
    out.compiler_command = before_first_separator(full);
    out.replayed = true;
    return true;
  }
  forget_command(o.command_cache_dir, job.cache_key);
  fs::remove(out.object, ec);
  return false;
}

// After a make that built the object: kbuild's recorded command read (and remembered for later builds).
Result<CompiledObject> read_made(const CompileOptions& o, VariantJob& job) {
  CompiledObject& out = job.out;
  RR_ASSIGN(std::string cmd_text, read_file_text(out.cmd_file, 16u << 20));
  RR_ASSIGN(KbuildCommand k, parse_cmd_file(cmd_text, out.cmd_file.string()));
  out.compiler_command = k.compiler;
  out.kbuild_command = k.full;
  if (!job.cache_key.empty())
    if (auto where = command_paths(unescape_make(k.compiler), out.object, out.source, fs::absolute(o.kbuild))) {
      CommandDir dir = where->cwd == out.directory                 ? CommandDir::variant
                       : where->cwd == out.directory.parent_path() ? CommandDir::work
                                                                   : CommandDir::kbuild;
      if (auto recorded = to_template(unescape_make(k.full), out.directory, fs::absolute(o.work_dir), dir))
        (void)remember_command(o.command_cache_dir, job.cache_key,
                               *recorded);  // best effort: a cache that cannot be written only costs time
    }
  return out;
}

// The variant alone through make; a failure is diagnosed from make's output.
Result<CompiledObject> make_variant(const CompileOptions& o, VariantJob& job) {
  CompiledObject& out = job.out;
  auto ran = proc::run({out.make_argv, {}, kbuild_env(), {}, {}});
  if (!ran) {
    Error e = ran.error();
    if (e.code == ExitCode::missing) e.hint = "apt-get install make";
    return e;
  }
  out.seconds = ran->seconds;
  out.make_output = ran->out + ran->err;
  std::error_code ec;
  if (!ran->ok() || !fs::is_regular_file(out.object, ec)) {
    auto [code, hint] = diagnose_failure(out.make_output, o.kbuild);
    return Error{fmt::format("compiling the {} {} failed ({}):\n{}", out.variant, o.source_relative, ran->describe_end(),
                             proc::last_lines(out.make_output, 15)),
                 code, std::move(hint)};
  }
  return read_made(o, job);
}

// Both variants in ONE make (`make M=<work> -j2 original/iommu.o patched/iommu.o`): kbuild's start-up is paid
// once, not twice. nullopt for a variant this make did not build: make_variant() then runs it alone,
// so a compile error is reported exactly as before.
std::array<std::optional<Result<CompiledObject>>, 2> make_both(const CompileOptions& o, std::array<VariantJob*, 2> jobs) {
  std::array<std::optional<Result<CompiledObject>>, 2> made;
  fs::path work = fs::absolute(o.work_dir);
  std::vector<std::string> argv = {"make", "-C", fs::absolute(o.kbuild).string(), "M=" + work.string(), "-j2"};
  if (auto c = make_cc(o.cc); !c.empty()) argv.push_back("CC=" + c);
  for (VariantJob* j : jobs) argv.push_back(j->out.variant + "/" + j->object_name);
  if (!write_file_text(work / "Kbuild", fmt::format("# Written by relax-rmrr: both variants, one make\nobj-y += {}/ {}/\n",
                                                    jobs[0]->out.variant, jobs[1]->out.variant)))
    return made;
  auto ran = proc::run({argv, {}, kbuild_env(), {}, {}});
  if (!ran) return made;
  std::error_code ec;
  for (size_t i = 0; i < 2; ++i) {
    VariantJob& j = *jobs[i];
    if (!fs::is_regular_file(j.out.object, ec) || !fs::is_regular_file(j.out.cmd_file, ec)) continue;
    j.out.make_argv = argv;
    j.out.seconds = ran->seconds;
    j.out.make_output = ran->out + ran->err;
    made[i].emplace(read_made(o, j));
  }
  return made;
}

}  // namespace

Result<CompiledObject> compile_variant(const CompileOptions& o, std::string_view variant, std::string_view source_text) {
  RR_ASSIGN(VariantJob job, prepare_variant(o, variant, source_text));
  if (run_recorded(o, job)) return std::move(job.out);
  return make_variant(o, job);
}

Result<CompileResult> compile_pair(const CompileOptions& o, std::string_view original_text, std::string_view patched_text) {
  auto t0 = std::chrono::steady_clock::now();
  CompileResult r;
  CompileOptions opts = o;
  if (opts.cc.empty()) {
    RR_ASSIGN(r.compiler, target_compiler(o.kbuild));
    if (!r.compiler.program.empty() && !r.compiler.found)
      return Error{
          fmt::format("the target kernel was built with \"{}\", and {} is not installed", r.compiler.version_text, r.compiler.program),
          ExitCode::missing, fmt::format("install it (Debian: apt-get install {})", r.compiler.program)};
    opts.cc = r.compiler.program.empty() ? "-" : r.compiler.program;
  }
  r.cc = make_cc(opts.cc);

  RR_ASSIGN(VariantJob original, prepare_variant(opts, "original", original_text));
  RR_ASSIGN(VariantJob patched, prepare_variant(opts, "patched", patched_text));
  std::array<VariantJob*, 2> jobs = {&original, &patched};
  std::array<std::optional<Result<CompiledObject>>, 2> done;
  // Each step runs the two variants side by side (unless options.parallel is false).
  auto each = [&](auto&& step) {
    if (!opts.parallel) {
      for (size_t i = 0; i < 2; ++i) step(i);
      return;
    }
    std::thread second([&] { step(1); });
    step(0);
    second.join();
  };
  each([&](size_t i) {
    if (run_recorded(opts, *jobs[i])) done[i].emplace(std::move(jobs[i]->out));
  });
  if (opts.parallel && !done[0] && !done[1]) done = make_both(opts, jobs);
  each([&](size_t i) {
    if (!done[i]) done[i].emplace(make_variant(opts, *jobs[i]));
  });

  if (!*done[0]) return done[0]->error();
  if (!*done[1]) return done[1]->error();
  r.original = std::move(*done[0]).value();
  r.patched = std::move(*done[1]).value();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void visit_kbuild_makefiles(const fs::path& kbuild, const std::function<bool(const fs::path&, std::string_view)>& visit) {
  std::vector<fs::path> todo = {kbuild / "Makefile"};
  for (size_t i = 0; i < todo.size() && i < 4; ++i) {
    auto text = read_file_text(todo[i], 4u << 20);
    if (!text) continue;
    if (visit(todo[i], *text)) return;
    for (const auto& line : split_lines(*text)) {
      auto w = split_ws(line);
      if (w.size() == 2 && w[0] == "include" && w[1].find('$') == std::string::npos) {
        fs::path inc = w[1];
        todo.push_back(inc.is_absolute() ? inc : todo[i].parent_path() / inc);
      }
    }
  }
}

std::optional<source::KernelVersion> kbuild_version(const fs::path& kbuild) {
  std::optional<source::KernelVersion> version;
  visit_kbuild_makefiles(kbuild, [&](const fs::path&, std::string_view text) {
    version = source::parse_makefile_version(text);
    return version.has_value();
  });
  return version;
}

Json to_json(const CompileResult& r) {
  auto one = [](const CompiledObject& o) {
    Json j = Json::object();
    j.set("object", o.object.string());
    j.set("source", o.source.string());
    j.set("compiler_command", o.compiler_command);
    j.set("kbuild", o.replayed ? "recorded command" : "make");
    j.set("seconds", o.seconds);
    return j;
  };
  Json j = Json::object();
  j.set("original", one(r.original));
  j.set("patched", one(r.patched));
  j.set("cc", r.cc.empty() ? Json(nullptr) : Json(r.cc));
  j.set("kernel_compiler", r.compiler.version_text.empty() ? Json(nullptr) : Json(r.compiler.version_text));
  j.set("seconds", r.seconds);
  return j;
}

Result<CompileResult> compile_source(const source::SourceTree& tree, const source::Transform& transform, CompileOptions options) {
  if (options.source_relative.empty()) options.source_relative = tree.iommu_c_relative;
  if (options.include_dirs.empty()) options.include_dirs = tree.include_dirs;
  if (auto kv = kbuild_version(options.kbuild); kv && tree.version && !options.allow_version_mismatch) {
    const auto& sv = *tree.version;
    if (sv.version != kv->version || sv.patchlevel != kv->patchlevel || sv.sublevel != kv->sublevel)
      return Error{fmt::format("the source {} is Linux {}, but the kbuild tree {} is Linux {}: the livepatch must be built "
                               "from the target kernel's own source",
                               tree.input.string(), sv.str(), options.kbuild.string(), kv->str()),
                   ExitCode::refused,
                   fmt::format("use the linux-source package of the same version as the kernel ({}.{}.{})", kv->version, kv->patchlevel,
                               kv->sublevel)};
  }
  RR_ASSIGN(std::string original, read_file_text(tree.iommu_c, 64u << 20));
  auto patched = source::apply_edits(original, transform.edits);
  if (!patched)
    return patched.error().with_context(
        fmt::format("{}: the transform does not fit this file (was it computed from another source?)", tree.iommu_c.string()));
  return compile_pair(options, original, *patched);
}

}  // namespace rr::compile
