#include "lifecycle/env.h"

#include "common/file.h"

#include <unistd.h>

namespace rr::lifecycle {

void report_progress(const Env& env, const std::string& line) {
  if (env.progress) env.progress(line);
}

void pause(const Env& env, std::chrono::milliseconds d) {
  if (env.sleep) env.sleep(d);
  else ::usleep(static_cast<useconds_t>(d.count() * 1000));
}

std::string running_release(const Env& env) { return read_attribute(env.proc() / "sys/kernel/osrelease").value_or(""); }

}  // namespace rr::lifecycle
