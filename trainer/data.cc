#include "trainer/data.h"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>

#include "base/utf8.h"

namespace fastdiss {

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open '" + path + "'");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!IsValidUtf8(line)) {
      return absl::InvalidArgumentError("'" + path + "' line " + std::to_string(lines.size() + 1) +
                                        " is not valid UTF-8");
    }
    lines.push_back(std::move(line));
  }
  if (in.bad()) return absl::DataLossError("error reading '" + path + "'");
  return lines;
}

absl::StatusOr<ParallelText> ReadParallelText(const std::string& source_path,
                                              const std::string& target_path) {
  ParallelText text;
  FASTDISS_ASSIGN_OR_RETURN(text.source, ReadLines(source_path));
  FASTDISS_ASSIGN_OR_RETURN(text.target, ReadLines(target_path));
  if (text.source.size() != text.target.size()) {
    return absl::InvalidArgumentError("'" + source_path + "' has " +
                                      std::to_string(text.source.size()) + " lines but '" +
                                      target_path + "' has " + std::to_string(text.target.size()));
  }
  return text;
}

TokenizedData Tokenize(const ParallelText& text, const Tokenizer& tokenizer,
                       const SourceRule& source_rule, int max_source_tokens,
                       int max_target_tokens) {
  TokenizedData data;
  data.examples.reserve(text.source.size());
  for (size_t i = 0; i < text.source.size(); ++i) {
    Example example{tokenizer.Encode(PrepareSource(text.source[i], source_rule)),
                    tokenizer.Encode(text.target[i])};
    if (example.source.empty() || example.target.empty()) {
      ++data.skipped_empty;
    } else if (static_cast<int>(example.source.size()) > max_source_tokens ||
               static_cast<int>(example.target.size()) > max_target_tokens) {
      ++data.skipped_too_long;
    } else {
      data.examples.push_back(std::move(example));
    }
  }
  return data;
}

std::vector<std::vector<int>> MakeEpochBatches(const std::vector<Example>& examples,
                                               int64_t max_tokens, uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng(seed * 1000003u + static_cast<uint64_t>(epoch));
  std::vector<int> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const auto& x = examples[a];
    const auto& y = examples[b];
    if (x.target.size() != y.target.size()) return x.target.size() < y.target.size();
    return x.source.size() < y.source.size();
  });
  std::vector<std::vector<int>> batches;
  std::vector<int> current;
  size_t longest_source = 0, longest_target = 0;
  for (int index : order) {
    const size_t s = std::max(longest_source, examples[index].source.size());
    const size_t t = std::max(longest_target, examples[index].target.size());
    if (!current.empty() && static_cast<int64_t>((current.size() + 1) * (s + t)) > max_tokens) {
      batches.push_back(std::move(current));
      current.clear();
      longest_source = longest_target = 0;
    }
    current.push_back(index);
    longest_source = std::max(longest_source, examples[index].source.size());
    longest_target = std::max(longest_target, examples[index].target.size());
  }
  if (!current.empty()) batches.push_back(std::move(current));
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

}  // namespace fastdiss
