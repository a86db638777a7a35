// Struct layouts the replacement touches: the target's BTF (sizes, member offsets) against what the compiler
// used for our source. A probe file includes the ORIGINAL driver source (so its private structs and its exact
// include set are in scope) and stores sizeof/offsetof of every BTF member in a data section; it is compiled
// with the very command kbuild used for the original object and read back, never run.
#pragma once

#include "analysis/btf.h"
#include "common/json.h"
#include "common/result.h"
#include "compile/compile.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rr::verify {

struct MemberLayout {
  std::string name;
  uint64_t btf_offset = 0;  // bytes
  std::optional<uint64_t> compiled_offset;
};

struct StructLayout {
  std::string name;
  uint64_t btf_size = 0;
  std::optional<uint64_t> compiled_size;
  std::vector<MemberLayout> members;  // BTF's named, non-bitfield members (anonymous unions looked through)
  std::string problem;  // first mismatch, empty when equal
  bool defined_in_source = true;  // false: the probe found no such struct in the source
  bool ok() const { return problem.empty(); }
};

// Structs to check: a fixed list for the intel driver's attach and reserved-region paths (the structures those
// functions and the functions they inline dereference), plus every struct the BTF prototypes of `functions`
// take or return (through pointers). Names absent from BTF are left out with a note.
std::vector<std::string> structs_to_check(const analysis::Btf& btf, const std::vector<std::string>& functions,
                                          std::vector<std::string>& notes);

// BTF's view of one struct (nullopt: absent, or several different structs of that name).
std::optional<StructLayout> btf_layout(const analysis::Btf& btf, const std::string& name, std::string& why_not);

// The probe's C text for these layouts (exposed for tests): `include` is the file to include first.
std::string probe_source(const std::string& include, const std::vector<StructLayout>& layouts);

struct ProbeCompiler {
  std::string command;  // kbuild's compiler command for the original object (a shell command line)
  std::filesystem::path cwd;  // the kbuild tree it ran in
  std::filesystem::path object;  // the object that command wrote
  std::filesystem::path source;  // the source it compiled
  std::filesystem::path work_dir;  // where the probe goes
};

// How the recorded command names the object and the source, and the directory it must run in for those names
// to mean c.object and c.source: absolute paths (run in c.cwd), or names relative to the make's M= directory
// (kbuild 6.13+; compile::command_paths). An Error when it names neither.
using ProbeCommandPaths = compile::CommandPaths;
Result<ProbeCommandPaths> locate_probe_paths(const std::string& command, const ProbeCompiler& c);

// Fills compiled_size/compiled_offset and problem. A member the source does not have is a mismatch (problem
// set), not an Error; a probe that fails for other reasons is an Error.
Status run_probe(std::vector<StructLayout>& layouts, const ProbeCompiler& compiler);

Json to_json(const StructLayout& s);

}  // namespace rr::verify
