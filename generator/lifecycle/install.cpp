#include "lifecycle/install.h"
#include "lifecycle/selection.h"

#include "common/atomic_file.h"
#include "common/file.h"
#include "common/names.h"
#include "common/subprocess.h"
#include "klp/templates.h"
#include "lifecycle/lifecycle.h"
#include "lifecycle/module_file.h"
#include "lifecycle/module_location.h"

#include <fmt/format.h>

#include <unistd.h>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace fs = std::filesystem;

namespace rr::lifecycle {

namespace {

constexpr mode_t kFileMode = 0644;
constexpr mode_t kScriptMode = 0755;

Result<ModuleFile> livepatch_file(const fs::path& file) {
  RR_ASSIGN(ModuleFile m, read_module_file(file));
  if (!m.is_livepatch) {
    Error e = make_error(ExitCode::bad_input, "{} is not a livepatch module (its .modinfo has no livepatch=Y)", file.string());
    e.hint = "give the module `relax-rmrr build` wrote";
    return e;
  }
  if (m.vermagic_release.empty())
    return make_error(ExitCode::bad_input, "{} has no vermagic: cannot tell which kernel it is for", file.string());
  return m;
}

// The suffix after ".ko" of the file name: "" or ".xz", ".zst", ".gz".
std::string ko_suffix(const fs::path& file) {
  std::string n = file.filename().string();
  size_t at = n.rfind(".ko");
  return at == std::string::npos ? "" : n.substr(at + 3);
}

Status run_depmod(const fs::path& root, const std::string& release, std::vector<std::string>& notes) {
  std::vector<std::string> argv{"depmod"};
  if (fs::absolute(root) != fs::path("/")) argv.insert(argv.end(), {"-b", fs::absolute(root).string()});
  argv.push_back(release);
  proc::Command cmd;
  cmd.argv = argv;
  auto r = proc::run(cmd);
  if (!r) return r.error().with_context("depmod");
  if (!r->ok()) {
    Error e = make_error(ExitCode::failure, "{} failed: {}", proc::quote_argv(argv), r->describe_end());
    e.hint = "the module file is in place; run depmod by hand once the problem is fixed";
    return e;
  }
  notes.push_back("ran " + proc::quote_argv(argv));
  return ok_status();
}

void daemon_reload(const fs::path& root, std::vector<std::string>& notes) {
  std::error_code ec;
  if (fs::absolute(root) != fs::path("/") || !fs::is_directory("/run/systemd/system", ec)) return;
  proc::Command cmd;
  cmd.argv = {"systemctl", "daemon-reload"};
  auto r = proc::run(cmd);
  notes.push_back(r && r->ok() ? "ran systemctl daemon-reload" : "systemctl daemon-reload failed: run it by hand");
}

std::string deb_safe(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '+' || c == '-';
    if (!ok) c = '-';
  }
  return s;
}

}  // namespace

std::string unit_name(const std::string& module_name) {
  if (module_name == "relax_rmrr") return "relax-rmrr.service";
  std::string n = module_name;
  for (char& c : n)
    if (c == '_') c = '-';
  return "relax-rmrr-" + n + ".service";
}

Result<std::string> render_unit(const UnitRequest& r) {
  if (r.module_name.empty() || r.module_name.find_first_of("/ \t\n'\"$%") != std::string::npos)
    return make_error(ExitCode::bad_input, "'{}' is not a usable module name", r.module_name);
  return klp::render("relax-rmrr.service.in",
                     {{"TOOL_VERSION", r.tool_version},
                      {"MODULE_NAME", r.module_name},
                      {"MODULE_PATH", r.module_path},
                      {"KERNEL_CONDITION", r.only_release.empty() ? "" : "ConditionKernelVersion=" + r.only_release + "\n"}});
}

