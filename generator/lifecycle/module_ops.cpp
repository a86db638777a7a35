#include "lifecycle/module_ops.h"

#include "common/file.h"
#include "host/device_selection.h"
#include "host/livepatch_sysfs.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace fs = std::filesystem;

namespace rr::lifecycle {

using host::find_livepatch;
using host::list_livepatches;
using host::lockdown_mode;
using host::signatures_enforced;
using host::write_livepatch_attribute;

namespace {

constexpr const char* kSignHint =
    "sign the module: relax-rmrr build --sign-key KEY --sign-cert CERT, with a key the kernel trusts "
    "(enroll CERT with `mokutil --import CERT`, reboot, confirm in MokManager), or let DKMS build and sign it "
    "with its MOK key (see README, DKMS)";

// The real kernel calls.
class SyscallOps : public ModuleOps {
 public:
  explicit SyscallOps(fs::path sys) : sys_(std::move(sys)) {}
  rr::Status write_attribute(const std::string& patch, const std::string& attribute, bool value) override {
    return write_livepatch_attribute(sys_, patch, attribute, value);
  }
  rr::Status load(const ModuleFile& m, const std::string& parameters) override {
    long rc;
    if (!m.compressed) {
      // finit_module: the kernel reads the file itself, so security modules that vouch for files (IMA,
      // LoadPin) see where the module came from; init_module would hand them anonymous bytes.
      int fd = ::open(m.path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return make_error(ExitCode::missing, "cannot open {}: {}", m.path.string(), std::strerror(errno));
      rc = ::syscall(SYS_finit_module, fd, parameters.c_str(), 0);
      int err = errno;
      ::close(fd);
      errno = err;
    } else {
      rc = ::syscall(SYS_init_module, m.image.data(), m.image.size(), parameters.c_str());
    }
    if (rc == 0) return ok_status();
    return load_error(m, errno);
  }

  rr::Status write_parameter(const std::string& module, const std::string& parameter, const std::string& value) override {
    fs::path file = sys_ / "module" / module / "parameters" / parameter;
    int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return make_error(err == ENOENT                   ? ExitCode::missing
                        : err == EACCES || err == EPERM ? ExitCode::environment
                                                        : ExitCode::failure,
                        "cannot open {}: {}", file.string(), std::strerror(err));
    }
    std::string text = value + "\n";  // one write(2): sysfs hands the module the whole value
    ssize_t n = ::write(fd, text.data(), text.size());
    int err = errno;
    ::close(fd);
    if (n == static_cast<ssize_t>(text.size())) return ok_status();
    Error e = make_error(err == EINVAL ? ExitCode::bad_input : ExitCode::failure, "the module {} refused '{}' in {}: {}", module, value,
                         file.string(), n < 0 ? std::strerror(err) : "short write");
    if (err == EINVAL) e.hint = "the module kept its selection; dmesg says what it found wrong";
    return e;
  }

  rr::Status remove(const std::string& name) override {
    if (::syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) == 0) return ok_status();
    int err = errno;
    switch (err) {
      case ENOENT: return make_error(ExitCode::missing, "module {} is not loaded", name);
      case EWOULDBLOCK: return make_error(ExitCode::failure, "module {} is in use (its reference count is not 0)", name);
      case EPERM: {
        Error e = make_error(ExitCode::environment, "the kernel does not allow removing {}: {}", name, std::strerror(err));
        e.hint = "run as root; with kernel.modules_disabled=1 nothing can be removed until reboot";
        return e;
      }
      default: return make_error(ExitCode::failure, "delete_module({}) failed: {}", name, std::strerror(err));
    }
  }

