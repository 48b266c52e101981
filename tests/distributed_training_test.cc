// The real fastdiss-train binary. Data-parallel training: two processes on 127.0.0.1 (torchrun's
// environment, c10d Gloo) reach the same weights as one process with the same global batches;
// only rank 0 writes; a run made by two processes resumes in one. Crash safety: a run killed
// with SIGKILL at random moments, checkpoint writing included, always leaves loadable
// checkpoints and resumes to the weights of a run never killed; a disk that fills during a save
// is a clear error that leaves last/ as it was.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/config_fields.h"
#include "base/subprocess.h"
#include "model/checkpoint.h"
#include "tests/test_util.h"
#include "tests/tiny_parallel_text.h"
#include "trainer/train_config.h"

namespace fastdiss {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kPatience = std::chrono::minutes(5);

class TrainingBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("spm_train --help > /dev/null 2>&1") != 0)
      GTEST_SKIP() << "spm_train is not installed";
    testing::WriteTinyParallelText(dir_.File("train.de"), dir_.File("train.en"), 12);
    TrainConfig c;
    c.data.train_source = {dir_.File("train.de")};
    c.data.train_target = {dir_.File("train.en")};
    c.data.dev_source = dir_.File("train.de");
    c.data.dev_target = dir_.File("train.en");
    c.data.vocab_size = 70;
    c.model.d_latent = 16;
    c.model.d_model = 32;
    c.model.num_heads = 2;
    c.model.ffn_dim = 64;
    c.model.encoder_layers = 1;
    c.model.decoder_layers = 2;
    c.model.dropout = 0.0;  // dropout masks are per process; without them the runs must agree
    c.model.max_source_tokens = 16;
    c.model.max_target_tokens = 16;
    c.model.length_offset = 8;
    c.model.num_timesteps = 200;
    c.objective.scp_steps = {1, 2, 5};
    c.train.max_tokens = 150;  // several batches per epoch, each with sequences for both ranks
    c.train.lr = 3e-3;
    c.train.warmup_steps = 2;
    c.train.threads = 1;
    c.train.log_every = 1;
    c.eval.every = 1000;
    c.eval.steps = {2};
    c.eval.select_steps = 2;
    c.eval.keep_last = 0;
    testing::WriteFile(dir_.File("config.yaml"), DescribeFields(c.Fields()));
  }

  // Starts one fastdiss-train process; `rank` < 0 means no torch.distributed environment.
  std::unique_ptr<Subprocess> Start(const std::string& output, int max_steps, int rank, int world,
                                    int port, const std::vector<std::string>& sets = {}) {
    std::vector<std::string> env;
    if (rank >= 0) {
      env = {"WORLD_SIZE=" + std::to_string(world), "RANK=" + std::to_string(rank),
             "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port)};
    }
    const std::string log =
        dir_.File(output + "-rank" + std::to_string(rank) + "-" + std::to_string(max_steps) + "-" +
                  std::to_string(starts_++) + ".log");
    std::vector<std::string> args = launcher_;
    args.insert(args.end(), {FASTDISS_TRAIN_BINARY, "--config", dir_.File("config.yaml"), "--set",
                             "train.output_dir=" + dir_.File(output), "--set",
                             "train.max_steps=" + std::to_string(max_steps)});
    for (const std::string& set : sets) {
      args.push_back("--set");
      args.push_back(set);
    }
    auto process = Subprocess::Start(args, log, env);
    EXPECT_TRUE(process.ok()) << process.status();
    return process.ok() ? std::move(*process) : nullptr;
  }

  void TrainAlone(const std::string& output, int max_steps) {
    auto process = Start(output, max_steps, -1, 1, 0);
    ASSERT_EQ(process->Wait(kPatience), 0) << process->Log();
  }

  // Two ranks; rank 1 is given its own output_dir, where nothing may appear.
  void TrainTwo(const std::string& output, int max_steps) {
    const int port = testing::FreePort();
    auto rank0 = Start(output, max_steps, 0, 2, port);
    auto rank1 = Start(output + "-rank1", max_steps, 1, 2, port);
    ASSERT_EQ(rank0->Wait(kPatience), 0) << rank0->Log();
    ASSERT_EQ(rank1->Wait(kPatience), 0) << rank1->Log();
    EXPECT_NE(rank0->Log().find("data-parallel over 2 processes"), std::string::npos)
        << rank0->Log();
    EXPECT_FALSE(fs::exists(dir_.File(output + "-rank1") + "/last")) << "rank 1 wrote a checkpoint";
  }

  using Weights = std::vector<std::pair<std::string, torch::Tensor>>;

  Weights Load(const std::string& output) {
    auto loaded = LoadCheckpoint(dir_.File(output) + "/last");
    EXPECT_TRUE(loaded.ok()) << loaded.status();
    Weights weights;
    if (loaded.ok()) {
      for (const auto& p : loaded->model->named_parameters())
        weights.emplace_back(p.key(), p.value().detach().clone());
    }
    return weights;
  }

  int64_t Step(const std::string& output, const std::string& which = "last") {
    auto loaded = LoadCheckpoint(dir_.File(output) + "/" + which);
    const ConfigValue* step = loaded.ok() ? loaded->metadata.Find("checkpoint.step") : nullptr;
    return step == nullptr ? -1 : std::stoll(step->scalar);
  }

  static void ExpectClose(const Weights& a, const Weights& b) {
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    for (size_t i = 0; i < a.size(); ++i) {
      const auto& [name, x] = a[i];
      const torch::Tensor& y = b[i].second;
      // An attention key bias adds the same amount to every logit of a query, which softmax
      // ignores: its true gradient is zero, so what reaches it is float rounding, and Adam (eps
      // 1e-9) turns rounding of either sign into a step of up to about lr. Summing a gradient in
      // two halves rounds differently, so these may differ by a few steps' lr; everything else
      // must agree to float tolerance.
      const bool zero_gradient =
          name.size() >= 7 && name.compare(name.size() - 7, 7, ".k.bias") == 0;
      EXPECT_TRUE(zero_gradient ? torch::allclose(x, y, 0, 0.03)
                                : torch::allclose(x, y, 1e-4, 1e-5))
          << name << " " << x.sizes() << ": largest difference "
          << (x - y).abs().max().item<double>() << " at magnitude " << x.abs().max().item<double>();
    }
  }

  testing::TempDir dir_;
  int starts_ = 0;
  std::vector<std::string> launcher_;  // a command the trainer runs under (empty: none)
};

