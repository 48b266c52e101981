// End-to-end trainer tests on tiny data: the real spm_train, the real objective, checkpoints.
#include "trainer/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "model/checkpoint.h"
#include "model/sampler.h"
#include "tests/test_util.h"
#include "tests/tiny_parallel_text.h"

namespace fastdiss {
namespace {

const auto& kPairs = testing::TinyParallelText();

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("spm_train --help > /dev/null 2>&1") != 0)
      GTEST_SKIP() << "spm_train is not installed";
    testing::WriteTinyParallelText(dir_.File("train.de"), dir_.File("train.en"));
  }

  TrainConfig Config(const std::string& output, int64_t max_steps) {
    TrainConfig c;
    c.data.train_source = {dir_.File("train.de")};
    c.data.train_target = {dir_.File("train.en")};
    c.data.dev_source = dir_.File("train.de");
    c.data.dev_target = dir_.File("train.en");
    c.data.vocab_size = 80;
    c.model.d_latent = 16;
    c.model.d_model = 64;
    c.model.num_heads = 2;
    c.model.ffn_dim = 128;
    c.model.encoder_layers = 2;
    c.model.decoder_layers = 2;
    c.model.dropout = 0.0;
    c.model.max_source_tokens = 16;
    c.model.max_target_tokens = 16;
    c.model.length_offset = 8;
    c.model.num_timesteps = 200;
    c.objective.scp_steps = {1, 2, 5};
    c.train.max_steps = max_steps;
    c.train.max_tokens = 400;
    c.train.lr = 3e-3;
    c.train.warmup_steps = 50;
    c.train.output_dir = dir_.File(output);
    c.train.resume = "auto";
    c.train.log_every = 50;
    c.eval.every = 1000;
    c.eval.steps = {5};
    c.eval.select_steps = 5;
    c.eval.keep_last = 1;
    return c;
  }

  // The two checkpoints hold bit-identical weights.
  static void ExpectSameWeights(const std::string& dir_a, const std::string& dir_b) {
    auto a = LoadCheckpoint(dir_a);
    auto b = LoadCheckpoint(dir_b);
    ASSERT_TRUE(a.ok() && b.ok());
    for (const auto& item : a->model->named_parameters()) {
      EXPECT_TRUE(torch::equal(item.value(), b->model->named_parameters()[item.key()]))
          << item.key();
    }
  }

  absl::StatusOr<TrainSummary> Train(const TrainConfig& config) {
    FASTDISS_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(config, &log_));
    return trainer->Run();
  }

  testing::TempDir dir_;
  std::ostringstream log_;
};

TEST_F(TrainerTest, TinyModelOverfitsTwentyPairsToExactMatch) {
  TrainConfig config = Config("overfit", 700);
  auto summary = Train(config);
  ASSERT_TRUE(summary.ok()) << summary.status() << "\n" << log_.str();
  auto loaded = LoadCheckpoint(config.train.output_dir + "/last");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  Sampler sampler(loaded->model, *NoiseSchedule::Create({200, 4.0}), torch::kCPU);
  int exact = 0;
  for (size_t i = 0; i < kPairs.size(); ++i) {
    DecodeOptions options;
    options.steps = 10;
    options.length_beam = 3;  // the length predictor may be one off; the score picks the length
    options.seed = i;
    auto state = sampler.NewState(loaded->tokenizer.Encode(kPairs[i].first), options);
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(sampler.Start({state->get()}).ok());
    while (!(*state)->finished()) ASSERT_TRUE(sampler.Step({state->get()}).ok());
    const std::string output = loaded->tokenizer.Decode(sampler.Result(**state)->tokens);
    exact += output == kPairs[i].second;
    EXPECT_EQ(output, kPairs[i].second) << kPairs[i].first;
  }
  EXPECT_EQ(exact, 20) << log_.str();
  // last/ and best/ are both complete checkpoints.
  EXPECT_TRUE(LoadCheckpoint(config.train.output_dir + "/best").ok());
}

TEST_F(TrainerTest, ResumeContinuesExactlyLikeAnUninterruptedRun) {
  TrainConfig straight = Config("straight", 30);
  straight.eval.every = 15;
  straight.train.log_every = 1;
  ASSERT_TRUE(Train(straight).ok()) << log_.str();

  TrainConfig interrupted = Config("interrupted", 15);
  interrupted.eval.every = 15;
  interrupted.train.log_every = 1;
  ASSERT_TRUE(Train(interrupted).ok()) << log_.str();
  interrupted.train.max_steps = 30;  // the same run, continued from interrupted/last
  auto resumed = Train(interrupted);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->step, 30);

  ExpectSameWeights(straight.train.output_dir + "/last", interrupted.train.output_dir + "/last");
  // The training losses logged at the same steps agree exactly.
  auto losses = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) {
      if (line.find("\"event\":\"train\"") == std::string::npos) continue;
      const size_t at = line.find("\"loss\":");
      out.push_back(line.substr(at, line.find(',', at) - at));
    }
    return out;
  };
  auto expected = losses(straight.train.output_dir + "/metrics.jsonl");
  auto actual = losses(interrupted.train.output_dir + "/metrics.jsonl");
  ASSERT_EQ(expected.size(), 30u);
  EXPECT_EQ(actual, expected);
}

