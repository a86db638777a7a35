// A fake kernel for the lifecycle tests: a sysfs/procfs tree below a temporary directory that behaves like
// kernel/livepatch does (5.1 on) when the lifecycle code loads, writes `enabled` and removes modules.
// Time passes only in tick(), which the tests install as Env::sleep.
#pragma once

#include "host/device_selection.h"
#include "host/livepatch_sysfs.h"
#include "lifecycle/lifecycle.h"
#include "lifecycle/status.h"
#include "test_util.h"

#include <fmt/format.h>

#include <map>
#include <string>
#include <vector>

namespace rr::test {

// Builds a module-shaped ELF relocatable with gcc from assembler: .modinfo fields and a GNU build-id note.
inline std::filesystem::path make_fake_module(const std::filesystem::path& dir, const std::string& file_name,
                                              const std::map<std::string, std::string>& modinfo, const std::string& build_id_byte = "0x11",
                                              bool sign = false) {
  std::string s = ".section .modinfo,\"a\"\n";
  for (const auto& [k, v] : modinfo) s += fmt::format(".asciz \"{}={}\"\n", k, v);
  s += ".section .note.gnu.build-id,\"a\"\n.balign 4\n.long 4\n.long 20\n.long 3\n.asciz \"GNU\"\n";
  for (int i = 0; i < 20; ++i) s += fmt::format(".byte {}\n", i == 0 ? build_id_byte : std::to_string(i));
  std::filesystem::path src = dir / (file_name + ".s");
  if (!write_file_text(src, s).ok()) std::abort();
  std::filesystem::path out = dir / file_name;
  auto r = run_command(fmt::format("gcc -c -o '{}' '{}'", out.string(), src.string()));
  if (r.exit_code != 0) {
    fmt::print(stderr, "gcc failed: {}\n", r.output);
    std::abort();
  }
  if (sign) {
    auto bytes = read_file_bytes(out);
    std::string text(bytes->begin(), bytes->end());
    text += std::string(40, '\x01');  // stands for the PKCS#7 blob and its descriptor
    text += lifecycle::kModuleSignatureTrailer;
    if (!write_file_text(out, text).ok()) std::abort();
  }
  return out;
}

inline std::map<std::string, std::string> livepatch_modinfo(const std::string& name = "relax_rmrr",
                                                            const std::string& release = "6.1.0-56-amd64") {
  return {{"livepatch", "Y"},
          {"name", name},
          {"vermagic", release + " SMP preempt mod_unload modversions "},
          {"relax_rmrr_kernel", release},
          {"relax_rmrr_version", "0.1.0"},
          {"relax_rmrr_forced", "0"},
          {"license", "GPL"}};
}

class FakeKernel : public lifecycle::ModuleOps {
 public:
  FakeKernel() {
    put("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n");
    std::filesystem::create_directories(root() / "sys/kernel/livepatch");
    std::filesystem::create_directories(root() / "sys/module/module/parameters");
    put("sys/module/module/parameters/sig_enforce", "N\n");
    put("sys/kernel/security/lockdown", "[none] integrity confidentiality\n");
    add_task(1, "init");
    add_task(2, "kthreadd");
  }

  const std::filesystem::path& root() const { return dir_.path(); }
  lifecycle::Env env() {
    lifecycle::Env e;
    e.root = root();
    e.ops = this;
    e.sleep = [this](std::chrono::milliseconds) { tick(); };
    e.progress = [this](const std::string& line) { progress.push_back(line); };
    return e;
  }

  void put(const std::string& rel, const std::string& text) {
    auto p = root() / rel;
    std::filesystem::create_directories(p.parent_path());
    if (!write_file_text(p, text).ok()) std::abort();
  }
  std::string get(const std::string& rel) const { return read_attribute(root() / rel).value_or("<missing>"); }
  bool has(const std::string& rel) const { return std::filesystem::exists(root() / rel); }

  void add_task(long pid, const std::string& comm, const std::string& stack = "") {
    put(fmt::format("proc/{}/comm", pid), comm + "\n");
    put(fmt::format("proc/{}/patch_state", pid), "-1\n");
    if (!stack.empty()) put(fmt::format("proc/{}/stack", pid), stack);
    tasks_.push_back(pid);
  }
  // A task that keeps a transition from finishing (its stack holds a replaced function).
  void block_with(long pid) { blocker_ = pid; }

