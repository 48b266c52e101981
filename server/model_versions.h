// Where a hosted model's checkpoint is, and which version it is, without loading it.
//
// A model's configured `checkpoint` is either a checkpoint directory (it holds a MANIFEST) or a
// base directory of versions in TF Serving's layout, base/1, base/2, ...: then the version folder
// with the greatest number is served. A new version is published by writing it completely under
// a temporary name and renaming it to the next number; the server picks it up at SIGHUP or at its
// next poll (docs/serving.md). No LibTorch.
#ifndef FASTDISS_SERVER_MODEL_VERSIONS_H_
#define FASTDISS_SERVER_MODEL_VERSIONS_H_

#include <string>

#include "absl/status/statusor.h"

namespace fastdiss {

// The checkpoint directory `path` names now: itself, or its newest version folder. NOT_FOUND
// (with the path) when there is neither.
absl::StatusOr<std::string> ResolveCheckpointDir(const std::string& path);

// The first 8 hex digits of XXH64 of the directory's MANIFEST: names the exact files of a
// checkpoint (every file's size and hash is in its MANIFEST). NOT_FOUND without a MANIFEST.
absl::StatusOr<std::string> ManifestDigest(const std::string& checkpoint_dir);

}  // namespace fastdiss

#endif  // FASTDISS_SERVER_MODEL_VERSIONS_H_
