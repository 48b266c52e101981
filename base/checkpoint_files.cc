#include "base/checkpoint_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

namespace fastdiss {
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kFormatName[] = "fastdiss-checkpoint";
constexpr size_t kMaxManifestBytes = 16 << 20;

// ---- Small file-system helpers with errno-based messages. ----
absl::Status ErrnoError(const std::string& what, int err) {
  std::string message = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(std::move(message));
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return absl::ResourceExhaustedError(std::move(message));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::FailedPreconditionError(std::move(message));
    default:
      return absl::InternalError(std::move(message));
  }
}

absl::Status WriteFileSynced(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create '" + path + "'", errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoError("cannot write '" + path + "'", err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return ErrnoError("cannot fsync '" + path + "'", err);
  }
  if (::close(fd) != 0) return ErrnoError("cannot close '" + path + "'", errno);
  return absl::OkStatus();
}

absl::Status SyncDir(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open directory '" + path + "'", errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : ErrnoError("cannot fsync directory '" + path + "'", err);
}

// Reads a whole regular file.
absl::Status ReadFile(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open '" + path + "'", errno);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::DataLossError("'" + path + "' is not a regular file");
  }
  out->assign(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::read(fd, &(*out)[done], out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoError("cannot read '" + path + "'", err);
    }
    if (n == 0) break;  // the file shrank under us; the caller's size check reports it
    done += static_cast<size_t>(n);
  }
  out->resize(done);
  ::close(fd);
  return absl::OkStatus();
}

bool FileSize(const std::string& path, uint64_t* size) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *size = static_cast<uint64_t>(st.st_size);
  return true;
}

bool ValidFileName(std::string_view name) {
  if (name.empty() || name.front() == '.' || name == kManifest) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string RandomSuffix() {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return std::to_string(::getpid()) + "-" + Hex16(r);
}

// Refuses to replace anything but an empty directory or an earlier checkpoint.
absl::Status CheckReplaceable(const std::string& dir, bool* exists) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoError("cannot stat '" + dir + "'", errno);
    *exists = false;
    return absl::OkStatus();
  }
  *exists = true;
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError("cannot write checkpoint '" + dir +
                                         "': it exists and is not a directory");
  }
  std::error_code ec;
  const bool empty = std::filesystem::is_empty(dir, ec);
  uint64_t unused;
  if (!ec && !empty && !FileSize(dir + "/" + kManifest, &unused)) {
    return absl::FailedPreconditionError(
        "refusing to replace '" + dir +
        "': it is a non-empty directory without a checkpoint MANIFEST");
  }
  return absl::OkStatus();
}

absl::Status WriteTempDir(const std::string& tmp,
                          const std::vector<std::pair<std::string, std::string>>& files) {
  std::string manifest =
      std::string(kFormatName) + " " + std::to_string(kCheckpointFormatVersion) + "\n";
  for (const auto& [name, bytes] : files) {
    FASTDISS_RETURN_IF_ERROR(WriteFileSynced(tmp + "/" + name, bytes));
    manifest += name + " " + std::to_string(bytes.size()) + " " + Hex16(XxHash64(bytes)) + "\n";
  }
  manifest += "end " + Hex16(XxHash64(manifest)) + "\n";
  // The MANIFEST goes last: a directory that has one is complete.
  FASTDISS_RETURN_IF_ERROR(WriteFileSynced(tmp + "/" + kManifest, manifest));
  return SyncDir(tmp);
}

// Puts the complete directory `tmp` in place of the existing directory `dir`; `*old` gets the
// path that now holds the old checkpoint.
absl::Status SwapIntoPlace(const std::string& tmp, const std::string& dir,
                           const CheckpointWriteOptions& options, std::string* old) {
#ifdef RENAME_EXCHANGE
  if (options.use_rename_exchange) {
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
      *old = tmp;
      return absl::OkStatus();
    }
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) {
      return ErrnoError("cannot swap '" + tmp + "' with '" + dir + "'", errno);
    }
  }
#else
  (void)options;
#endif
  const std::string aside = dir + ".old-" + RandomSuffix();
  if (::rename(dir.c_str(), aside.c_str()) != 0) {
    return ErrnoError("cannot move '" + dir + "' aside to '" + aside + "'", errno);
  }
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    const int err = errno;
    ::rename(aside.c_str(), dir.c_str());  // best effort: put the old checkpoint back
    return ErrnoError("cannot rename '" + tmp + "' to '" + dir + "'", err);
  }
  *old = aside;
  return absl::OkStatus();
}