 private:
  static Error load_error(const ModuleFile& m, int err) {
    std::string f = m.path.string();
    Error e;
    switch (err) {
      case EEXIST:
        e = make_error(ExitCode::failure, "a module named {} is already loaded", m.name);
        e.hint = "relax-rmrr status; relax-rmrr unload first to load another build under the same name";
        break;
      case EKEYREJECTED:
      case ENOKEY:
        e = make_error(ExitCode::environment, "the kernel rejected the signature of {}: {}", f, std::strerror(err));
        e.hint = std::string("the signing key is not trusted by this kernel; ") + kSignHint;
        break;
      case EBADMSG:
        e = make_error(ExitCode::bad_input, "the signature appended to {} is malformed", f);
        e.hint = "rebuild and sign again";
        break;
      case EPERM:
      case EACCES:
        e = make_error(ExitCode::environment, "the kernel forbids loading {}: {}", f, std::strerror(err));
        e.hint = std::string(
                     "run as root; kernel.modules_disabled=1 forbids every load until reboot; under lockdown or "
                     "module.sig_enforce=1 only signed modules load: ") +
                 kSignHint;
        break;
      case ENOEXEC:
        e = make_error(ExitCode::bad_input, "the kernel says {} has an invalid module format (built for another kernel, or corrupt)", f);
        e.hint = "dmesg tells which check failed; rebuild with `relax-rmrr build` for the running kernel";
        break;
      case ENOENT:
        e = make_error(ExitCode::refused, "the kernel could not resolve a symbol {} needs", f);
        e.hint = "dmesg names it; the module was built for another build of this kernel: rebuild with `relax-rmrr build`";
        break;
      case EBUSY:
        e = make_error(ExitCode::failure, "the kernel is busy with another livepatch transition");
        e.hint = "wait for it (relax-rmrr wait --name NAME) and load again";
        break;
      case EINVAL:
        e = make_error(ExitCode::refused, "the livepatch core rejected {} (EINVAL)", f);
        e.hint =
            "dmesg says why (a function or object not found, a klp relocation that does not resolve); "
            "rebuild with `relax-rmrr build` for exactly this kernel build";
        break;
      default: e = make_error(ExitCode::failure, "loading {} failed: {}", f, std::strerror(err)); e.hint = "dmesg may say more";
    }
    return e;
  }
  fs::path sys_;
};

class SimulatedOps : public ModuleOps {
 public:
  explicit SimulatedOps(fs::path root) : root_(std::move(root)) {}
  // The kernel's answer to a write, done at once: enabled=0 frees the patch, enabled=1 only reverses a transition.
  rr::Status write_attribute(const std::string& patch, const std::string& attribute, bool value) override {
    RR_ASSIGN(auto p, find_livepatch(root_ / "sys", patch));
    if (!p) return make_error(ExitCode::missing, "no livepatch {}", patch);
    if (attribute != "enabled") return write_livepatch_attribute(root_ / "sys", patch, attribute, value);
    if (p->enabled == value) return make_error(ExitCode::failure, "the kernel refused '{}' in enabled: Invalid argument", value ? 1 : 0);
    if (value && !p->in_transition) return make_error(ExitCode::failure, "the kernel refused '1' in enabled: Invalid argument");
    std::error_code ec;
    if (!value) {
      fs::remove_all(root_ / "sys/kernel/livepatch" / patch, ec);
      return ok_status();
    }
    return write_livepatch_attribute(root_ / "sys", patch, attribute, value);
  }
  rr::Status write_parameter(const std::string& module, const std::string& parameter, const std::string& value) override {
    fs::path file = root_ / "sys/module" / module / "parameters" / parameter;
    std::error_code ec;
    if (!fs::exists(file, ec)) return make_error(ExitCode::missing, "cannot open {}: No such file or directory", file.string());
    if (parameter != "devices") return put(file, value + "\n");
    auto selection = host::parse_device_selection(value);
    if (!selection)
      return make_error(ExitCode::bad_input, "the module {} refused '{}' in {}: Invalid argument", module, value, file.string());
    return put(file, selection->text + "\n");
  }
  rr::Status load(const ModuleFile& m, const std::string& parameters) override {
    fs::path mod = root_ / "sys/module" / m.name;
    std::error_code ec;
    if (fs::exists(mod / "initstate", ec)) return make_error(ExitCode::failure, "a module named {} is already loaded", m.name);
    RR_CHECK(put(mod / "initstate", "live\n"));
    RR_CHECK(put(mod / "refcnt", "0\n"));
    RR_CHECK(put(mod / "taint", "K\n"));
    // The parameters the module declares, as the kernel shows them; a value the module refuses fails the load.
    if (m.parameters.count("devices")) {
      std::string devices;
      if (parameters.starts_with("devices=")) devices = parameters.substr(8);
      auto selection = host::parse_device_selection(devices);
      if (!selection) {
        std::error_code ignored;
        fs::remove_all(mod, ignored);
        return make_error(ExitCode::refused, "the kernel refused {}: the module rejected its parameters (EINVAL)", m.path.string());
      }
      RR_CHECK(put(mod / "parameters/devices", selection->text + "\n"));
    }
    if (!m.build_id.empty()) {
      std::string note;
      auto u32 = [&](uint32_t v) { note.append(reinterpret_cast<const char*>(&v), 4); };
      u32(4);
      u32(static_cast<uint32_t>(m.build_id.size() / 2));
      u32(3);  // NT_GNU_BUILD_ID
      note.append("GNU\0", 4);
      for (size_t i = 0; i + 1 < m.build_id.size(); i += 2) note += static_cast<char>(std::stoi(m.build_id.substr(i, 2), nullptr, 16));
      RR_CHECK(put(mod / "notes/.note.gnu.build-id", note));
    }
    RR_ASSIGN(auto replaced, list_livepatches(root_ / "sys"));
    for (const auto& lp : replaced) fs::remove_all(root_ / "sys/kernel/livepatch" / lp.name, ec);  // .replace
    RR_CHECK(put(root_ / "sys/kernel/livepatch" / m.name / "enabled", "1\n"));
    RR_CHECK(put(root_ / "sys/kernel/livepatch" / m.name / "transition", "0\n"));
    return ok_status();
  }
  rr::Status remove(const std::string& name) override {
    std::error_code ec;
    if (!fs::exists(root_ / "sys/module" / name / "initstate", ec)) return make_error(ExitCode::missing, "module {} is not loaded", name);
    RR_ASSIGN(auto p, find_livepatch(root_ / "sys", name));
    if (p && p->enabled) return make_error(ExitCode::failure, "module {} is in use (its patch is enabled)", name);
    fs::remove_all(root_ / "sys/kernel/livepatch" / name, ec);
    fs::remove_all(root_ / "sys/module" / name, ec);
    return ok_status();
  }

 private:
  static rr::Status put(const fs::path& p, std::string_view text) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    return write_file_text(p, text);
  }
  fs::path root_;
};

}  // namespace

std::unique_ptr<ModuleOps> real_module_ops(const fs::path& sys_root) { return std::make_unique<SyscallOps>(sys_root); }
std::unique_ptr<ModuleOps> simulated_module_ops(const fs::path& root) { return std::make_unique<SimulatedOps>(root); }

rr::Status check_signing_policy(const Env& env, const ModuleFile& module) {
  if (module.is_signed) return ok_status();
  auto lock = lockdown_mode(env.sys());
  if (lock && *lock != "none") {
    Error e = make_error(ExitCode::environment, "the kernel is locked down ({}) and {} is not signed: the kernel would refuse it", *lock,
                         module.path.string());
    e.hint = kSignHint;
    return e;
  }
  auto enforced = signatures_enforced(env.sys());
  if (enforced && *enforced) {
    Error e =
        make_error(ExitCode::environment, "module signatures are enforced (module.sig_enforce) and {} is not signed", module.path.string());
    e.hint = kSignHint;
    return e;
  }
  return ok_status();
}

}  // namespace rr::lifecycle
