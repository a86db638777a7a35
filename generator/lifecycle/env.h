// What every lifecycle step works on: the filesystem root (/ or a fake tree in tests), the kernel calls, the
// clock and where progress goes.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

namespace rr::lifecycle {

class ModuleOps;

struct Env {
  std::filesystem::path root = "/";
  ModuleOps* ops = nullptr;
  // Waiting between polls; tests advance their fake kernel here.
  std::function<void(std::chrono::milliseconds)> sleep;
  // Progress lines for stderr (may be empty).
  std::function<void(const std::string&)> progress;

  std::filesystem::path sys() const { return root / "sys"; }
  std::filesystem::path proc() const { return root / "proc"; }
  // Where `load` records the file it loaded, so `enable` can load it again: <root>/run/relax-rmrr/<name>.path
  std::filesystem::path record_file(const std::string& name) const { return root / "run/relax-rmrr" / (name + ".path"); }
};

// A progress line for the user (nothing when Env::progress is empty).
void report_progress(const Env& env, const std::string& line);
// Waits `d` (Env::sleep in tests).
void pause(const Env& env, std::chrono::milliseconds d);
// The running kernel's release as <root>/proc says.
std::string running_release(const Env& env);

}  // namespace rr::lifecycle