absl::Status ManifestError(const std::string& dir, const std::string& what) {
  return absl::DataLossError("checkpoint '" + dir + "': MANIFEST " + what);
}

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseHex16(std::string_view s, uint64_t* out) {
  if (s.size() != 16 || s.find_first_not_of("0123456789abcdef") != std::string_view::npos)
    return false;
  std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return true;
}

struct ManifestEntry {
  std::string name;
  uint64_t size;
  uint64_t hash;
};

absl::StatusOr<std::vector<ManifestEntry>> ParseManifest(const std::string& dir,
                                                         std::string_view text) {
  const size_t header_end = text.find('\n');
  const std::string_view header = text.substr(0, header_end);
  const std::string prefix = std::string(kFormatName) + " ";
  if (header_end == std::string_view::npos || header.substr(0, prefix.size()) != prefix) {
    return ManifestError(dir, "is not a fastdiss checkpoint manifest");
  }
  const std::string_view version = header.substr(prefix.size());
  if (version != std::to_string(kCheckpointFormatVersion)) {
    return absl::FailedPreconditionError("checkpoint '" + dir + "' has format version '" +
                                         std::string(version) + "'; this build reads version " +
                                         std::to_string(kCheckpointFormatVersion));
  }
  // The last line is "end <hash of everything before it>".
  if (text.size() < 22 || text.back() != '\n') return ManifestError(dir, "is truncated");
  const size_t end_line = text.rfind('\n', text.size() - 2) + 1;
  uint64_t manifest_hash;
  if (text.substr(end_line, 4) != "end " ||
      !ParseHex16(text.substr(end_line + 4, text.size() - 1 - end_line - 4), &manifest_hash)) {
    return ManifestError(dir, "is truncated (no end line)");
  }
  if (XxHash64(text.substr(0, end_line)) != manifest_hash)
    return ManifestError(dir, "is corrupted (hash mismatch)");

  std::vector<ManifestEntry> entries;
  std::set<std::string, std::less<>> seen;
  size_t pos = header_end + 1;
  for (int line = 2; pos < end_line; ++line) {
    const size_t eol = text.find('\n', pos);
    const std::string_view fields = text.substr(pos, eol - pos);
    pos = eol + 1;
    const size_t s1 = fields.find(' ');
    const size_t s2 = s1 == std::string_view::npos ? s1 : fields.find(' ', s1 + 1);
    ManifestEntry e;
    if (s2 == std::string_view::npos || !ValidFileName(fields.substr(0, s1)) ||
        !ParseDecimal(fields.substr(s1 + 1, s2 - s1 - 1), &e.size) ||
        !ParseHex16(fields.substr(s2 + 1), &e.hash)) {
      return ManifestError(dir, "line " + std::to_string(line) + " is malformed");
    }
    e.name = std::string(fields.substr(0, s1));
    if (!seen.insert(e.name).second) return ManifestError(dir, "lists '" + e.name + "' twice");
    entries.push_back(std::move(e));
  }
  return entries;
}

}  // namespace

uint64_t XxHash64(std::string_view data, uint64_t seed) {
  return XXH64(data.data(), data.size(), seed);
}

// Depth-first, without following symbolic links; ENOENT counts as done.
absl::Status RemoveCheckpointDir(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0)
    return errno == ENOENT ? absl::OkStatus() : ErrnoError("cannot stat '" + path + "'", errno);
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      return ErrnoError("cannot delete '" + path + "'", errno);
    return absl::OkStatus();
  }
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return ErrnoError("cannot open directory '" + path + "'", errno);
  std::vector<std::string> children;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") children.push_back(path + "/" + name);
  }
  ::closedir(dir);
  for (const std::string& child : children) FASTDISS_RETURN_IF_ERROR(RemoveCheckpointDir(child));
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoError("cannot delete directory '" + path + "'", errno);
  return absl::OkStatus();
}

