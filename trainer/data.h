// Parallel text for training and evaluation: reading line-aligned files, tokenizing, and
// deterministic token-based batching. The batches of an epoch depend only on (seed, epoch), so
// a resumed run picks up at (epoch, batch index) and sees exactly what it would have seen.
#ifndef FASTDISS_TRAINER_DATA_H_
#define FASTDISS_TRAINER_DATA_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "model/tokenizer.h"

namespace fastdiss {

struct ParallelText {
  std::vector<std::string> source;
  std::vector<std::string> target;

  // Keeps the first n pairs (all of them when there are fewer).
  void KeepFirst(size_t n) {
    if (n >= source.size()) return;
    source.resize(n);
    target.resize(n);
  }
};

// Reads two line-aligned UTF-8 files; different line counts or invalid UTF-8 are errors that name
// the file and line.
absl::StatusOr<ParallelText> ReadParallelText(const std::string& source_path,
                                              const std::string& target_path);
absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path);

struct Example {
  std::vector<int> source;
  std::vector<int> target;
};

struct TokenizedData {
  std::vector<Example> examples;
  int64_t skipped_too_long = 0;
  int64_t skipped_empty = 0;
};

// Sources go through PrepareSource(source, source_rule) first (the model's
// ModelConfig::source_rule()).
TokenizedData Tokenize(const ParallelText& text, const Tokenizer& tokenizer,
                       const SourceRule& source_rule, int max_source_tokens, int max_target_tokens);

// Batches of example indices for one epoch: examples sorted by length (ties broken by a seeded
// shuffle), cut greedily so that rows x (longest source + longest target) <= max_tokens, and the
// batch order shuffled. Deterministic in (seed, epoch).
std::vector<std::vector<int>> MakeEpochBatches(const std::vector<Example>& examples,
                                               int64_t max_tokens, uint64_t seed, int64_t epoch);

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_DATA_H_
