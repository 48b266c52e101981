#include "trainer/train_config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fastdiss {
namespace {

constexpr char kMinimal[] =
    "data:\n"
    "  train_source: [a.src]\n"
    "  train_target: [a.tgt]\n"
    "  dev_source: d.src\n"
    "  dev_target: d.tgt\n"
    "train:\n"
    "  output_dir: out\n";

StatusOr<TrainConfig> Load(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  testing::TempDir dir;
  testing::WriteFile(dir.File("c.yaml"), yaml);
  return TrainConfig::Load(dir.File("c.yaml"), overrides);
}

TEST(TrainConfigTest, DefaultsAndOverrides) {
  auto config = Load(kMinimal, {"train.max_steps=77", "objective.scp=false", "eval.steps=[1,5]"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->train.max_steps, 77);
  EXPECT_FALSE(config->objective.scp);
  EXPECT_TRUE(config->objective.mans);
  EXPECT_EQ(config->eval.steps, (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(config->train.output_dir, "out");
  EXPECT_EQ(config->model.num_timesteps, 2000);
}

TEST(TrainConfigTest, UnknownKeysAndBadValuesAreNamed) {
  auto unknown = Load(std::string(kMinimal) + "  max_stpes: 3\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("train.max_stpes"), std::string::npos) << unknown.status();
  auto bad_type = Load(kMinimal, {"train.lr=fast"});
  ASSERT_FALSE(bad_type.ok());
  EXPECT_NE(bad_type.status().message().find("train.lr"), std::string::npos) << bad_type.status();
  auto bad_range = Load(kMinimal, {"objective.self_cond_prob=1.5"});
  ASSERT_FALSE(bad_range.ok());
  EXPECT_NE(bad_range.status().message().find("objective.self_cond_prob"), std::string::npos);
  auto bad_select = Load(kMinimal, {"eval.select_steps=3"});
  EXPECT_NE(bad_select.status().message().find("eval.select_steps"), std::string::npos);
  auto bad_model = Load(kMinimal, {"model.num_heads=3"});
  EXPECT_NE(bad_model.status().message().find("model.num_heads"), std::string::npos);
  auto mismatched = Load(kMinimal, {"data.train_target=[a.tgt, b.tgt]"});
  EXPECT_NE(mismatched.status().message().find("data.train_target"), std::string::npos);
  EXPECT_EQ(TrainConfig::Load("/nonexistent/c.yaml", {}).status().code(), StatusCode::kNotFound);
}

TEST(TrainConfigTest, EveryKeyIsDocumentedAndRoundTrips) {
  TrainConfig config;
  const std::string help = DescribeFields(config.Fields());
  for (const ConfigField& field : config.Fields()) {
    EXPECT_FALSE(field.help.empty()) << field.key;
    EXPECT_NE(help.find(field.key), std::string::npos) << field.key;
  }
  // The written config reads back into an equal config.
  auto loaded = Load(kMinimal, {"train.lr=0.00123", "objective.scp_steps=[2, 7]"});
  ASSERT_TRUE(loaded.ok());
  ConfigTree written;
  ASSERT_TRUE(WriteFields(loaded->Fields(), &written).ok());
  auto reread = Load(written.ToYaml());
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_DOUBLE_EQ(reread->train.lr, 0.00123);
  EXPECT_EQ(reread->objective.scp_steps, (std::vector<int64_t>{2, 7}));
}

}  // namespace
}  // namespace fastdiss