// A stop request (SIGTERM in fastdiss-train) ends the run after the current step with last/
// saved and no dev evaluation; resuming then gives the uninterrupted run's weights.
TEST_F(TrainerTest, AStopRequestSavesLastAndTheRunResumesExactly) {
  TrainConfig straight = Config("straight", 12);
  ASSERT_TRUE(Train(straight).ok()) << log_.str();

  TrainConfig stopped = Config("stopped", 12);
  auto trainer = Trainer::Create(stopped, &log_);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  (*trainer)->RequestStop();  // before Run: it stops after its first step
  auto summary = (*trainer)->Run();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_TRUE(summary->stopped);
  EXPECT_EQ(summary->step, 1);
  auto saved = LoadCheckpoint(stopped.train.output_dir + "/last");
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(
      testing::ReadFile(stopped.train.output_dir + "/metrics.jsonl").find("\"event\":\"eval\""),
      std::string::npos);

  auto resumed = Train(stopped);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_FALSE(resumed->stopped);
  EXPECT_EQ(resumed->step, 12);
  ExpectSameWeights(straight.train.output_dir + "/last", stopped.train.output_dir + "/last");
}

TEST_F(TrainerTest, AGivenTokenizerIsUsedAsIs) {
  ASSERT_TRUE(Train(Config("first", 1)).ok());
  TrainConfig config = Config("second", 1);
  config.data.tokenizer = dir_.File("first/tokenizer.model");
  config.data.vocab_size = 5000;  // unused with a given tokenizer
  ASSERT_TRUE(Train(config).ok()) << log_.str();
  EXPECT_NE(log_.str().find("tokenizer: " + config.data.tokenizer), std::string::npos)
      << log_.str();
  EXPECT_FALSE(std::ifstream(dir_.File("second/tokenizer.model")).good()) << "spm_train ran anyway";
  auto first = LoadCheckpoint(dir_.File("first/last"));
  auto second = LoadCheckpoint(dir_.File("second/last"));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->tokenizer.vocab_size(), second->tokenizer.vocab_size());
  EXPECT_EQ(first->tokenizer.Encode(kPairs[0].second), second->tokenizer.Encode(kPairs[0].second));

  TrainConfig missing = Config("third", 1);
  missing.data.tokenizer = dir_.File("nope.model");
  EXPECT_EQ(Train(missing).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TrainerTest, AnAbsentDeviceIsRefused) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a CUDA GPU";
  TrainConfig config = Config("cuda", 1);
  config.train.device = "cuda";
  auto status = Train(config).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("cuda"), std::string::npos) << status;
}

TEST_F(TrainerTest, ResumeFromAMismatchedModelIsRefused) {
  TrainConfig first = Config("run", 5);
  ASSERT_TRUE(Train(first).ok());
  TrainConfig other = Config("run", 10);
  other.model.d_model = 32;
  auto status = Train(other).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

// train.init_from starts a fresh run (step 0, fresh optimizer) from another checkpoint's weights
// and tokenizer; source_units may be declared anew, the shape may not change.
TEST_F(TrainerTest, InitFromStartsAFreshRunFromAnotherCheckpointsWeights) {
  ASSERT_TRUE(Train(Config("donor", 20)).ok()) << log_.str();
  TrainConfig config = Config("warm", 1);
  config.train.init_from = dir_.File("donor/last");
  config.model.source_units = "characters";
  auto summary = Train(config);
  ASSERT_TRUE(summary.ok()) << summary.status() << log_.str();
  EXPECT_EQ(summary->step, 1);
  EXPECT_NE(log_.str().find("starting from the weights of " + config.train.init_from),
            std::string::npos);

  // A learned logit scale may be switched on: it starts at 1, the other weights are the donor's.
  TrainConfig scaled = Config("scaled", 1);
  scaled.train.init_from = dir_.File("donor/last");
  scaled.model.learned_logit_scale = true;
  ASSERT_TRUE(Train(scaled).ok()) << log_.str();

  auto donor = LoadCheckpoint(dir_.File("donor/last"));
  auto warm = LoadCheckpoint(dir_.File("warm/last"));
  auto with_scale = LoadCheckpoint(dir_.File("scaled/last"));
  ASSERT_TRUE(donor.ok() && warm.ok() && with_scale.ok());
  EXPECT_TRUE(with_scale->config.learned_logit_scale);
  const torch::Tensor* scale = with_scale->model->named_parameters().find("log_logit_scale");
  ASSERT_NE(scale, nullptr);
  EXPECT_LT(scale->abs().item<double>(), 1e-3);  // one small step from 0 (scale 1)
  EXPECT_EQ(donor->model->named_parameters().find("log_logit_scale"), nullptr);
  EXPECT_EQ(warm->config.source_units, "characters");
  EXPECT_EQ(warm->tokenizer.serialized(), donor->tokenizer.serialized());
  // One warm-up step of Adam moves each weight by about lr / warmup_steps = 6e-5; a fresh
  // initialization would differ by far more.
  for (const auto& item : donor->model->named_parameters()) {
    const double moved =
        (item.value() - warm->model->named_parameters()[item.key()]).abs().max().item<double>();
    EXPECT_LT(moved, 1e-3) << item.key();
  }

  TrainConfig reshaped = Config("reshaped", 1);
  reshaped.train.init_from = dir_.File("donor/last");
  reshaped.model.ffn_dim = 64;
  auto status = Train(reshaped).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  TrainConfig missing = Config("orphan", 1);
  missing.train.init_from = dir_.File("nowhere");
  EXPECT_FALSE(Train(missing).ok());
}

}  // namespace
}  // namespace fastdiss
