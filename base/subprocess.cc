#include "base/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

extern char** environ;

namespace fastdiss {

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const std::string& log_path,
    const std::vector<std::string>& extra_env) {
  if (argv.empty()) return absl::InvalidArgumentError("no program to run");
  std::unique_ptr<Subprocess> child(new Subprocess(log_path));
  std::vector<std::string> args = argv, env = extra_env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);  // extra_env first: it wins
  std::vector<char*> arg_pointers, env_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  for (std::string& variable : env) env_pointers.push_back(variable.data());
  env_pointers.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int error = posix_spawnp(&child->pid_, arg_pointers[0], &actions, nullptr,
                                 arg_pointers.data(), env_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    child->pid_ = -1;
    const std::string message = "cannot run " + argv[0] + ": " + std::strerror(error);
    return error == ENOENT ? absl::NotFoundError(message) : absl::InternalError(message);
  }
  return child;
}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string Subprocess::Log() const {
  std::ifstream in(log_path_, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void Subprocess::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

void Subprocess::Reaped(int wait_status) {
  wait_status_ = wait_status;
  pid_ = -1;
}

bool Subprocess::Exited() {
  if (pid_ <= 0) return true;
  int wait_status = 0;
  if (waitpid(pid_, &wait_status, WNOHANG) != pid_) return false;
  Reaped(wait_status);
  return true;
}

int Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!Exited()) {
    if (std::chrono::steady_clock::now() >= give_up) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(wait_status_) ? WEXITSTATUS(wait_status_) : -1;
}

int Subprocess::WaitForExit() {
  if (pid_ > 0) {
    int wait_status = 0;
    while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    Reaped(wait_status);
  }
  return WIFEXITED(wait_status_) ? WEXITSTATUS(wait_status_) : -1;
}

std::string Subprocess::ExitDescription() const {
  if (pid_ > 0) return "is running";
  if (WIFEXITED(wait_status_))
    return "exited with status " + std::to_string(WEXITSTATUS(wait_status_));
  return "was killed by signal " + std::to_string(WTERMSIG(wait_status_));
}

absl::Status RunProgram(const std::vector<std::string>& argv) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string log_path = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                         "/fastdiss-program-XXXXXX";
  const int fd = mkstemp(log_path.data());
  if (fd < 0) return absl::InternalError("cannot create " + log_path + ": " + std::strerror(errno));
  close(fd);
  struct RemoveLog {
    const std::string& path;
    ~RemoveLog() { unlink(path.c_str()); }
  } remove_log{log_path};
  FASTDISS_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> child, Subprocess::Start(argv, log_path));
  if (child->WaitForExit() == 0) return absl::OkStatus();
  constexpr size_t kKeep = 4000;
  std::string output = child->Log();
  if (output.size() > kKeep) output = "..." + output.substr(output.size() - kKeep);
  return absl::InternalError(argv[0] + " " + child->ExitDescription() + ":\n" + output);
}

}  // namespace fastdiss
