#include "server/server_config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace fastdiss {
namespace {

using testing::TempDir;

class ServerConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<ServerConfig> LoadText(const std::string& yaml,
                                        const std::vector<std::string>& overrides = {},
                                        const std::vector<std::string>& models = {}) {
    testing::WriteFile(dir_.File("server.yaml"), yaml);
    return ServerConfig::Load(dir_.File("server.yaml"), overrides, models);
  }
  TempDir dir_;
};

TEST_F(ServerConfigTest, ReadsKeysModelsAndFlagsInOrder) {
  auto config = LoadText(
      "server:\n  port: 7000\n  warmup_steps: [1, 20]\n"
      "engine:\n  policy: request\n  max_rows_per_batch: 64\n"
      "models:\n  de-en:\n    checkpoint: models/de-en\n    clamp: false\n  g2p:\n    checkpoint: "
      "/ckpt/g2p\n    device: cuda:1\n    precision: bfloat16\n",
      {"server.port=0", "engine.max_queue_delay_seconds=0.002"}, {"extra=/x/y", "de-en=/other"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.port, 0);
  EXPECT_EQ(config->server.warmup_steps, (std::vector<int64_t>{1, 20}));
  EXPECT_EQ(config->engine.policy, "request");
  ASSERT_EQ(config->models.size(), 3u);
  EXPECT_EQ(config->models["de-en"].checkpoint, "/other");  // the flag replaces the file's path
  EXPECT_EQ(config->models["g2p"].device, "cuda:1");
  EXPECT_EQ(config->models["extra"].device, "cpu");
  EXPECT_EQ(config->models["de-en"].clamp, false);        // kept by the flag that replaced the path
  EXPECT_FALSE(config->models["g2p"].clamp.has_value());  // server.default_clamp applies
  EXPECT_EQ(config->models["g2p"].precision, LinearPrecision::kBFloat16);
  EXPECT_EQ(config->models["de-en"].precision, LinearPrecision::kFloat32);
  auto engine = config->ToEngineOptions();
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ(engine->policy, BatchPolicy::kRequest);
  EXPECT_EQ(engine->max_rows_per_batch, 64);
  EXPECT_EQ(engine->max_queue_delay, absl::Milliseconds(2));
}

TEST_F(ServerConfigTest, DescribeReadsBackToTheSameConfig) {
  auto config = ServerConfig::Load("",
                                   {"engine.max_steps=50", "models.m2.checkpoint=/d",
                                    "models.m2.clamp=false", "models.m2.precision=bfloat16"},
                                   {"m1=/a b/c"});
  ASSERT_TRUE(config.ok()) << config.status();
  auto reread = LoadText(config->Describe());
  ASSERT_TRUE(reread.ok()) << reread.status() << "\n" << config->Describe();
  EXPECT_EQ(reread->engine.max_steps, 50);
  EXPECT_EQ(reread->models["m1"].checkpoint, "/a b/c");
  EXPECT_FALSE(reread->models["m1"].clamp.has_value());
  EXPECT_EQ(reread->models["m2"].clamp, false);
  EXPECT_EQ(reread->models["m2"].precision, LinearPrecision::kBFloat16);
  EXPECT_EQ(reread->models["m1"].precision, LinearPrecision::kFloat32);
  EXPECT_EQ(reread->Describe(), config->Describe());
}

// Found by fastdiss_fuzz_config (fuzz/regressions/config/): Describe wrote a checkpoint path
// between quotes without escaping it, so a path with a quote did not read back.
TEST_F(ServerConfigTest, DescribeQuotesPathsAndStringsThatNeedIt) {
  auto config = ServerConfig::Load(
      "",
      {"server.host=a \"b\" \\ c", "models.odd.checkpoint=models/dest\"", "models.odd.device=cpu"},
      {"nl=/x\ny: z"});
  ASSERT_TRUE(config.ok()) << config.status();
  auto reread = LoadText(config->Describe());
  ASSERT_TRUE(reread.ok()) << reread.status() << "\n" << config->Describe();
  EXPECT_EQ(reread->server.host, config->server.host);
  EXPECT_EQ(reread->models["odd"].checkpoint, "models/dest\"");
  EXPECT_EQ(reread->models["nl"].checkpoint, "/x\ny: z");
  EXPECT_EQ(reread->Describe(), config->Describe());
}

TEST_F(ServerConfigTest, RejectsUnknownKeysAndBadValuesByName) {
  struct Case {
    std::string yaml;
    std::vector<std::string> overrides;
    std::string expected;  // part of the message
  };
  const std::string model = "models:\n  m:\n    checkpoint: /c\n";
  const std::vector<Case> cases = {
      {model + "server:\n  prot: 1\n", {}, "server.prot"},
      {model, {"models.m.devise=cpu"}, "models.m.devise"},
      {model, {"server.port=70000"}, "server.port"},
      {model, {"server.metrics_port=-2"}, "server.metrics_port"},
      {model, {"engine.policy=fastest"}, "engine.policy"},
      {model, {"engine.max_rows_per_batch=0"}, "engine.max_rows_per_batch"},
      {model, {"engine.max_queued_requests=-1"}, "engine.max_queued_requests"},
      {model, {"engine.max_queue_delay_seconds=-1"}, "engine.max_queue_delay_seconds"},
      {model, {"server.default_deadline_seconds=0"}, "server.default_deadline_seconds"},
      {model, {"server.warmup_steps=[0]"}, "server.warmup_steps"},
      {model, {"server.default_model=other"}, "server.default_model"},
      {model, {"server.max_message_bytes=100"}, "server.max_message_bytes"},
      {model, {"models.m.device=tpu"}, "models.m.device"},
      {model, {"models.m.clamp=maybe"}, "models.m.clamp"},
      {model, {"models.m.precision=float16"}, "models.m.precision"},
      {model, {"server.port=abc"}, "server.port"},
      {model, {"engine.admission_order=lifo"}, "engine.admission_order"},
      {model, {"engine.deadline_aware=maybe"}, "engine.deadline_aware"},
      {model,
       {"engine.adaptive_latency_target_seconds=0"},
       "engine.adaptive_latency_target_seconds"},
      {model, {"server.model_poll_seconds=-1"}, "server.model_poll_seconds"},
      {model, {"server.model_poll_seconds=0.001"}, "server.model_poll_seconds"},
      {model, {"runtime.malloc_trim_seconds=-1"}, "runtime.malloc_trim_seconds"},
      {model, {"runtime.malloc_trim_seconds=0.01"}, "runtime.malloc_trim_seconds"},
      {"models:\n  m:\n    device: cpu\n", {}, "models.m.checkpoint"},
      {"", {}, "no models"},
  };
  for (const Case& c : cases) {
    auto config = LoadText(c.yaml, c.overrides);
    ASSERT_FALSE(config.ok()) << c.yaml << " " << (c.overrides.empty() ? "" : c.overrides[0]);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(c.expected), std::string::npos)
        << config.status() << " should name " << c.expected;
  }
  auto bad_flag = ServerConfig::Load("", {}, {"no-equals-sign"});
  ASSERT_FALSE(bad_flag.ok());
  EXPECT_NE(bad_flag.status().message().find("NAME=CHECKPOINT_DIR"), std::string::npos);
}

}  // namespace
}  // namespace fastdiss