Result<InstallReport> install(const InstallRequest& req) {
  RR_ASSIGN(ModuleFile m, livepatch_file(req.module));
  if (req.subdir != "updates" && req.subdir != "extra")
    return make_error(ExitCode::bad_input, "--dir must be updates or extra, not '{}'", req.subdir);
  InstallReport rep;
  rep.module_name = m.name;
  rep.release = req.release.empty() ? m.vermagic_release : req.release;
  if (rep.release != m.vermagic_release) {
    Error e = make_error(ExitCode::refused, "{} was built for {}, not {}: that kernel would refuse it", req.module.string(),
                         m.vermagic_release, rep.release);
    e.hint = "build it for " + rep.release + ": relax-rmrr build --kernel-release " + rep.release + " ...";
    return e;
  }
  // The unit's modprobe passes the persisted selection: this module must be able to take it.
  RR_ASSIGN(host::DeviceSelection selection, selection_for_load(req.root, m, req.devices));
  std::error_code ec;
  if (!fs::is_directory(req.root / "lib/modules" / rep.release, ec))
    rep.notes.push_back(fmt::format("kernel {} is not installed here (no /lib/modules/{}); installing anyway", rep.release, rep.release));

  RR_CHECK(check_kernel_release("--kernel-release", rep.release));
  fs::path modules = req.root / "lib/modules";
  fs::path dest = fs::path(rep.release) / req.subdir / (m.name + ".ko" + ko_suffix(req.module));
  RR_ASSIGN(Bytes bytes, read_file_bytes(req.module));
  RR_CHECK(write_file_beneath(modules, dest, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), kFileMode));
  rep.written.push_back(modules / dest);

  std::string unit = unit_name(m.name);
  RR_ASSIGN(std::string unit_text,
            render_unit({.module_name = m.name,
                         .module_path = fmt::format("/lib/modules/%v/{}/{}.ko{}", req.subdir, m.name, ko_suffix(req.module)),
                         .only_release = "",
                         .tool_version = req.tool_version}));
  fs::path units = req.root / "etc/systemd/system";
  RR_CHECK(write_file_beneath(units, unit, unit_text, kFileMode));
  rep.written.push_back(units / unit);
  if (req.enable) {
    RR_ASSIGN(UniqueFd wants, open_directory_beneath(units, "sysinit.target.wants", true));
    fs::path link = units / "sysinit.target.wants" / unit;
    ::unlinkat(wants.get(), unit.c_str(), 0);
    if (::symlinkat((fs::path("/etc/systemd/system") / unit).c_str(), wants.get(), unit.c_str()) != 0)
      return make_error(ExitCode::environment, "cannot enable {}: {}: {}", unit, link.string(), std::strerror(errno));
    rep.written.push_back(link);
  }
  if (req.devices) {
    RR_CHECK(persist_selection(req.root, selection));
    rep.written.push_back(selection_file(req.root));
  }
  if (req.depmod) RR_CHECK(run_depmod(req.root, rep.release, rep.notes));
  daemon_reload(req.root, rep.notes);
  return rep;
}

Result<InstallReport> uninstall(const UninstallRequest& req) {
  RR_CHECK(check_module_name("--name", req.module_name));
  if (!req.release.empty()) RR_CHECK(check_kernel_release("--kernel-release", req.release));
  InstallReport rep;
  rep.module_name = req.module_name;
  fs::path modules = req.root / "lib/modules";
  std::vector<std::string> releases;
  std::error_code ec;
  if (!req.release.empty()) releases.push_back(req.release);
  else
    for (const auto& e : fs::directory_iterator(modules, ec)) releases.push_back(e.path().filename().string());
  for (const auto& rel : releases) {
    if (!check_kernel_release("release", rel)) continue;  // not a directory install could have written
    bool touched = false;
    for (const char* sub : {"updates", "extra"})
      for (const char* suffix : {"", ".xz", ".zst", ".gz"}) {
        fs::path p = fs::path(rel) / sub / (req.module_name + ".ko" + suffix);
        RR_ASSIGN(bool removed, remove_beneath(modules, p));
        if (removed) {
          rep.written.push_back(modules / p);
          touched = true;
        }
      }
    if (touched && req.depmod) RR_CHECK(run_depmod(req.root, rel, rep.notes));
  }
  std::string unit = unit_name(req.module_name);
  fs::path units = req.root / "etc/systemd/system";
  for (const fs::path& p : {fs::path("sysinit.target.wants") / unit, fs::path(unit)}) {
    RR_ASSIGN(bool removed, remove_beneath(units, p));
    if (removed) rep.written.push_back(units / p);
  }
  daemon_reload(req.root, rep.notes);
  return rep;
}

