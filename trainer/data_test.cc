#include "trainer/data.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/test_util.h"

namespace fastdiss {
namespace {

std::vector<Example> Examples(int n) {
  std::vector<Example> examples;
  for (int i = 0; i < n; ++i) {
    examples.push_back({std::vector<int>(1 + i % 7, 5), std::vector<int>(1 + (i * 3) % 11, 6)});
  }
  return examples;
}

TEST(DataTest, ReadsAlignedFilesAndRejectsBadOnes) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("a"), "eins\nzwei\r\n");
  testing::WriteFile(dir.File("b"), "one\ntwo\n");
  testing::WriteFile(dir.File("c"), "one\n");
  testing::WriteFile(dir.File("bad"), "ok\n\xff\xfe\n");
  auto text = ReadParallelText(dir.File("a"), dir.File("b"));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(text->source, (std::vector<std::string>{"eins", "zwei"}));
  auto mismatch = ReadParallelText(dir.File("a"), dir.File("c"));
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = ReadLines(dir.File("bad"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status();
  EXPECT_EQ(ReadLines(dir.File("missing")).status().code(), absl::StatusCode::kNotFound);
}

TEST(DataTest, TokenizeSkipsAndCountsUnusablePairs) {
  Tokenizer tokenizer = std::move(
      Tokenizer::FromSerializedProto(testing::TinySentencePieceModel("abcdefgh")).value());
  ParallelText text{{"abc", "", "abcdefgh abcdefgh", "a"}, {"cab", "x", "a", ""}};
  TokenizedData data = Tokenize(text, tokenizer, SourceRule(), 10, 10);
  EXPECT_EQ(data.examples.size(), 1u);
  EXPECT_EQ(data.skipped_empty, 2);
  EXPECT_EQ(data.skipped_too_long, 1);
}

TEST(DataTest, EpochBatchesRespectTheTokenBudgetAndCoverEveryExampleOnce) {
  auto examples = Examples(500);
  auto batches = MakeEpochBatches(examples, 64, 3, 0);
  std::multiset<int> seen;
  for (const auto& batch : batches) {
    size_t s = 0, t = 0;
    for (int i : batch) {
      s = std::max(s, examples[i].source.size());
      t = std::max(t, examples[i].target.size());
      seen.insert(i);
    }
    EXPECT_LE(batch.size() * (s + t), 64u);
  }
  EXPECT_EQ(seen.size(), 500u);
  EXPECT_EQ(std::set<int>(seen.begin(), seen.end()).size(), 500u);
}

TEST(DataTest, EpochBatchesAreDeterministicPerSeedAndEpoch) {
  auto examples = Examples(300);
  EXPECT_EQ(MakeEpochBatches(examples, 100, 1, 4), MakeEpochBatches(examples, 100, 1, 4));
  EXPECT_NE(MakeEpochBatches(examples, 100, 1, 4), MakeEpochBatches(examples, 100, 1, 5));
  EXPECT_NE(MakeEpochBatches(examples, 100, 1, 4), MakeEpochBatches(examples, 100, 2, 4));
}

}  // namespace
}  // namespace fastdiss