absl::Status WriteCheckpointDir(const std::string& dir_in,
                                const std::vector<std::pair<std::string, std::string>>& files,
                                const CheckpointWriteOptions& options) {
  std::string dir = dir_in;
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();  // "ckpt/" + ".tmp" must stay a sibling
  if (dir.empty() || dir == "/")
    return absl::InvalidArgumentError("checkpoint directory must be named, got '" + dir_in + "'");
  std::set<std::string, std::less<>> names;
  for (const auto& file : files) {
    if (!ValidFileName(file.first)) {
      return absl::InvalidArgumentError(
          "invalid checkpoint file name '" + file.first +
          "' (use [A-Za-z0-9._-], not starting with '.', not MANIFEST)");
    }
    if (!names.insert(file.first).second)
      return absl::InvalidArgumentError("duplicate checkpoint file name '" + file.first + "'");
  }
  bool exists = false;
  FASTDISS_RETURN_IF_ERROR(CheckReplaceable(dir, &exists));

  const std::string tmp = dir + ".tmp-" + RandomSuffix();
  if (::mkdir(tmp.c_str(), 0755) != 0)
    return ErrnoError("cannot create directory '" + tmp + "'", errno);
  std::string old;
  absl::Status status = WriteTempDir(tmp, files);
  if (status.ok() && !exists && ::rename(tmp.c_str(), dir.c_str()) != 0) {
    status = ErrnoError("cannot rename '" + tmp + "' to '" + dir + "'", errno);
  } else if (status.ok() && exists) {
    status = SwapIntoPlace(tmp, dir, options, &old);
  }
  if (!status.ok()) {
    (void)RemoveCheckpointDir(tmp);  // best effort: the write's error is the one to report
    return status;
  }
  // Make the rename durable before the old checkpoint goes.
  const std::string parent = std::filesystem::path(dir).parent_path().string();
  status = SyncDir(parent.empty() ? "." : parent);
  // The new checkpoint is in place; an old copy that cannot be deleted is a stale sibling (see
  // checkpoint_files.h), not a failed write.
  if (!old.empty()) (void)RemoveCheckpointDir(old);
  return status;
}

absl::StatusOr<std::map<std::string, std::string>> ReadCheckpointDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return absl::NotFoundError("checkpoint directory '" + dir + "' does not exist");
    return ErrnoError("cannot stat checkpoint directory '" + dir + "'", errno);
  }
  if (!S_ISDIR(st.st_mode))
    return absl::FailedPreconditionError("checkpoint '" + dir + "' is not a directory");

  const std::string manifest_path = dir + "/" + kManifest;
  uint64_t manifest_size = 0;
  if (!FileSize(manifest_path, &manifest_size)) {
    return absl::DataLossError("checkpoint '" + dir +
                               "' has no MANIFEST (incomplete write, or not a checkpoint)");
  }
  if (manifest_size > kMaxManifestBytes) return ManifestError(dir, "is implausibly large");
  std::string manifest;
  FASTDISS_RETURN_IF_ERROR(ReadFile(manifest_path, &manifest));
  FASTDISS_ASSIGN_OR_RETURN(const std::vector<ManifestEntry> entries, ParseManifest(dir, manifest));

  std::map<std::string, std::string> files;
  for (const ManifestEntry& e : entries) {
    const std::string path = dir + "/" + e.name;
    uint64_t size = 0;
    if (!FileSize(path, &size)) {
      return absl::DataLossError("checkpoint '" + dir + "' is missing file '" + e.name +
                                 "' listed in its MANIFEST");
    }
    if (size != e.size) {  // checked before reading, so a bogus size never drives an allocation
      return absl::DataLossError("file '" + e.name + "' in checkpoint '" + dir +
                                 "' is truncated or overwritten: " + std::to_string(size) +
                                 " bytes, MANIFEST says " + std::to_string(e.size));
    }
    std::string bytes;
    FASTDISS_RETURN_IF_ERROR(ReadFile(path, &bytes));
    if (bytes.size() != e.size) {
      return absl::DataLossError("file '" + e.name + "' in checkpoint '" + dir +
                                 "' changed size while being read");
    }
    if (XxHash64(bytes) != e.hash) {
      return absl::DataLossError("file '" + e.name + "' in checkpoint '" + dir +
                                 "' is corrupted: XXH64 " + Hex16(XxHash64(bytes)) +
                                 ", MANIFEST says " + Hex16(e.hash));
    }
    files.emplace(e.name, std::move(bytes));
  }
  return files;
}

}  // namespace fastdiss