std::string kernel_build_from_proc_version(const std::string& proc_version) {
  size_t at = proc_version.find(" #");
  if (at == std::string::npos) return {};
  return trim(proc_version.substr(at + 1));
}

Result<DebFiles> render_deb(const DebRequest& req) {
  RR_ASSIGN(ModuleFile m, livepatch_file(req.module));
  DebFiles d;
  d.release = m.vermagic_release;
  d.module_name = m.name;
  std::string name_part = m.name == "relax_rmrr" ? "" : "-" + deb_safe(m.name);
  d.package = "relax-rmrr-livepatch" + name_part + "-" + deb_safe(d.release);
  d.version = req.version.empty() ? m.field("relax_rmrr_version") : req.version;
  if (d.version.empty()) d.version = "0";
  if (d.version.find_first_not_of("0123456789") == 0) d.version = "0+" + d.version;
  for (char c : d.version)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '+' && c != '~' && c != '-')
      return make_error(ExitCode::bad_input, "'{}' is not a Debian package version", d.version);
  if (req.kernel_build.find('\'') != std::string::npos || req.kernel_build.find('\n') != std::string::npos)
    return make_error(ExitCode::bad_input, "the kernel build string must not contain quotes or newlines");
  d.unit = unit_name(m.name);
  d.unit = d.unit.substr(0, d.unit.size() - 8) + "-" + d.release + ".service";  // one unit per kernel build
  std::string rel = d.release;
  std::map<std::string, std::string> common{{"RELEASE", rel}, {"UNIT", d.unit}};
  auto with = [&](std::map<std::string, std::string> extra) {
    extra.insert(common.begin(), common.end());
    return extra;
  };
  std::string depends = fmt::format("linux-image-{0} | linux-image-{0}-unsigned", rel);
  RR_ASSIGN(
      d.files["control"],
      klp::render("deb-control.in",
                  with({{"PACKAGE", d.package},
                        {"VERSION", d.version},
                        {"MAINTAINER", req.maintainer},
                        {"KERNEL_DEPENDS", depends},
                        {"TOOL_VERSION", req.tool_version},
                        {"KERNEL_BUILD_TEXT", req.kernel_build.empty() ? "release " + rel + " (build not recorded)" : req.kernel_build}})));
  RR_ASSIGN(d.files["preinst"], klp::render("deb-preinst.in", {{"RELEASE", rel}, {"KERNEL_BUILD", req.kernel_build}}));
  RR_ASSIGN(d.files["postinst"], klp::render("deb-postinst.in", {{"RELEASE", rel}, {"UNIT", d.unit}}));
  RR_ASSIGN(d.files["prerm"], klp::render("deb-prerm.in", {{"UNIT", d.unit}}));
  RR_ASSIGN(d.files["postrm"], klp::render("deb-postrm.in", {{"RELEASE", rel}}));
  RR_ASSIGN(d.files[d.unit], render_unit({.module_name = m.name,
                                          .module_path = fmt::format("/lib/modules/{}/updates/{}.ko{}", rel, m.name, ko_suffix(req.module)),
                                          .only_release = rel,
                                          .tool_version = req.tool_version}));
  return d;
}

