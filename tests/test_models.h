// Tiny model configurations for the model tests: build in milliseconds, run a step in microseconds.
#ifndef FASTDISS_TESTS_TEST_MODELS_H_
#define FASTDISS_TESTS_TEST_MODELS_H_

#include <torch/torch.h>

#include "model/network.h"
#include "model/schedule.h"

namespace fastdiss::testing {

inline ModelConfig TinyConfig(int vocab_size = 40) {
  ModelConfig c;
  c.vocab_size = vocab_size;
  c.d_latent = 16;
  c.d_model = 32;
  c.num_heads = 2;
  c.ffn_dim = 64;
  c.encoder_layers = 1;
  c.decoder_layers = 2;
  c.dropout = 0.0;
  c.max_source_tokens = 24;
  c.max_target_tokens = 24;
  c.length_offset = 8;
  c.num_timesteps = 200;
  return c;
}

inline FastDissModel TinyModel(int vocab_size = 40, uint64_t seed = 7) {
  torch::manual_seed(seed);
  FastDissModel model(TinyConfig(vocab_size));
  model->eval();
  return model;
}

inline NoiseSchedule TinySchedule(const ModelConfig& c) {
  return *NoiseSchedule::Create({c.num_timesteps, c.noise_factor});
}

}  // namespace fastdiss::testing

#endif  // FASTDISS_TESTS_TEST_MODELS_H_
