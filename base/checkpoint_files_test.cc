#include "base/checkpoint_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace fastdiss {
namespace {

namespace fs = std::filesystem;
using Files = std::vector<std::pair<std::string, std::string>>;
using FileMap = std::map<std::string, std::string>;

class CheckpointFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "checkpoint_files_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ + "/ckpt";
  }
  void TearDown() override { fs::remove_all(root_); }

  // Every entry of the temp root, so tests can see stray ".tmp-"/".old-" siblings.
  std::vector<std::string> RootEntries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(root_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string Slurp(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void Spit(const std::string& path, const std::string& bytes) const {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }

  std::string root_;
  std::string dir_;
};

std::string AllBytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(XxHash64Test, ReferenceVectors) {
  EXPECT_EQ(XxHash64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(XxHash64("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(XxHash64("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(XxHash64("message digest"), 0x066ED728FCEEB3BEULL);
  EXPECT_EQ(XxHash64(std::string(32, 'a')), 0x856E843298F99AD7ULL);  // exactly one stripe
  EXPECT_EQ(XxHash64("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
  EXPECT_EQ(XxHash64("The quick brown fox jumps over the lazy dog"), 0x0B242D361FDA71BCULL);
  EXPECT_EQ(XxHash64("Nobody inspects the spammish repetition", 1234), 0x55E30CD248A5419FULL);
}

TEST_F(CheckpointFilesTest, RoundTrip) {
  const Files files = {
      {"model.pt", AllBytes() + AllBytes()}, {"config.yaml", "a: 1\n"}, {"empty", ""}};
  ASSERT_TRUE(WriteCheckpointDir(dir_, files).ok());
  auto read = ReadCheckpointDir(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, FileMap(files.begin(), files.end()));
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"ckpt"});  // no temp sibling left
  EXPECT_EQ(Slurp(dir_ + "/MANIFEST").rfind("fastdiss-checkpoint 1\n", 0), 0u);
}

TEST_F(CheckpointFilesTest, TrailingSlashStillWritesASibling) {
  ASSERT_TRUE(WriteCheckpointDir(dir_ + "/", {{"a", "x"}}).ok());
  ASSERT_TRUE(WriteCheckpointDir(dir_ + "/", {{"a", "y"}}).ok());
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"ckpt"});
  EXPECT_EQ(ReadCheckpointDir(dir_)->at("a"), "y");
}

class CheckpointOverwriteTest : public CheckpointFilesTest,
                                public ::testing::WithParamInterface<bool> {};

TEST_P(CheckpointOverwriteTest, ReplacesExistingCheckpointCompletely) {
  CheckpointWriteOptions options;
  options.use_rename_exchange = GetParam();
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "old a"}, {"b", "old b"}}, options).ok());
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "new a"}, {"c", "new c"}}, options).ok());
  auto read = ReadCheckpointDir(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (FileMap{{"a", "new a"}, {"c", "new c"}}));
  EXPECT_FALSE(fs::exists(dir_ + "/b"));                       // nothing of the old one survives
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"ckpt"});  // old copy removed
}

INSTANTIATE_TEST_SUITE_P(Swap, CheckpointOverwriteTest, ::testing::Bool(), [](const auto& info) {
  return info.param ? "RenameExchange" : "RenameAside";
});

// Out of space mid-write (the file-size limit stands in for a full disk: writes past it fail with
// EFBIG as they would with ENOSPC): a clear error, the previous checkpoint intact and readable,
// nothing half-written left beside it.
TEST_F(CheckpointFilesTest, RunningOutOfSpaceLeavesThePreviousCheckpointIntact) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"weights", "old weights"}}).ok());
  struct rlimit saved;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  const sighandler_t old_handler = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const absl::Status status = WriteCheckpointDir(dir_, {{"weights", std::string(1 << 20, 'w')}});
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("cannot write"), std::string::npos) << status;
  EXPECT_NE(status.message().find("weights"), std::string::npos) << status;
  auto read = ReadCheckpointDir(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (FileMap{{"weights", "old weights"}}));
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"ckpt"});  // the partial copy is gone
}