  // --- ModuleOps ---------------------------------------------------------------------------------------
  rr::Status load(const lifecycle::ModuleFile& m, const std::string& parameters) override {
    ++loads;
    last_parameters = parameters;
    if (has("sys/module/" + m.name + "/initstate")) return make_error(ExitCode::failure, "EEXIST");
    if (fail_next_load) return *std::exchange(fail_next_load, std::nullopt);
    auto patches = host::list_livepatches(root() / "sys");
    if (!patches) return patches.error();
    for (const auto& lp : *patches)
      if (lp.in_transition) return make_error(ExitCode::failure, "EBUSY");
    put("sys/module/" + m.name + "/initstate", "live\n");
    put("sys/module/" + m.name + "/refcnt", "1\n");  // the patch holds a reference while it exists
    put("sys/module/" + m.name + "/taint", "OEK\n");
    if (m.parameters.count("devices")) {  // relax-rmrr's module: its `devices` parameter, as the kernel shows it
      auto selection = host::parse_device_selection(parameters.starts_with("devices=") ? parameters.substr(8) : "");
      if (!selection) return make_error(ExitCode::refused, "EINVAL");
      put("sys/module/" + m.name + "/parameters/devices", selection->text + "\n");
    }
    std::string note;
    auto u32 = [&](uint32_t v) { note.append(reinterpret_cast<const char*>(&v), 4); };
    u32(4), u32(static_cast<uint32_t>(m.build_id.size() / 2)), u32(3);
    note.append("GNU\0", 4);
    for (size_t i = 0; i + 1 < m.build_id.size(); i += 2) note += static_cast<char>(std::stoi(m.build_id.substr(i, 2), nullptr, 16));
    put("sys/module/" + m.name + "/notes/.note.gnu.build-id", note);
    start(m.name, 1);
    return ok_status();
  }
  rr::Status remove(const std::string& name) override {
    ++removes;
    if (!has("sys/module/" + name + "/initstate")) return make_error(ExitCode::missing, "ENOENT");
    if (get("sys/module/" + name + "/refcnt") != "0") return make_error(ExitCode::failure, "EWOULDBLOCK");
    std::filesystem::remove_all(root() / "sys/module" / name);
    return ok_status();
  }

  // The module's parameter store: the `devices` list is parsed as the module parses it; a refused value keeps the old.
  rr::Status write_parameter(const std::string& module, const std::string& parameter, const std::string& value) override {
    ++writes;
    std::string file = "sys/module/" + module + "/parameters/" + parameter;
    if (!has(file)) return make_error(ExitCode::missing, "ENOENT");
    auto selection = host::parse_device_selection(value);
    if (!selection) return make_error(ExitCode::bad_input, "EINVAL");
    put(file, selection->text + "\n");
    return ok_status();
  }

  // The kernel's enabled_store(): a write starts (or reverses) a transition at once; enabling a patch that is
  // not in transition is EINVAL. force completes the transition and keeps the module reference forever.
  rr::Status write_attribute(const std::string& name, const std::string& attribute, bool value) override {
    ++writes;
    std::string dir = "sys/kernel/livepatch/" + name;
    if (!has(dir)) return make_error(ExitCode::missing, "ENOENT");
    bool enabled = get(dir + "/enabled") == "1", in_transition = get(dir + "/transition") == "1";
    if (attribute == "enabled") {
      if (enabled == value) return make_error(ExitCode::failure, "EINVAL");
      if (value && !in_transition) return make_error(ExitCode::failure, "EINVAL");
      start(name, value ? 1 : 0);
      return ok_status();
    }
    if (attribute == "force" && value && in_transition) {
      forced = true;
      blocker_ = 0;
      patches_[name].countdown = 0;
      return ok_status();
    }
    if (attribute == "signal") return ok_status();
    return make_error(ExitCode::failure, "EINVAL");
  }

  // --- time ----------------------------------------------------------------------------------------------
  void tick() {
    ++ticks;
    for (auto it = patches_.begin(); it != patches_.end();) {
      auto& [name, st] = *it;
      std::string dir = "sys/kernel/livepatch/" + name;
      if (get(dir + "/transition") == "1" && (blocker_ == 0) && --st.countdown <= 0 && (st.countdown = 0, true)) {
        put(dir + "/transition", "0\n");
        for (long pid : tasks_) put(fmt::format("proc/{}/patch_state", pid), "-1\n");
        if (!st.enabled) {  // a disabled patch is freed: directory gone, module reference dropped (unless forced)
          std::filesystem::remove_all(root() / dir);
          if (!forced) put("sys/module/" + name + "/refcnt", "0\n");
          it = patches_.erase(it);
          continue;
        }
        // .replace: the patches enabled before are freed
        for (auto& [other, ost] : patches_)
          if (other != name && has("sys/kernel/livepatch/" + other)) {
            std::filesystem::remove_all(root() / "sys/kernel/livepatch" / other);
            put("sys/module/" + other + "/refcnt", "0\n");
            ost.enabled = false;
          }
      }
      ++it;
    }
    std::erase_if(patches_, [&](const auto& p) { return !has("sys/kernel/livepatch/" + p.first); });
  }

  int loads = 0, removes = 0, ticks = 0, writes = 0;
  std::string last_parameters;
  int transition_ticks = 3;
  bool forced = false;
  std::optional<Error> fail_next_load;
  std::vector<std::string> progress;

 private:
  struct Patch {
    bool enabled = true;
    int countdown = 0;
  };
  void start(const std::string& name, int target) {
    std::string dir = "sys/kernel/livepatch/" + name;
    put(dir + "/enabled", target ? "1\n" : "0\n");
    put(dir + "/transition", "1\n");
    auto& st = patches_[name];
    st.enabled = target == 1;
    st.countdown = transition_ticks;
    for (long pid : tasks_) put(fmt::format("proc/{}/patch_state", pid), target ? "0\n" : "1\n");
    if (blocker_) {
      for (long pid : tasks_)
        if (pid != blocker_) put(fmt::format("proc/{}/patch_state", pid), target ? "1\n" : "0\n");
    }
  }
  TempDir dir_;
  std::vector<long> tasks_;
  long blocker_ = 0;
  std::map<std::string, Patch> patches_;
};

}  // namespace rr::test