TEST_F(TrainingBinaryTest, TwoProcessesReachTheWeightsOfOneAndResumeInOne) {
  {  // "one" is a launched group of one process (torchrun with WORLD_SIZE=1): a real Gloo group
    auto process = Start("one", 6, 0, 1, testing::FreePort());
    ASSERT_EQ(process->Wait(kPatience), 0) << process->Log();
    EXPECT_NE(process->Log().find("data-parallel over 1 process (torch.distributed, Gloo)"),
              std::string::npos)
        << process->Log();
  }
  TrainTwo("two", 6);
  EXPECT_EQ(Step("one"), 6);
  EXPECT_EQ(Step("two"), 6);
  const Weights one = Load("one"), two = Load("two");
  ExpectClose(one, two);

  // Resume with another world size: the 2-process run goes on alone, and matches the 1-process run
  // going on alone.
  TrainAlone("one", 9);
  TrainAlone("two", 9);
  EXPECT_EQ(Step("two"), 9);
  const Weights later = Load("one");
  ExpectClose(later, Load("two"));
  double moved = 0;  // the three steps did train, so agreeing is not trivial
  for (size_t i = 0; i < later.size(); ++i) {
    moved = std::max(moved, (later[i].second - one[i].second).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-3);
}

TEST_F(TrainingBinaryTest, ABadEnvironmentIsRefusedByName) {
  auto started = Subprocess::Start(
      {FASTDISS_TRAIN_BINARY, "--config", dir_.File("config.yaml"), "--set",
       "train.output_dir=" + dir_.File("bad")},
      dir_.File("bad.log"), {"WORLD_SIZE=2", "RANK=5", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=1"});
  ASSERT_TRUE(started.ok()) << started.status();
  auto& process = *started;
  EXPECT_EQ(process->Wait(kPatience), 2);
  EXPECT_NE(process->Log().find("RANK"), std::string::npos) << process->Log();

  auto started_without_address =
      Subprocess::Start({FASTDISS_TRAIN_BINARY, "--config", dir_.File("config.yaml"), "--set",
                         "train.output_dir=" + dir_.File("bad")},
                        dir_.File("bad-address.log"), {"WORLD_SIZE=1", "RANK=0"});
  ASSERT_TRUE(started_without_address.ok()) << started_without_address.status();
  auto& no_address = *started_without_address;
  EXPECT_EQ(no_address->Wait(kPatience), 2);
  EXPECT_NE(no_address->Log().find("MASTER_ADDR"), std::string::npos) << no_address->Log();
}

// SIGKILL at random moments, up to six times, with a checkpoint (last/ and best/) written after
// every step so that many kills land inside a write: each time, what is on disk loads, and the
// run resumed from it (train.resume: auto) ends with exactly the weights of a run never killed.
TEST_F(TrainingBinaryTest, KilledAtRandomMomentsTheRunResumesToTheWeightsOfOneNeverKilled) {
  const int steps = 40;
  const std::vector<std::string> sets = {"train.resume=auto", "eval.every=1"};
  const auto begin = std::chrono::steady_clock::now();
  {
    auto process = Start("whole", steps, -1, 1, 0, sets);
    ASSERT_EQ(process->Wait(kPatience), 0) << process->Log();
  }
  const auto whole_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - begin)
                            .count();
  // Each attempt is killed at a random moment after it has saved a step past the one the last
  // kill left, up to two steps' worth of the uninterrupted run's time later: so the kills land in
  // steps and in checkpoint writes alike, and however loaded the machine, each comes after a save.
  const int64_t step_ms = std::max<int64_t>(1, whole_ms / steps);
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> delay_ms(0, 2 * step_ms);
  std::vector<int64_t> progress;  // the step last/ holds after each kill
  for (int round = 0; round < 6; ++round) {
    const int64_t saved = progress.empty() ? 0 : progress.back();
    auto process = Start("killed", steps, -1, 1, 0, sets);
    const auto give_up = std::chrono::steady_clock::now() + kPatience;
    while (!process->Exited() && Step("killed") <= saved &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    if (process->Exited()) break;  // it finished first: nothing left to interrupt
    process->Signal(SIGKILL);
    EXPECT_EQ(process->Wait(kPatience), -1) << process->Log();
    for (const char* which : {"last", "best"}) {
      const std::string dir = dir_.File("killed") + "/" + which;
      if (!fs::exists(dir)) continue;  // killed before the first save
      auto loaded = LoadCheckpoint(dir);
      EXPECT_TRUE(loaded.ok()) << "after kill " << progress.size() + 1 << ", " << which
                               << "/ does not load: " << loaded.status();
    }
    progress.push_back(fs::exists(dir_.File("killed") + "/last") ? Step("killed") : 0);
  }
  std::string steps_seen;
  for (int64_t step : progress) steps_seen += " " + std::to_string(step);
  std::cout << "uninterrupted run " << whole_ms << " ms; last/ after each kill at step"
            << steps_seen << std::endl;
  ASSERT_GE(progress.size(), 3u) << "the run outpaced the kills (" << whole_ms
                                 << " ms uninterrupted)";
  EXPECT_TRUE(std::is_sorted(progress.begin(), progress.end()));
  EXPECT_GT(progress.back(), 0) << "no kill came after a step was saved";
  auto finish = Start("killed", steps, -1, 1, 0, sets);
  ASSERT_EQ(finish->Wait(kPatience), 0) << finish->Log();
  EXPECT_EQ(Step("killed"), steps);
  const Weights whole = Load("whole"), killed = Load("killed");
  ASSERT_EQ(whole.size(), killed.size());
  ASSERT_FALSE(whole.empty());
  for (size_t i = 0; i < whole.size(); ++i) {
    EXPECT_TRUE(torch::equal(whole[i].second, killed[i].second))
        << whole[i].first << ": largest difference "
        << (whole[i].second - killed[i].second).abs().max().item<double>();
  }
}

// A disk that fills while fastdiss-train saves last/: the run stops with a clear error, and the
// last/ it had saved before still loads, at its step, with its weights. A file-size limit below
// one weights file stands in for the full disk (writes past it fail with EFBIG, as with ENOSPC;
// SIGXFSZ is ignored so that the write fails instead of the process dying).
TEST_F(TrainingBinaryTest, ADiskFullAtASaveIsAClearErrorAndLastStaysAsItWas) {
  const std::vector<std::string> sets = {"train.resume=auto", "eval.every=2"};
  {
    auto process = Start("full", 2, -1, 1, 0, sets);
    ASSERT_EQ(process->Wait(kPatience), 0) << process->Log();
  }
  ASSERT_EQ(Step("full"), 2);
  const Weights before = Load("full");
  const uintmax_t weights_bytes = fs::file_size(dir_.File("full") + "/last/weights.pt");
  // ulimit -f counts 1,024-byte blocks; the log the trainer writes stays far below this.
  const uintmax_t limit_blocks = std::max<uintmax_t>(1, weights_bytes / 2 / 1024);
  ASSERT_GT(limit_blocks * 1024, 8192u) << "the weights are too small to tell the log from them";
  launcher_ = {"/bin/bash", "-c",
               "trap '' XFSZ; ulimit -f " + std::to_string(limit_blocks) + " && exec \"$@\"",
               "bash"};
  auto process = Start("full", 4, -1, 1, 0, sets);
  launcher_.clear();
  const int code = process->Wait(kPatience);
  const std::string log = process->Log();
  EXPECT_NE(code, 0) << log;
  EXPECT_NE(log.find("cannot write"), std::string::npos) << log;
  EXPECT_NE(log.find("File too large"), std::string::npos) << log;
  EXPECT_EQ(Step("full"), 2) << "last/ moved although its save failed";
  const Weights after = Load("full");
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i].second, after[i].second)) << before[i].first;
  }
  std::vector<std::string> entries;
  for (const auto& entry : fs::directory_iterator(dir_.File("full")))
    entries.push_back(entry.path().filename().string());
  for (const std::string& name : entries) {
    EXPECT_TRUE(name.find(".tmp-") == std::string::npos && name.find(".old-") == std::string::npos)
        << "a half-written or set-aside copy was left: " << name;
  }
  // With the space back, the same command carries the run on from last/.
  auto resumed = Start("full", 4, -1, 1, 0, sets);
  ASSERT_EQ(resumed->Wait(kPatience), 0) << resumed->Log();
  EXPECT_EQ(Step("full"), 4);
}

}  // namespace
}  // namespace fastdiss
