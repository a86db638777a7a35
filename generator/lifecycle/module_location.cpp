#include "lifecycle/module_location.h"

#include "common/file.h"

namespace fs = std::filesystem;

namespace rr::lifecycle {

fs::path installed_module_path(const fs::path& root, const std::string& release, const std::string& name, const std::string& subdir) {
  return root / "lib/modules" / release / subdir / (name + ".ko");
}

void record_loaded_file(const Env& env, const std::string& name, const fs::path& file) {
  std::error_code ec;
  fs::create_directories(env.record_file(name).parent_path(), ec);
  (void)write_file_text(env.record_file(name), fs::absolute(file, ec).string() + "\n");
}

void forget_loaded_file(const Env& env, const std::string& name) {
  std::error_code ec;
  fs::remove(env.record_file(name), ec);
}

std::optional<fs::path> recorded_file(const Env& env, const std::string& name) {
  auto text = read_attribute(env.record_file(name));
  if (!text || text->empty()) return std::nullopt;
  return fs::path(*text);
}

std::vector<fs::path> module_file_candidates(const Env& env, const std::string& name) {
  std::vector<fs::path> out;
  if (auto rec = recorded_file(env, name)) out.push_back(*rec);
  std::string release = running_release(env);
  for (const char* sub : kModuleSubdirs) out.push_back(installed_module_path(env.root, release, name, sub));
  return out;
}

}  // namespace rr::lifecycle
