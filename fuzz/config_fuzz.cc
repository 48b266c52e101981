// Fuzzes the config parser: a YAML file and "--set key=value" overrides, through the server's
// whole config path (ServerConfig::Load: parse, overrides, unknown keys, validation). The input is
// the YAML text, then optionally a line "#--set" and one override per line. A config that loads
// must describe itself (Describe) as YAML that loads again to the same description.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/config_tree.h"
#include "server/server_config.h"

namespace {

// `text` as a file that exists only in memory; its path is /proc/self/fd/N.
class MemoryFile {
 public:
  explicit MemoryFile(std::string_view text) : fd_(memfd_create("fastdiss-fuzz-config", 0)) {
    if (fd_ < 0) std::abort();
    for (size_t done = 0; done < text.size();) {
      const ssize_t n = write(fd_, text.data() + done, text.size() - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  ~MemoryFile() { close(fd_); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view yaml = input;
  std::vector<std::string> overrides;
  if (const size_t split = input.find("\n#--set\n"); split != std::string_view::npos) {
    yaml = input.substr(0, split);
    std::string_view rest = input.substr(split + 8);
    while (!rest.empty()) {
      const size_t end = rest.find('\n');
      overrides.emplace_back(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
  }
  // The plain tree parser and its own round trip.
  auto tree = fastdiss::ConfigTree::Parse(yaml, "fuzz.yaml");
  if (tree.ok()) {
    for (const std::string& o : overrides) (void)tree->Set(o);
    if (!fastdiss::ConfigTree::Parse(tree->ToYaml(), "round-trip").ok()) std::abort();
  }
  // The server's whole config path.
  MemoryFile file(yaml);
  auto config = fastdiss::ServerConfig::Load(file.path(), overrides, {});
  if (!config.ok()) return 0;
  const std::string described = config->Describe();
  MemoryFile again(described);
  auto reloaded = fastdiss::ServerConfig::Load(again.path(), {}, {});
  if (!reloaded.ok() || reloaded->Describe() != described) std::abort();
  return 0;
}
