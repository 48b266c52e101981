// Child programs, started one way for the whole project: without a shell, stdin from /dev/null,
// stdout and stderr together in a log file.
#ifndef FASTDISS_BASE_SUBPROCESS_H_
#define FASTDISS_BASE_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace fastdiss {

// One running child. The destructor kills (SIGKILL) and reaps a child that still runs. Not
// thread-safe.
class Subprocess {
 public:
  // Runs argv[0] (a path, or a name looked up in PATH) with the rest as its arguments, the
  // environment of this process plus `extra_env` ("NAME=value", which wins), and its output in
  // `log_path` (truncated first). NOT_FOUND when the program does not exist, INTERNAL when it
  // cannot be started for another reason.
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const std::string& log_path,
      const std::vector<std::string>& extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // What the child has written so far.
  std::string Log() const;
  void Signal(int signal);
  // True once the child has exited (and is reaped).
  bool Exited();
  // The exit status, or -1 when it still runs after `timeout` or was ended by a signal.
  int Wait(std::chrono::milliseconds timeout);
  // Blocks until the child has ended; as Wait.
  int WaitForExit();
  // "exited with status 1", "was killed by signal 9", or "is running".
  std::string ExitDescription() const;

 private:
  explicit Subprocess(std::string log_path) : log_path_(std::move(log_path)) {}
  void Reaped(int wait_status);

  std::string log_path_;
  pid_t pid_ = -1;
  int wait_status_ = -1;  // from waitpid, once reaped
};

// Runs argv to its end (argv[0] as in Subprocess::Start) with its output in a temporary file.
// OK when it exits 0; otherwise INTERNAL with how it ended and the last 4,000 bytes of its
// output, where programs say what went wrong; NOT_FOUND when it is not installed.
absl::Status RunProgram(const std::vector<std::string>& argv);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_SUBPROCESS_H_
