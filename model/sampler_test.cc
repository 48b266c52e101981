#include "model/sampler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/test_models.h"

namespace fastdiss {
namespace {

using testing::TinyModel;
using testing::TinySchedule;

// Every case runs on the CPU, and on CUDA where LibTorch has a GPU (scripts/gpu-check.sh runs the
// "cuda" instances there). Without one, the "cuda" instances build on the CPU and skip.
bool Unavailable(const std::string& device) {
  return device != "cpu" && !torch::cuda::is_available();
}

FastDissModel TinyModelOn(const torch::Device& device) {
  FastDissModel model = TinyModel();
  model->to(device);
  return model;
}

class SamplerTest : public ::testing::TestWithParam<std::string> {
 protected:
  SamplerTest()
      : device_(Unavailable(GetParam()) ? torch::Device(torch::kCPU) : torch::Device(GetParam())),
        model_(TinyModelOn(device_)),
        sampler_(model_, TinySchedule(model_->config()), device_) {}

  void SetUp() override {
    if (Unavailable(GetParam())) GTEST_SKIP() << "no CUDA GPU here";
  }

  std::unique_ptr<DecodeState> New(std::vector<int> source, DecodeOptions options) {
    auto state = sampler_.NewState(std::move(source), options);
    EXPECT_TRUE(state.ok()) << state.status();
    return std::move(state).value();
  }

  DecodeResult Alone(std::vector<int> source, DecodeOptions options) {
    auto state = New(std::move(source), options);
    EXPECT_TRUE(sampler_.Start({state.get()}).ok());
    while (!state->finished()) {
      absl::Status stepped = sampler_.Step({state.get()});
      EXPECT_TRUE(stepped.ok()) << stepped;
      if (!stepped.ok()) break;
    }
    return *sampler_.Result(*state);
  }

