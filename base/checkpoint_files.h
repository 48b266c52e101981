// Checkpoint directories: a set of named files that is written, replaced and verified as a unit.
//
// WriteCheckpointDir writes every file plus a MANIFEST (each file's size and XXH64 hash) into a
// fresh sibling directory "<dir>.tmp-<pid>-<random>", fsyncs the files and the directory, and
// only then puts it in place of `dir`, so `dir` never holds a half-written checkpoint:
//  - `dir` absent: one rename(2).
//  - `dir` present: renameat2(RENAME_EXCHANGE) swaps the two directories atomically and the old
//    one is deleted; readers see the complete old or the complete new checkpoint at every moment.
//    Where the filesystem lacks RENAME_EXCHANGE, the old directory is renamed aside to
//    "<dir>.old-<pid>-<random>" and the new one renamed in. A crash between those two renames
//    leaves no `dir` (readers get NOT_FOUND) but both complete copies as siblings; rename either
//    back by hand. A crash at any other point leaves `dir` complete (old or new) and at most a
//    stale ".tmp-"/".old-" sibling, which nothing reads and which can be deleted.
// To keep a typo from deleting data, an existing `dir` is replaced only if it is empty or holds a
// MANIFEST. Calls block on disk I/O. Concurrent writers of the same `dir` are not supported.
//
// ReadCheckpointDir verifies the MANIFEST (which carries its own hash) and every file's size and
// hash, and says which file is missing, truncated or corrupted. Files not named in the MANIFEST
// are ignored. Whole files are held in memory, as LibTorch serializes to a buffer anyway.
#ifndef FASTDISS_BASE_CHECKPOINT_FILES_H_
#define FASTDISS_BASE_CHECKPOINT_FILES_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace fastdiss {

// First line of every MANIFEST is "fastdiss-checkpoint <version>".
inline constexpr int kCheckpointFormatVersion = 1;

struct CheckpointWriteOptions {
  // Tests turn this off to exercise the rename-aside path that filesystems without
  // renameat2(RENAME_EXCHANGE) take.
  bool use_rename_exchange = true;
};

// Writes `files` (name -> bytes) as the checkpoint directory `dir`, replacing an existing one as
// described above. Names are [A-Za-z0-9._-]+, not starting with '.', unique, and not "MANIFEST".
// The parent directory must exist.
absl::Status WriteCheckpointDir(const std::string& dir,
                                const std::vector<std::pair<std::string, std::string>>& files,
                                const CheckpointWriteOptions& options = {});

// Reads and verifies every file named in `dir`/MANIFEST. Errors: NOT_FOUND when `dir` does not
// exist; FAILED_PRECONDITION for a MANIFEST of another format version; DATA_LOSS for a missing
// or damaged MANIFEST and for a missing, truncated or corrupted file (named in the message).
absl::StatusOr<std::map<std::string, std::string>> ReadCheckpointDir(const std::string& dir);

// Deletes the checkpoint directory `dir` and everything in it (a missing `dir` is not an error).
// Plain POSIX calls, not std::filesystem::remove_all: beside PyTorch's CUDA LibTorch (built with
// its own toolchain) a trainer crashed (SIGSEGV at address 0) on its first checkpoint
// replacement, the step that called remove_all (scripts/gpu-check.sh, docs/deploy.md).
absl::Status RemoveCheckpointDir(const std::string& dir);

// XXH64 (xxHash, 64-bit, libxxhash) of `data`; the MANIFEST's file hash.
uint64_t XxHash64(std::string_view data, uint64_t seed = 0);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_CHECKPOINT_FILES_H_
