#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <regex>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace cgelu::loadtest::testing {
namespace {

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

using Clock = std::chrono::steady_clock;

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& stdout_path) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdout_path.empty()) {
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  } else {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (error != 0) {
    close(pipe_fds[0]);
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", strerror(error)));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, pipe_fds[0]));
}

ChildProcess::~ChildProcess() {
  Stop(5);
  close(fd_);
}

bool ChildProcess::ReadSome(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return true;
  char buffer[4096];
  const ssize_t n = read(fd_, buffer, sizeof(buffer));
  if (n <= 0) return false;
  output_.append(buffer, static_cast<size_t>(n));
  return true;
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(const std::string& pattern,
                                                      double timeout_s) {
  const std::regex re(pattern);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  bool open = true;
  while (true) {
    size_t end;
    while ((end = output_.find('\n', scanned_)) != std::string::npos) {
      const std::string line = output_.substr(scanned_, end - scanned_);
      scanned_ = end + 1;
      std::smatch match;
      if (std::regex_search(line, match, re)) return match.size() > 1 ? match[1].str() : line;
    }
    if (!open) {
      return absl::UnavailableError(
          absl::StrCat("the child exited before printing /", pattern, "/; output:\n", output_));
    }
    if (Clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("no line matched /", pattern, "/ in ", timeout_s, " s; output:\n", output_));
    }
    open = ReadSome(100);
  }
}

absl::StatusOr<int> ChildProcess::Wait(double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  while (!exited_) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      exit_code_ = ExitCodeOf(status);
      break;
    }
    if (Clock::now() >= deadline) {
      Stop(1);
      return absl::DeadlineExceededError(
          absl::StrCat("still running after ", timeout_s, " s; output:\n", output_));
    }
    ReadSome(50);
  }
  // The rest of the output; bounded in case something else still holds the pipe open.
  const auto drain_deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < drain_deadline && ReadSome(50)) {
  }
  return exit_code_;
}

int ChildProcess::Stop(double grace_s) {
  if (exited_) return exit_code_;
  kill(pid_, SIGTERM);
  const auto deadline = Clock::now() + std::chrono::duration<double>(grace_s);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    ReadSome(20);
  }
  exited_ = true;
  exit_code_ = ExitCodeOf(status);
  return exit_code_;
}

absl::StatusOr<std::pair<int, std::string>> RunToCompletion(const std::vector<std::string>& argv,
                                                            double timeout_s,
                                                            const std::string& stdout_path) {
  auto child = ChildProcess::Start(argv, stdout_path);
  if (!child.ok()) return child.status();
  auto code = (*child)->Wait(timeout_s);
  if (!code.ok()) return code.status();
  return std::pair{*code, (*child)->output()};
}

}  // namespace cgelu::loadtest::testing