  torch::Device device_;
  FastDissModel model_;
  Sampler sampler_;
};

INSTANTIATE_TEST_SUITE_P(Devices, SamplerTest, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

DecodeOptions Options(int steps, uint64_t seed, int length_beam = 1, int noise_beam = 1,
                      int length = 0, bool clamp = false) {
  DecodeOptions o;
  o.clamp = clamp;
  o.steps = steps;
  o.seed = seed;
  o.length_beam = length_beam;
  o.noise_beam = noise_beam;
  o.target_length = length;
  return o;
}

TEST_P(SamplerTest, SameTokensAloneAndBatchedWithOthersAtOtherSteps) {
  const std::vector<int> source = {5, 6, 7, 8, 9};
  for (const DecodeOptions& options : {Options(5, 42), Options(3, 9, 3, 2), Options(1, 3, 1, 1, 6),
                                       Options(6, 5, 2, 1, 0, true)}) {
    const DecodeResult alone = Alone(source, options);
    ASSERT_EQ(alone.steps, options.steps);

    // B (20 steps, a longer source) runs two steps before the request and C join; C has other
    // beams and a fixed length; they all share every later batched step while they last.
    auto b = New({4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}, Options(20, 1));
    ASSERT_TRUE(sampler_.Start({b.get()}).ok());
    ASSERT_TRUE(sampler_.Step({b.get()}).ok());
    ASSERT_TRUE(sampler_.Step({b.get()}).ok());
    auto a = New(source, options);
    auto c = New({20, 21}, Options(2, 2, 2, 2, 12));
    ASSERT_TRUE(sampler_.Start({c.get(), a.get()}).ok());
    for (;;) {
      std::vector<DecodeState*> active;
      for (DecodeState* s : {b.get(), a.get(), c.get()}) {
        if (!s->finished()) active.push_back(s);
      }
      if (active.empty()) break;
      ASSERT_TRUE(sampler_.Step(active).ok());
    }
    const DecodeResult batched = *sampler_.Result(*a);
    EXPECT_EQ(batched.tokens, alone.tokens) << "steps " << options.steps;
    // Equal up to rounding: a BLAS may round a row's product differently at another position in
    // a batch (OpenBLAS does on the CPU, cuBLAS picks kernels by shape), and the finishing rows
    // are rounded together.
    EXPECT_NEAR(batched.score, alone.score, 1e-4);
  }
}

TEST_P(SamplerTest, ARequestDroppedMidwayFreesItsRowsAndTheOthersGoOn) {
  // States destroyed while running (a cancelled call) free their slots; the rows that move into
  // them keep decoding to the answers they give alone.
  const std::vector<int> source = {5, 6, 7, 8, 9};
  const DecodeResult alone_a = Alone(source, Options(6, 11, 2, 2));
  const DecodeResult alone_c = Alone({9, 8, 7}, Options(4, 12));
  auto a = New(source, Options(6, 11, 2, 2));
  auto b = New({4, 5, 6, 7, 8, 9, 10}, Options(9, 1, 3, 1));
  auto c = New({9, 8, 7}, Options(4, 12));
  ASSERT_TRUE(sampler_.Start({b.get(), a.get(), c.get()}).ok());
  ASSERT_TRUE(sampler_.Step({a.get(), b.get(), c.get()}).ok());
  b.reset();  // cancelled: a's and c's rows move into its slots
  while (!a->finished() || !c->finished()) {
    std::vector<DecodeState*> active;
    for (DecodeState* s : {a.get(), c.get()}) {
      if (!s->finished()) active.push_back(s);
    }
    ASSERT_TRUE(sampler_.Step(active).ok());
  }
  EXPECT_EQ(sampler_.Result(*a)->tokens, alone_a.tokens);
  EXPECT_EQ(sampler_.Result(*c)->tokens, alone_c.tokens);
  // The slots are free again: a new request decodes as it does alone.
  EXPECT_EQ(Alone(source, Options(6, 11, 2, 2)).tokens, alone_a.tokens);
}

TEST_P(SamplerTest, StepRefusesAStateListedTwice) {
  auto a = New({5, 6, 7}, Options(3, 1));
  ASSERT_TRUE(sampler_.Start({a.get()}).ok());
  EXPECT_EQ(sampler_.Step({a.get(), a.get()}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sampler_.Step({a.get()}).ok());
}

TEST_P(SamplerTest, SeedDecidesTheNoise) {
  const std::vector<int> source = {5, 6, 7, 8, 9, 10, 11, 12};
  auto first = Alone(source, Options(4, 1, 1, 1, 10));
  EXPECT_EQ(Alone(source, Options(4, 1, 1, 1, 10)).tokens, first.tokens);
  bool any_differs = false;
  for (uint64_t seed = 2; seed < 6 && !any_differs; ++seed) {
    any_differs = Alone(source, Options(4, seed, 1, 1, 10)).tokens != first.tokens;
  }
  EXPECT_TRUE(any_differs);
}

TEST_P(SamplerTest, OneStepAndFixedLength) {
  auto result = Alone({5, 6}, Options(1, 0, 1, 1, 7));
  EXPECT_EQ(result.steps, 1);
  EXPECT_EQ(result.tokens.size(), 7u);
  auto state = New({5, 6}, Options(1, 0));
  EXPECT_EQ(sampler_.Result(*state).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_P(SamplerTest, LengthBeamTriesDistinctLengths) {
  auto state = New({5, 6, 7}, Options(2, 0, 4, 2, 10));
  ASSERT_TRUE(sampler_.Start({state.get()}).ok());
  EXPECT_EQ(state->rows(), 8);
  // 10, 9, 11, 8 (each twice).
  EXPECT_EQ(state->target_tokens(), 2 * (10 + 9 + 11 + 8));
}

TEST_P(SamplerTest, RejectsBadRequests) {
  EXPECT_EQ(sampler_.NewState({}, Options(5, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState(std::vector<int>(25, 5), Options(5, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5, 40}, Options(5, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5, -1}, Options(5, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5}, Options(0, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5}, Options(201, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5}, Options(5, 0, 17)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5}, Options(5, 0, 1, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sampler_.NewState({5}, Options(5, 0, 1, 1, 25)).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto state = New({5}, Options(2, 0));
  EXPECT_EQ(sampler_.Step({state.get()}).code(), absl::StatusCode::kFailedPrecondition);
  model_->train();
  EXPECT_EQ(sampler_.Start({state.get()}).code(), absl::StatusCode::kFailedPrecondition);
  model_->eval();
}

// Early exit stops the trajectory, it does not change it: the state with early exit follows the
// same steps as one without, and stops at the first step whose rounding has not changed for N
// steps, answering with that rounding. Batched with others, it stops alone.
TEST_P(SamplerTest, EarlyExitStopsWhereTheRoundingSettles) {
  int exits_seen = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    for (int patience : {1, 3}) {
      const std::vector<int> source = {5, 6, 7, 8};
      // The whole trajectory, the rounding after every step.
      auto full = New(source, Options(40, seed));
      ASSERT_TRUE(sampler_.Start({full.get()}).ok());
      std::vector<std::vector<int>> rounding;
      while (!full->finished()) {
        ASSERT_TRUE(sampler_.Step({full.get()}).ok());
        rounding.push_back(sampler_.Result(*full)->tokens);
      }
      int expected = 40, unchanged = 0;
      for (int k = 1; k < 40; ++k) {
        unchanged = rounding[k] == rounding[k - 1] ? unchanged + 1 : 0;
        if (unchanged >= patience) {
          expected = k + 1;
          break;
        }
      }
      DecodeOptions options = Options(40, seed);
      options.early_exit_steps = patience;
      auto early = New(source, options);
      auto other = New({9, 10}, Options(40, 77));  // a neighbour without early exit
      ASSERT_TRUE(sampler_.Start({early.get(), other.get()}).ok());
      while (!early->finished()) ASSERT_TRUE(sampler_.Step({early.get(), other.get()}).ok());
      const DecodeResult result = *sampler_.Result(*early);
      EXPECT_EQ(result.steps, expected) << "seed " << seed << " patience " << patience;
      EXPECT_EQ(result.tokens, rounding[expected - 1]) << "seed " << seed;
      EXPECT_EQ(early->exited_early(), expected < 40);
      EXPECT_EQ(other->finished(), expected == 40);  // the neighbour runs on after an early exit
      exits_seen += expected < 40;
    }
  }
  EXPECT_GT(exits_seen, 0) << "no trajectory settled before its last step: the case tests nothing";
}

// Clamping changes the trajectory from the second step on (the first estimate comes from the
// same noise either way), and only for the request that asks for it.
TEST_P(SamplerTest, ClampingChangesOnlyTheRequestsThatAskForIt) {
  const std::vector<int> source = {5, 6, 7, 8};
  auto plain = New(source, Options(10, 4));
  auto clamped = New(source, Options(10, 4, 1, 1, 0, /*clamp=*/true));
  ASSERT_TRUE(sampler_.Start({plain.get(), clamped.get()}).ok());
  ASSERT_TRUE(sampler_.Step({plain.get(), clamped.get()}).ok());
  EXPECT_EQ(sampler_.Result(*plain)->score, sampler_.Result(*clamped)->score);
  ASSERT_TRUE(sampler_.Step({plain.get(), clamped.get()}).ok());
  EXPECT_NE(sampler_.Result(*plain)->score, sampler_.Result(*clamped)->score);
  // The unclamped request beside a clamped one decodes as it does alone.
  while (!plain->finished()) ASSERT_TRUE(sampler_.Step({plain.get(), clamped.get()}).ok());
  EXPECT_EQ(sampler_.Result(*plain)->tokens, Alone(source, Options(10, 4)).tokens);
}

TEST_P(SamplerTest, EarlyExitOffRunsEveryStepAndBadValuesAreRefused) {
  DecodeOptions options = Options(20, 3);
  EXPECT_EQ(Alone({5, 6}, options).steps, 20);
  options.early_exit_steps = -1;
  EXPECT_EQ(sampler_.NewState({5}, options).status().code(), absl::StatusCode::kInvalidArgument);
  options.early_exit_steps = sampler_.schedule().num_timesteps() + 1;
  EXPECT_EQ(sampler_.NewState({5}, options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(SamplerTest, DecodeAllMatchesOneByOne) {
  std::vector<std::vector<int>> sources = {{5, 6}, {7, 8, 9, 10}, {11}};
  auto all = sampler_.DecodeAll(sources, Options(3, 100), /*max_rows=*/2);
  ASSERT_TRUE(all.ok()) << all.status();
  for (size_t i = 0; i < sources.size(); ++i) {
    EXPECT_EQ((*all)[i].tokens, Alone(sources[i], Options(3, 100 + i)).tokens) << i;
  }
}

}  // namespace
}  // namespace fastdiss