TEST_F(CheckpointFilesTest, RemoveDeletesTheTreeButNotWhatLinksPointTo) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "bytes"}}, {}).ok());
  fs::create_directories(dir_ + "/nested/deeper");
  Spit(dir_ + "/nested/deeper/f", "x");
  Spit(root_ + "/outside", "keep me");
  fs::create_symlink(root_ + "/outside", dir_ + "/link");
  fs::create_directory_symlink(root_, dir_ + "/nested/up");
  ASSERT_TRUE(RemoveCheckpointDir(dir_).ok());
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"outside"});
  EXPECT_EQ(Slurp(root_ + "/outside"), "keep me");
  EXPECT_TRUE(RemoveCheckpointDir(dir_).ok()) << "a missing directory is already removed";
}

TEST_F(CheckpointFilesTest, ReplacesAnEmptyDirectory) {
  fs::create_directory(dir_);
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}}).ok());
  EXPECT_EQ(ReadCheckpointDir(dir_)->at("a"), "x");
}

TEST_F(CheckpointFilesTest, RefusesToReplaceADirectoryThatIsNotACheckpoint) {
  fs::create_directory(dir_);
  Spit(dir_ + "/precious.txt", "keep me");
  const absl::Status s = WriteCheckpointDir(dir_, {{"a", "x"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("without a checkpoint MANIFEST"), std::string::npos) << s;
  EXPECT_EQ(Slurp(dir_ + "/precious.txt"), "keep me");
  EXPECT_EQ(RootEntries(), std::vector<std::string>{"ckpt"});
}

TEST_F(CheckpointFilesTest, RefusesToReplaceARegularFile) {
  Spit(dir_, "a file");
  EXPECT_EQ(WriteCheckpointDir(dir_, {{"a", "x"}}).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Slurp(dir_), "a file");
}

TEST_F(CheckpointFilesTest, RejectsBadFileNamesWithoutTouchingDisk) {
  for (const std::string bad :
       {"", "MANIFEST", "../x", "a/b", ".hidden", "..", "sp ace", "new\nline"}) {
    const absl::Status s = WriteCheckpointDir(dir_, {{bad, "x"}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "': " << s;
  }
  const absl::Status dup = WriteCheckpointDir(dir_, {{"a", "1"}, {"a", "2"}});
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("duplicate checkpoint file name 'a'"), std::string::npos) << dup;
  EXPECT_EQ(WriteCheckpointDir("", {{"a", "1"}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(RootEntries().empty());
}

TEST_F(CheckpointFilesTest, MissingParentDirectoryFailsCleanly) {
  const absl::Status s = WriteCheckpointDir(root_ + "/no/such/ckpt", {{"a", "x"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_TRUE(RootEntries().empty());
}

TEST_F(CheckpointFilesTest, MissingDirectory) {
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read.status().message(), "checkpoint directory '" + dir_ + "' does not exist");
}

TEST_F(CheckpointFilesTest, MissingManifest) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}}).ok());
  fs::remove(dir_ + "/MANIFEST");
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("has no MANIFEST"), std::string::npos) << read.status();
}

TEST_F(CheckpointFilesTest, UnknownFormatVersion) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}}).ok());
  std::string manifest = Slurp(dir_ + "/MANIFEST");
  manifest.replace(0, manifest.find('\n'), "fastdiss-checkpoint 2");
  Spit(dir_ + "/MANIFEST", manifest);
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(read.status().message().find("format version '2'; this build reads version 1"),
            std::string::npos)
      << read.status();
}

TEST_F(CheckpointFilesTest, MissingFile) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}, {"weights.bin", "w"}}).ok());
  fs::remove(dir_ + "/weights.bin");
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("missing file 'weights.bin'"), std::string::npos)
      << read.status();
}

TEST_F(CheckpointFilesTest, TruncatedFile) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"weights.bin", AllBytes()}}).ok());
  fs::resize_file(dir_ + "/weights.bin", 100);
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("file 'weights.bin'"), std::string::npos) << read.status();
  EXPECT_NE(read.status().message().find("truncated or overwritten: 100 bytes, MANIFEST says 256"),
            std::string::npos)
      << read.status();
}

