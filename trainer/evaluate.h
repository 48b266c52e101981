// Evaluation shared by fastdiss-train (periodic dev BLEU) and fastdiss-eval: decode a source set
// at several step counts K and score it (sacreBLEU-compatible BLEU, phoneme and word error rates,
// speed), and the approximation gap of docs/method.md section 7. Runs on the calling thread; the
// model must be in eval mode.
#ifndef FASTDISS_TRAINER_EVALUATE_H_
#define FASTDISS_TRAINER_EVALUATE_H_

#include <string>
#include <vector>

#include "model/sampler.h"
#include "model/tokenizer.h"
#include "trainer/bleu.h"
#include "trainer/data.h"

namespace fastdiss {

struct StepsEvaluation {
  int steps = 0;
  BleuScore bleu;
  double phoneme_error_rate = 0;  // token edit distance / reference tokens
  double word_error_rate = 0;     // share of sentences not exactly right (g2p's WER)
  double seconds = 0;
  double sentences_per_second = 0;
  double mean_steps_run = 0;  // below `steps` when early exit (DecodeOptions) stopped sentences
  std::vector<std::string> hypotheses;
};

// Decodes every source at each K (same seeds at every K) and scores against the references.
absl::StatusOr<std::vector<StepsEvaluation>> EvaluateSteps(
    Sampler& sampler, const Tokenizer& tokenizer, const std::vector<std::string>& sources,
    const std::vector<std::string>& references, const std::vector<int64_t>& steps,
    const DecodeOptions& base, int max_rows);

struct GapEvaluation {
  int steps = 0;
  double error_inference = 0;  // ||f(z_tk, t_k, sc_prev) - z0||^2 / D, sc_prev from t_{k+1}
  double error_same = 0;       // ||f(z_tk, t_k, sc_same) - z0||^2 / D, sc_same from t_k itself
  double gap() const { return error_inference - error_same; }
};

// The approximation gap over the transitions of a K-step schedule (K >= 2), averaged over tokens
// of the given pairs. Seeded: the same inputs give the same figure.
absl::StatusOr<GapEvaluation> ApproximationGap(FastDissModel& model, const NoiseSchedule& schedule,
                                               const std::vector<Example>& examples, int steps,
                                               int max_rows, uint64_t seed);

// fastdiss-eval's run: a checkpoint decoded over a parallel text at each K, with the gap.
struct CheckpointEvalOptions {
  std::string checkpoint, source_path, reference_path;
  torch::Device device{torch::kCPU};
  // The linear layers' weights and products (FastDissModelImpl::SetLinearPrecision), as a
  // server's models.NAME.precision would serve them.
  LinearPrecision linear_precision = LinearPrecision::kFloat32;
  std::vector<int64_t> steps = {1, 2, 5, 10, 20};
  std::vector<int64_t> gap_steps = {5};  // empty: no gap
  DecodeOptions decode;                  // beams, seed, update rule, early exit; not steps
  int max_rows = 256;
  int64_t limit = 0;  // evaluate the first `limit` pairs; 0: all
  int64_t gap_sentences = 200;
  std::string hypotheses_prefix;  // when set, writes PREFIX.kK.txt with the decoded lines per K
};

struct CheckpointEvaluation {
  size_t sentences = 0;
  std::vector<StepsEvaluation> results;  // one per K, in the order asked
  std::vector<GapEvaluation> gaps;
  std::vector<std::string> warnings;  // what was skipped, and why
};

absl::StatusOr<CheckpointEvaluation> EvaluateCheckpoint(const CheckpointEvalOptions& options);

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_EVALUATE_H_
