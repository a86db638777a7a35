// How every subcommand talks to the user: errors with a hint on stderr, progress on stderr, data on stdout.
#pragma once

#include "common/json.h"
#include "common/result.h"
#include "pipeline/progress.h"

#include <string_view>

namespace rr::cli {

// Prints "relax-rmrr: error: ..." (and the hint) on stderr and returns the exit code the Error carries. With
// --json (set_json_output) the error is also one JSON object on stdout, {"error": {"code", "message", "hint"}},
// unless the command already printed its JSON document there (which then says what went wrong itself: see
// error_json), so that stdout always holds exactly one JSON document.
int report_error(const Error& error);
void set_json_output(bool on);
Json error_json(const Error& error);  // {"code": 4, "message": ..., "hint": ...}
void warn(std::string_view message);
void print_json(const Json& json);
// The end of every run: stdout (stdio and iostreams) flushed and checked, like coreutils' close_stdout. Output
// that did not reach its destination (a full disk, a closed pipe) is a failure: a message on stderr and exit 1
// (or the run's own non-zero code), never 0.
int finish_output(int exit_code);

// Writes `text` to stdout and flushes it; an Error (failure) when the write fails (a closed pipe, a full disk).
Status write_stdout(std::string_view text);

using pipeline::Progress;  // progress on stderr (pipeline/progress.h)

}  // namespace rr::cli
