// ChildProcess: runs a built binary (cgelu-server, cgelu-echo-server, cgelu-loadtest) as a test
// subject, with stdout and stderr merged into one pipe the test reads line by line, or, for a test
// that tells the two apart, stdout written to a file and only stderr in the pipe.
// Every wait is bounded: a child that does not print what is expected, or does not exit, fails the
// test instead of hanging it, and the destructor always reaps the child (SIGTERM, then SIGKILL).
// Thread-safety: one thread per object.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace cgelu::loadtest::testing {

class ChildProcess {
 public:
  // `stdout_path` empty: stdout goes to the pipe with stderr; otherwise to that file (truncated).
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& stdout_path = "");
  ~ChildProcess();

  // Reads output until a line matches `pattern` (ECMAScript regex) and returns its first capture
  // group; DEADLINE_EXCEEDED or UNAVAILABLE (the child exited) otherwise.
  absl::StatusOr<std::string> WaitForLine(const std::string& pattern, double timeout_s);
  // Waits for the child to exit on its own and returns its exit code (128 + signal if killed);
  // DEADLINE_EXCEEDED if it is still running after `timeout_s` (it is then killed).
  absl::StatusOr<int> Wait(double timeout_s);
  // SIGTERM, then SIGKILL after `grace_s`; returns the exit code.
  int Stop(double grace_s = 10);
  // Everything read from the pipe so far.
  const std::string& output() const { return output_; }

 private:
  ChildProcess(pid_t pid, int fd) : pid_(pid), fd_(fd) {}
  // Appends what is readable within `timeout_ms` to output_; false at end of output.
  bool ReadSome(int timeout_ms);

  pid_t pid_;
  int fd_;
  bool exited_ = false;
  int exit_code_ = 0;
  std::string output_;
  size_t scanned_ = 0;  // output_ before this offset has been matched against patterns
};

// Runs `argv` to completion (at most `timeout_s`) and returns {exit code, output}, where output is
// stderr alone when stdout goes to `stdout_path`.
absl::StatusOr<std::pair<int, std::string>> RunToCompletion(const std::vector<std::string>& argv,
                                                            double timeout_s,
                                                            const std::string& stdout_path = "");

}  // namespace cgelu::loadtest::testing
