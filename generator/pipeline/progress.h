// How a long job reports its steps: "[2/7] compiling ... done in 6.8s" on stderr, silent when quiet. The one
// progress interface of the pipeline; each step's seconds also go into the job's timings.
#pragma once

#include <chrono>
#include <string_view>

namespace rr::pipeline {

class Progress {
 public:
  Progress(int total_steps, bool quiet) : total_(total_steps), quiet_(quiet) {}
  void begin(std::string_view what);
  double end();  // seconds the step took

 private:
  int total_;
  int step_ = 0;
  bool quiet_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace rr::pipeline
