// What `relax-rmrr analyze` reports about a target kernel: its release, era, patch targets, the symbols the
// livepatch refers to, the compilers, and what is missing with how to get it, summarized from a LoadedKernel.
#pragma once

#include "analysis/kernel.h"
#include "common/json.h"

#include <optional>
#include <string>
#include <vector>

namespace rr::analysis {

struct PatchTarget {
  std::string name;
  std::string role;
  bool required = false;  // this era's livepatch replaces it
  bool present = false;  // a symbol of that name exists (vmlinux)
  bool function = false;  // ... and it is a function
  char type = 0;
  uint64_t address = 0;
  unsigned count = 0;  // same-name vmlinux symbols
  std::optional<unsigned> sympos;
  std::vector<std::string> variants;  // gcc's pieces and clones: name.cold, name.isra.0, ...
  std::optional<bool> traceable;  // listed in available_filter_functions (running kernel only)
  std::optional<bool> in_btf;  // a BTF FUNC of that name
  bool patchable = false;
  std::string note;
};

struct ReferencedSymbol {
  std::string name;
  bool present = false;
  char type = 0;
  std::optional<unsigned> sympos;
  std::optional<bool> exported;  // from Module.symvers; exported symbols need no klp relocation
};

struct KernelFacts {
  std::string release;
  std::string release_from;
  bool running = false;

  std::string symbols_from;
  std::string symbols_kind;
  size_t symbol_count = 0;
  bool addresses_known = false;

  std::string image_path;
  std::string compression;
  std::string image_version;  // the bzImage setup header's string
  bool image_has_symtab = false;
  std::optional<int64_t> kaslr_offset;

  std::optional<BtfFacts> btf;

  std::string config_from;
  std::vector<std::pair<std::string, std::string>> config;  // selected options, "n" or "(absent)" included

  std::string kbuild_dir;
  bool kbuild_present = false;
  bool symvers_present = false;

  std::optional<CompilerInfo> kernel_compiler;
  std::string kernel_compiler_from;
  std::optional<CompilerInfo> local_compiler;
  CompilerMatch compiler_match = CompilerMatch::unknown;

  Era era = Era::unknown;
  std::string era_reason;
  std::vector<PatchTarget> targets;
  std::vector<ReferencedSymbol> references;
  bool feasible = false;  // era known, every required target patchable, livepatch enabled (when known), inputs agree
  bool ready = false;  // feasible and nothing blocking missing (headers, compiler): a build can start
  std::vector<MissingItem> missing;
  std::vector<std::string> notes;
};

// The facts from a loaded kernel; `local_cc` is the compiler to compare with when the kernel's own is absent.
KernelFacts summarize(const LoadedKernel& kernel, const std::string& local_cc = "gcc");

Result<KernelFacts> analyze(const AnalyzeInputs& inputs);

Json to_json(const KernelFacts& facts);

}  // namespace rr::analysis
