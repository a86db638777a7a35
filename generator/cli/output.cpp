#include "cli/output.h"

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace rr::cli {

namespace {
bool json_output = false;  // the command runs with --json
bool json_doc_printed = false;  // print_json() has written the command's document
}  // namespace

void set_json_output(bool on) { json_output = on; }

Json error_json(const Error& error) {
  Json e = Json::object();
  e.set("code", static_cast<int>(error.code));
  e.set("message", error.message);
  e.set("hint", error.hint.empty() ? Json(nullptr) : Json(error.hint));
  return e;
}

int report_error(const Error& error) {
  fmt::print(stderr, "relax-rmrr: error: {}\n", error.message);
  if (!error.hint.empty()) fmt::print(stderr, "  hint: {}\n", error.hint);
  if (json_output && !json_doc_printed) {
    Json j = Json::object();
    j.set("error", error_json(error));
    print_json(j);
  }
  return static_cast<int>(error.code);
}

void warn(std::string_view message) { fmt::print(stderr, "relax-rmrr: warning: {}\n", message); }

void print_json(const Json& json) {
  fmt::print("{}\n", json.dump(2));
  json_doc_printed = true;
}

int finish_output(int exit_code) {
  std::cout.flush();
  bool failed = !std::cout.good();
  int err = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    failed = true;
    err = errno;
  }
  if (!failed) return exit_code;
  std::fprintf(stderr, "relax-rmrr: error: cannot write the output: %s\n", err ? std::strerror(err) : "write error");
  return exit_code == 0 ? static_cast<int>(ExitCode::failure) : exit_code;
}

Status write_stdout(std::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    return make_error(ExitCode::failure, "cannot write to standard output: {}", std::strerror(errno));
  return ok_status();
}

}  // namespace rr::cli