TEST_F(CheckpointFilesTest, CorruptedFile) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"weights.bin", AllBytes()}}).ok());
  std::string bytes = AllBytes();
  bytes[77] ^= 0x10;  // one bit, same size
  Spit(dir_ + "/weights.bin", bytes);
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(
      read.status().message().find("file 'weights.bin' in checkpoint '" + dir_ + "' is corrupted"),
      std::string::npos)
      << read.status();
}

TEST_F(CheckpointFilesTest, ExtraFilesAreIgnored) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}}).ok());
  Spit(dir_ + "/notes.txt", "hand-written");
  auto read = ReadCheckpointDir(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (FileMap{{"a", "x"}}));
}

TEST_F(CheckpointFilesTest, EveryDamagedManifestIsRejected) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}, {"bb", "yy"}}).ok());
  const std::string manifest = Slurp(dir_ + "/MANIFEST");
  for (size_t len = 0; len < manifest.size(); ++len) {  // every truncation
    Spit(dir_ + "/MANIFEST", manifest.substr(0, len));
    EXPECT_FALSE(ReadCheckpointDir(dir_).ok()) << "truncated to " << len;
  }
  for (size_t i = 0; i < manifest.size(); ++i) {  // every single-byte change
    for (const char c : {'\0', '\n', ' ', '0', 'f', '\xff'}) {
      if (manifest[i] == c) continue;
      std::string damaged = manifest;
      damaged[i] = c;
      Spit(dir_ + "/MANIFEST", damaged);
      EXPECT_FALSE(ReadCheckpointDir(dir_).ok()) << "byte " << i << " set to " << int(c);
    }
  }
  Spit(dir_ + "/MANIFEST", manifest + "trailing\n");
  EXPECT_FALSE(ReadCheckpointDir(dir_).ok());
  Spit(dir_ + "/MANIFEST", manifest);
  EXPECT_TRUE(ReadCheckpointDir(dir_).ok());
}

// A MANIFEST with a valid hash but hostile content (as a crafted checkpoint could carry).
TEST_F(CheckpointFilesTest, WellHashedButMalformedManifestIsRejected) {
  fs::create_directory(dir_);
  Spit(root_ + "/outside", "secret");
  const auto with_end = [](std::string body) {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(XxHash64(body)));
    return body + "end " + hex + "\n";
  };
  const std::string header = "fastdiss-checkpoint 1\n";
  const std::string h = " 0000000000000000\n";
  for (const std::string& body :
       {header + "../outside 6" + h, header + "a 99999999999999999999999" + h, header + "a -1" + h,
        header + "a 1 xyz\n", header + "a 1" + h + "a 1" + h, header + "a  1" + h,
        header + "MANIFEST 1" + h, header + "\n"}) {
    Spit(dir_ + "/MANIFEST", with_end(body));
    const auto read = ReadCheckpointDir(dir_);
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << body << read.status();
  }
  Spit(dir_ + "/MANIFEST", with_end(header));  // an empty checkpoint is fine
  EXPECT_TRUE(ReadCheckpointDir(dir_).ok());
}

TEST_F(CheckpointFilesTest, HugeClaimedSizeDoesNotAllocate) {
  ASSERT_TRUE(WriteCheckpointDir(dir_, {{"a", "x"}}).ok());
  const std::string body = "fastdiss-checkpoint 1\na 18446744073709551615 0000000000000000\n";
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(XxHash64(body)));
  Spit(dir_ + "/MANIFEST", body + "end " + hex + "\n");
  const auto read = ReadCheckpointDir(dir_);
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(read.status().message().find("MANIFEST says 18446744073709551615"), std::string::npos)
      << read.status();
}

TEST_F(CheckpointFilesTest, NotADirectory) {
  Spit(dir_, "x");
  EXPECT_EQ(ReadCheckpointDir(dir_).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fastdiss
