// Where a livepatch module file is found: installed below /lib/modules, or recorded when it was loaded from
// elsewhere (so `enable` can load the same file again after a disable freed the patch).
#pragma once

#include "lifecycle/env.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::lifecycle {

// The directories below /lib/modules/<release> that hold our module, in the order they are looked at: install
// writes updates/ (extra/ by choice), DKMS writes updates/dkms/.
inline constexpr const char* kModuleSubdirs[] = {"updates", "extra", "updates/dkms"};

// Where install puts the module for `release`.
std::filesystem::path installed_module_path(const std::filesystem::path& root, const std::string& release, const std::string& name,
                                            const std::string& subdir = "updates");

// Remembers (below <root>/run/relax-rmrr) the file `name` was loaded from; forget_loaded_file drops it.
void record_loaded_file(const Env& env, const std::string& name, const std::filesystem::path& file);
void forget_loaded_file(const Env& env, const std::string& name);
std::optional<std::filesystem::path> recorded_file(const Env& env, const std::string& name);

// The files that may hold `name` for the running kernel, in the order to try them: the recorded one, then
// updates/, extra/ and updates/dkms/ of /lib/modules/<release>. They need not exist.
std::vector<std::filesystem::path> module_file_candidates(const Env& env, const std::string& name);

}  // namespace rr::lifecycle
