// Subprocess: a child program for integration tests, its stdout and stderr in a log file.
// The destructor kills (SIGKILL) and reaps a child that is still running. Not thread-safe.
#ifndef FASTDISS_TESTS_SUBPROCESS_H_
#define FASTDISS_TESTS_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>


namespace fastdiss::testing {

class Subprocess {
 public:
  // Runs argv[0] (a path) with the rest as arguments and the current environment plus
  // `extra_env` ("NAME=value"). Null if it could not be started.
  static std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv, const std::string& log_path,
                                           const std::vector<std::string>& extra_env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  std::string Log() const;
  void Signal(int signal);
  // True once the child has exited (and is reaped).
  bool Exited();
  // The exit status, or -1 if it still runs after `timeout` or was killed by a signal.
  int Wait(std::chrono::milliseconds timeout);

 private:
  explicit Subprocess(std::string log_path) : log_path_(std::move(log_path)) {}

  std::string log_path_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
};

// A TCP port that was free a moment ago on 127.0.0.1.
int FreePort();

}  // namespace fastdiss::testing

#endif  // FASTDISS_TESTS_SUBPROCESS_H_
