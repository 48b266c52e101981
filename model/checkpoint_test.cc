#include "model/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "base/checkpoint_files.h"
#include "tests/test_models.h"
#include "tests/test_util.h"

namespace fastdiss {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

class CheckpointTest : public ::testing::Test {
 protected:
  CheckpointTest() {
    auto tokenizer = Tokenizer::FromSerializedProto(
        testing::TinySentencePieceModel("abcdefghijklmnopqrstuvwxyz.,"));
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(tokenizer).value();
    model_ = testing::TinyModel(tokenizer_.vocab_size());
    EXPECT_TRUE(metadata_.Put("checkpoint.step", int64_t{12}).ok());
  }

  std::string Save(const std::string& name, WeightPrecision precision = WeightPrecision::kFloat32) {
    SaveCheckpointOptions options;
    options.precision = precision;
    options.trainer_state = "opaque";
    EXPECT_TRUE(SaveCheckpoint(dir_.File(name), model_, tokenizer_, metadata_, options).ok());
    return dir_.File(name);
  }

  TempDir dir_;
  Tokenizer tokenizer_;
  FastDissModel model_{nullptr};
  ConfigTree metadata_;
};

TEST_F(CheckpointTest, RoundTripIsExact) {
  auto loaded = LoadCheckpoint(Save("ckpt"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->tokenizer.serialized(), tokenizer_.serialized());
  EXPECT_EQ(loaded->trainer_state, "opaque");
  int64_t step = 0;
  EXPECT_TRUE(loaded->metadata.Get("checkpoint.step", &step).ok());
  EXPECT_EQ(step, 12);
  EXPECT_EQ(loaded->config.d_model, model_->config().d_model);
  EXPECT_FALSE(loaded->model->is_training());
  auto expected = model_->named_parameters();
  auto actual = loaded->model->named_parameters();
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& item : expected) {
    EXPECT_TRUE(torch::equal(item.value(), actual[item.key()])) << item.key();
  }
}

TEST_F(CheckpointTest, HalfPrecisionLoadsAsFloat) {
  auto loaded = LoadCheckpoint(Save("half", WeightPrecision::kFloat16));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  for (const auto& item : model_->named_parameters()) {
    auto value = loaded->model->named_parameters()[item.key()];
    EXPECT_EQ(value.dtype(), torch::kFloat32);
    EXPECT_TRUE(torch::allclose(value, item.value(), 1e-3, 1e-3)) << item.key();
  }
}

TEST_F(CheckpointTest, MissingCheckpointIsNotFound) {
  EXPECT_EQ(LoadCheckpoint(dir_.File("nope")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, TruncatedOrCorruptedWeightsFailCleanly) {
  const std::string path = Save("ckpt");
  const std::string weights = testing::ReadFile(path + "/weights.pt");
  testing::WriteFile(path + "/weights.pt", weights.substr(0, weights.size() / 2));
  auto truncated = LoadCheckpoint(path);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("weights.pt"), std::string::npos)
      << truncated.status();
  std::string flipped = weights;
  flipped[flipped.size() / 2] ^= 0x5a;
  testing::WriteFile(path + "/weights.pt", flipped);
  EXPECT_EQ(LoadCheckpoint(path).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(CheckpointTest, MismatchedConfigAndWeightsFailCleanly) {
  // A checkpoint whose model.yaml promises another size than its weights hold, with a valid
  // manifest.
  const std::string path = Save("ckpt");
  auto files = ReadCheckpointDir(path);
  ASSERT_TRUE(files.ok());
  std::string yaml = (*files)["model.yaml"];
  const size_t at = yaml.find("d_model: 32");
  ASSERT_NE(at, std::string::npos) << yaml;
  yaml.replace(at, 11, "d_model: 64");
  (*files)["model.yaml"] = yaml;
  std::vector<std::pair<std::string, std::string>> list(files->begin(), files->end());
  ASSERT_TRUE(WriteCheckpointDir(path, list).ok());
  auto loaded = LoadCheckpoint(path);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("shape"), std::string::npos) << loaded.status();
}

TEST_F(CheckpointTest, UnknownFormatVersionAndGarbageWeightsFailCleanly) {
  const std::string path = Save("ckpt");
  auto files = *ReadCheckpointDir(path);
  auto yaml = files["model.yaml"];
  yaml.replace(yaml.find("format_version: 1"), 17, "format_version: 9");
  auto with = [&](const std::string& name, const std::string& contents) {
    auto copy = files;
    copy[name] = contents;
    std::vector<std::pair<std::string, std::string>> list(copy.begin(), copy.end());
    EXPECT_TRUE(WriteCheckpointDir(path, list).ok());
    return LoadCheckpoint(path).status();
  };
  EXPECT_EQ(with("model.yaml", yaml).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(with("weights.pt", "not a zip archive").code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(with("tokenizer.model", "\xff\xff\xff").ok());
  EXPECT_FALSE(with("model.yaml", "model:\n  d_model: [\n").ok());
}

}  // namespace
}  // namespace fastdiss
