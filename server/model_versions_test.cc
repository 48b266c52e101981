#include "server/model_versions.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "tests/test_util.h"

namespace fastdiss {
namespace {

namespace fs = std::filesystem;

TEST(ModelVersionsTest, ACheckpointDirectoryIsItself) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("MANIFEST"), "weights.pt 10 abc\n");
  auto resolved = ResolveCheckpointDir(dir.path());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, dir.path());
}

TEST(ModelVersionsTest, ABaseDirectoryServesItsGreatestNumberedVersion) {
  testing::TempDir dir;
  for (const char* name : {"1", "2", "10", "9", "tmp-11", "11.partial"})
    fs::create_directories(dir.File(name));
  testing::WriteFile(dir.File("12"), "a file, not a version folder");
  auto resolved = ResolveCheckpointDir(dir.path());
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(*resolved, dir.File("10"));
}

TEST(ModelVersionsTest, NothingToServeIsNotFoundWithThePath) {
  testing::TempDir dir;
  auto empty = ResolveCheckpointDir(dir.path());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(empty.status().message().find("no version folders"), std::string::npos)
      << empty.status();
  EXPECT_EQ(ResolveCheckpointDir(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelVersionsTest, TheDigestFollowsTheManifest) {
  testing::TempDir dir;
  EXPECT_EQ(ManifestDigest(dir.path()).status().code(), absl::StatusCode::kNotFound);
  testing::WriteFile(dir.File("MANIFEST"), "weights.pt 10 abc\n");
  auto first = ManifestDigest(dir.path());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 8u);
  testing::WriteFile(dir.File("MANIFEST"), "weights.pt 11 abd\n");
  EXPECT_NE(*ManifestDigest(dir.path()), *first);
}

}  // namespace
}  // namespace fastdiss
