// The verify job as one call: is this source (or these two objects compiled elsewhere) exactly what the target
// kernel was built from? prepare_change() (or prepare_from_objects()) -> verify::verify(). `relax-rmrr verify`
// only parses options, calls check_source() and prints the report.
#pragma once

#include "analysis/kernel.h"
#include "pipeline/prepare.h"
#include "pipeline/progress.h"
#include "verify/verify.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace rr::pipeline {

struct CheckRequest {
  analysis::AnalyzeInputs kernel;
  std::string source;  // tarball, tree or drivers/iommu directory; empty: the distribution's in /usr/src
  // ORIGINAL.o and PATCHED.o compiled elsewhere: no source, compiler or kbuild tree here (no layout probe then).
  std::optional<std::pair<std::filesystem::path, std::filesystem::path>> objects;
  verify::TextPreference text = verify::TextPreference::automatic;
  std::string keep_work_dir;
};

struct CheckedSource {
  std::unique_ptr<PreparedChange> change;
  verify::Report report;  // report.ok(): the source matches; else verify::refusal(report) says why
};

int check_steps(const CheckRequest& request);  // for Progress
Result<CheckedSource> check_source(const CheckRequest& request, Progress& progress);

}  // namespace rr::pipeline
