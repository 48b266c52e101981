#include "server/model_versions.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "base/checkpoint_files.h"

namespace fastdiss {
namespace {

namespace fs = std::filesystem;

bool AllDigits(const std::string& name) {
  if (name.empty() || name.size() > 18) return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ResolveCheckpointDir(const std::string& path) {
  std::error_code error;
  if (fs::is_regular_file(fs::path(path) / "MANIFEST", error)) return path;
  if (!fs::is_directory(path, error)) {
    return absl::NotFoundError("no checkpoint directory at '" + path + "'");
  }
  long long newest = -1;
  std::string newest_name;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    const std::string name = entry.path().filename().string();
    if (!AllDigits(name) || !entry.is_directory(error)) continue;
    const long long number = std::stoll(name);
    if (number > newest) {
      newest = number;
      newest_name = name;
    }
  }
  if (error) return absl::UnavailableError("cannot list '" + path + "': " + error.message());
  if (newest < 0) {
    return absl::NotFoundError(
        "'" + path + "' holds no checkpoint (no MANIFEST) and no version folders (1, 2, ...)");
  }
  return (fs::path(path) / newest_name).string();
}

absl::StatusOr<std::string> ManifestDigest(const std::string& checkpoint_dir) {
  std::ifstream in(checkpoint_dir + "/MANIFEST", std::ios::binary);
  if (!in) return absl::NotFoundError("no MANIFEST in '" + checkpoint_dir + "'");
  std::stringstream manifest;
  manifest << in.rdbuf();
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx",
                static_cast<unsigned long long>(XxHash64(manifest.str())));
  return std::string(hash, 8);
}

}  // namespace fastdiss
