// Which functions really changed between two compiles of the same file, after inlining. Bytes and
// relocations are compared symbolically, so a string that moved in .rodata, a renumbered local symbol
// (__func__.3 -> __func__.4) or a WARN's line number is not a change.
#pragma once

#include "common/json.h"
#include "elf/object.h"

#include <string>
#include <vector>

namespace rr::diff {

enum class Status { same, changed, added, removed };
std::string status_name(Status s);

struct FunctionDiff {
  std::string name;  // the function symbol (e.g. intel_iommu_attach_device, risky_device.part.0)
  Status status = Status::same;
  std::vector<std::string> pieces;  // its sections in the patched object: .text.X and .text.unlikely.X (.cold)
  std::string reason;  // first difference found, for humans
  bool is_init = false;  // lives in .init.text: runs once at boot, cannot be live-patched
};

struct DataDiff {
  std::string name;
  Status status = Status::same;
  std::string reason;
  std::string section;  // where it lives (in the patched object, or the original when removed)
};

struct ObjectDiff {
  std::vector<FunctionDiff> functions;  // only the ones not `same`
  std::vector<DataDiff> data;  // writable data objects that changed: a livepatch cannot change them
  size_t functions_compared = 0;
};

// `original` and `patched` must be compiled with -ffunction-sections (one .text.<name> per function).
Result<ObjectDiff> compare(const obj::Object& original, const obj::Object& patched);

Json to_json(const ObjectDiff& diff);

}  // namespace rr::diff
