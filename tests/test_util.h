// Shared helpers for the GoogleTest suites: temporary directories that clean up after
// themselves and a tiny SentencePiece model made in memory (no spm_train needed).
#ifndef FASTDISS_TESTS_TEST_UTIL_H_
#define FASTDISS_TESTS_TEST_UTIL_H_

#include <string>
#include <vector>

namespace fastdiss::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A serialized unigram ModelProto with identity normalization: <pad>=0, <unk>=1, <s>=2, </s>=3,
// then "▁" and one piece per character of `characters`, then each of `words` ("▁" + word), so
// text made of those characters round-trips. Vocabulary size = 5 + characters + words.
std::string TinySentencePieceModel(const std::string& characters,
                                   const std::vector<std::string>& words = {});

void WriteFile(const std::string& path, const std::string& contents);
std::string ReadFile(const std::string& path);

// A TCP port that was free a moment ago on 127.0.0.1.
int FreePort();

}  // namespace fastdiss::testing

#endif  // FASTDISS_TESTS_TEST_UTIL_H_
