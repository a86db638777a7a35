// The options that name a target kernel, shared by every command that reads one (analyze, build, verify).
#pragma once

#include "analysis/kernel.h"

#include <CLI/CLI.hpp>

#include <string>

namespace rr::cli {

struct KernelOptions {
  std::string release, kallsyms, system_map, vmlinux, image, btf, config, kbuild;
};

void add_kernel_options(CLI::App* app, KernelOptions& o);
analysis::AnalyzeInputs to_analyze_inputs(const KernelOptions& o);
// --source: a tarball, tree or drivers/iommu directory (build, verify, patch).
CLI::Option* add_source_option(CLI::App* app, std::string& source);

}  // namespace rr::cli
