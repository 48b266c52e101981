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

absl::StatusOr<TrainConfig> Load(const std::string& yaml,
                                 const std::vector<std::string>& overrides = {}) {
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
  EXPECT_NE(unknown.status().message().find("train.max_stpes"), std::string::npos)
      << unknown.status();
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
  auto bad_device = Load(kMinimal, {"train.device=gpu"});
  ASSERT_FALSE(bad_device.ok());
  EXPECT_NE(bad_device.status().message().find("train.device"), std::string::npos)
      << bad_device.status();
  EXPECT_TRUE(
      Load(kMinimal, {"train.device=cuda:1"}).ok());  // validity of the name, not of the machine
  auto bad_shift = Load(kMinimal, {"objective.mans_shift=sideways"});
  EXPECT_NE(bad_shift.status().message().find("objective.mans_shift"), std::string::npos)
      << bad_shift.status();
  EXPECT_TRUE(Load(kMinimal, {"objective.mans_shift=proportional"}).ok());
  auto mismatched = Load(kMinimal, {"data.train_target=[a.tgt, b.tgt]"});
  EXPECT_NE(mismatched.status().message().find("data.train_target"), std::string::npos);
  EXPECT_EQ(TrainConfig::Load("/nonexistent/c.yaml", {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TrainConfigTest, EveryKeyIsDocumentedAndRoundTrips) {
  TrainConfig config;
  config.objective.scp_steps = {3, 4};
  config.train.output_dir = "has \"quotes\": and a colon";
  const std::string documented = DescribeFields(config.Fields());
  for (const ConfigField& field : config.Fields()) {
    EXPECT_FALSE(field.help.empty()) << field.key;
    EXPECT_NE(documented.find("# " + field.help), std::string::npos) << field.key;
  }
  // The documented form is itself a config file that reads back into the same values.
  auto tree = ConfigTree::Parse(documented, "documented");
  ASSERT_TRUE(tree.ok()) << tree.status() << "\n" << documented;
  TrainConfig reread;
  ASSERT_TRUE(ReadFields(*tree, reread.Fields()).ok());
  EXPECT_TRUE(tree->CheckAllConsumed().ok());
  EXPECT_EQ(reread.objective.scp_steps, config.objective.scp_steps);
  EXPECT_EQ(reread.train.output_dir, config.train.output_dir);
  EXPECT_EQ(DescribeFields(reread.Fields()), documented);
  // The written config reads back into an equal config.
  auto loaded = Load(kMinimal, {"train.lr=0.00123", "objective.scp_steps=[2, 7]"});
  ASSERT_TRUE(loaded.ok());
  ConfigTree written;
  ASSERT_TRUE(WriteFields(loaded->Fields(), &written).ok());
  auto reloaded = Load(written.ToYaml());
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_DOUBLE_EQ(reloaded->train.lr, 0.00123);
  EXPECT_EQ(reloaded->objective.scp_steps, (std::vector<int64_t>{2, 7}));
}

}  // namespace
}  // namespace fastdiss