Result<fs::path> build_deb(const DebRequest& req) {
  RR_ASSIGN(DebFiles d, render_deb(req));
  std::string tmpl = (fs::temp_directory_path() / "relax-rmrr-deb-XXXXXX").string();
  if (!mkdtemp(tmpl.data()))
    return make_error(ExitCode::environment, "cannot create a directory in {}", fs::temp_directory_path().string());
  fs::path stage = tmpl;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{stage};
  auto rw = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read;
  auto rwx = rw | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  std::error_code ec;
  fs::permissions(stage, rwx, ec);
  RR_CHECK(write_file_beneath(stage, "DEBIAN/control", d.files["control"], kFileMode));
  for (const char* s : {"preinst", "postinst", "prerm", "postrm"})
    RR_CHECK(write_file_beneath(stage, fs::path("DEBIAN") / s, d.files[s], kScriptMode));
  RR_ASSIGN(Bytes bytes, read_file_bytes(req.module));
  fs::path ko = fs::path("lib/modules") / d.release / "updates" / (d.module_name + ".ko" + ko_suffix(req.module));
  RR_CHECK(write_file_beneath(stage, ko, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), kFileMode));
  RR_CHECK(write_file_beneath(stage, fs::path("lib/systemd/system") / d.unit, d.files[d.unit], kFileMode));
  for (auto it = fs::recursive_directory_iterator(stage, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec)) fs::permissions(it->path(), rwx, ec);

  fs::create_directories(req.output_dir, ec);
  fs::path out = fs::absolute(req.output_dir) / fmt::format("{}_{}_amd64.deb", d.package, d.version);
  // dpkg-deb writes into the work directory; the .deb reaches its place atomically, like every output.
  fs::path built = stage.string() + ".deb";
  struct RemoveBuilt {
    fs::path p;
    ~RemoveBuilt() {
      std::error_code ec;
      fs::remove(p, ec);
    }
  } remove_built{built};
  std::vector<std::string> argv{"dpkg-deb", "--root-owner-group", "-Zxz", "--build", stage.string(), built.string()};
  proc::Command cmd;
  cmd.argv = argv;
  auto r = proc::run(cmd);
  if (!r) {
    Error e = r.error();
    e.hint = "apt-get install dpkg";
    return e;
  }
  if (!r->ok()) return make_error(ExitCode::failure, "{} failed: {}", proc::quote_argv(argv), r->describe_end());
  RR_ASSIGN(Bytes deb, read_file_bytes(built));
  RR_CHECK(write_file_atomically(out, std::string_view(reinterpret_cast<const char*>(deb.data()), deb.size()), kFileMode));
  return out;
}

Result<fs::path> write_dkms_tree(const DkmsRequest& req) {
  std::string version = req.version.empty() ? req.tool_version : req.version;
  if (version.empty() || version.find_first_of("/ \t\n\"'$") != std::string::npos)
    return make_error(ExitCode::bad_input, "'{}' is not a usable DKMS package version", version);
  fs::path dir = req.output_dir.empty() ? fs::path("/usr/src") / ("relax-rmrr-" + version) : req.output_dir;
  RR_ASSIGN(std::string conf, klp::render("dkms.conf.in", {{"TOOL_VERSION", req.tool_version},
                                                           {"PACKAGE_VERSION", version},
                                                           {"MODULE_NAME", req.module_name},
                                                           {"AUTOINSTALL", req.autoinstall ? "yes" : ""}}));
  RR_ASSIGN(std::string script,
            klp::render("relax-rmrr-dkms-build.in",
                        {{"TOOL_VERSION", req.tool_version}, {"PACKAGE_VERSION", version}, {"MODULE_NAME", req.module_name}}));
  RR_CHECK(write_file_beneath(dir, "dkms.conf", conf, kFileMode));
  RR_CHECK(write_file_beneath(dir, "relax-rmrr-dkms-build", script, kScriptMode));
  return dir;
}

}  // namespace rr::lifecycle
