// Corpus BLEU exactly as sacreBLEU 2.x computes it, and the phoneme error rate of the g2p task.
//
// The trainer and the benchmarks score dev and test output with these, so our numbers can be set
// beside papers that report sacreBLEU. They follow sacrebleu.metrics.BLEU: the 13a tokenizer
// (mteval-v13a) or none, n-grams up to max_ngram_order, clipped counts against the union of the
// references, the closest reference length, the brevity penalty, smoothing exp / none / floor /
// add-k, effective order, and the early 0.0 when nothing matches. Text is UTF-8 and is handled as
// bytes, which gives sacreBLEU's result because the 13a rules only look at ASCII; where sacreBLEU
// splits or strips on Python's Unicode whitespace (NBSP, U+3000, ...), so do we.
// Not covered: lowercasing and the intl, zh, char, ja-mecab and spm tokenizers.
// Every function here is pure and thread-safe.
#ifndef FASTDISS_TRAINER_BLEU_H_
#define FASTDISS_TRAINER_BLEU_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fastdiss {

// The sacreBLEU release whose BLEU and 13a code this file mirrors; it ends the signature.
inline constexpr char kSacreBleuVersion[] = "2.4.3";

enum class BleuSmoothing { kExp, kNone, kFloor, kAddK };
enum class BleuTokenize { k13a, kNone };

// "exp", "none", "floor", "add-k" (sacreBLEU's names).
const char* BleuSmoothingName(BleuSmoothing method);
absl::StatusOr<BleuSmoothing> ParseBleuSmoothing(std::string_view name);
// "13a", "none".
const char* BleuTokenizeName(BleuTokenize tokenize);
absl::StatusOr<BleuTokenize> ParseBleuTokenize(std::string_view name);

struct BleuOptions {
  BleuSmoothing smooth_method = BleuSmoothing::kExp;
  // Used by floor and add-k only; unset means sacreBLEU's defaults, 0.1 and 1.
  std::optional<double> smooth_value;
  BleuTokenize tokenize = BleuTokenize::k13a;
  // Average only over the orders the hypotheses have n-grams of (sentence-level BLEU).
  bool effective_order = false;
  int max_ngram_order = 4;
};

// Sufficient statistics: sums over segments, so shards of a corpus (data-parallel evaluation) can
// be scored apart, added with +=, and turned into one score by ComputeBleu.
struct BleuStats {
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  std::vector<int64_t> correct;  // clipped matches per order 1..max_ngram_order
  std::vector<int64_t> total;    // hypothesis n-grams per order
  // References per segment: the same count everywhere, -1 when it varies ("var"), 0 when empty.
  int num_refs = 0;

  BleuStats& operator+=(const BleuStats& other);
};

struct BleuScore {
  double score = 0.0;              // 0..100
  std::vector<double> precisions;  // per order, 0..100, after smoothing
  double bp = 0.0;                 // brevity penalty
  int64_t sys_len = 0;
  int64_t ref_len = 0;
  std::vector<int64_t> counts;  // BleuStats::correct, before add-k smoothing
  std::vector<int64_t> totals;  // BleuStats::total, before add-k smoothing
  // "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3"; empty from ComputeBleu.
  std::string signature;

  double ratio() const { return ref_len ? static_cast<double>(sys_len) / ref_len : 0.0; }
  // sacreBLEU's text line: "BLEU|nrefs:1|...|version:2.4.3 = 48.53 82.4/50.0/45.5/37.5
  // (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)".
  std::string Format(int width = 2) const;
};

// sacreBLEU's Tokenizer13a on one line (it does not strip; CorpusBleu strips trailing whitespace
// first, as sacreBLEU does).
std::string Tokenize13a(std::string_view line);

// Splits on Python's str.split() whitespace (ASCII and Unicode spaces, UTF-8 encoded).
std::vector<std::string_view> SplitPyWhitespace(std::string_view text);

// One reference per hypothesis.
absl::StatusOr<BleuScore> CorpusBleu(const std::vector<std::string>& hyps,
                                     const std::vector<std::string>& refs,
                                     const BleuOptions& options = {});

// sacreBLEU's layout: ref_streams[k][i] is the k-th reference of hypothesis i. Empty strings are
// missing references; every hypothesis needs at least one.
absl::StatusOr<BleuScore> CorpusBleuMultiRef(
    const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_streams,
    const BleuOptions& options = {});

absl::StatusOr<BleuStats> CorpusBleuStats(const std::vector<std::string>& hyps,
                                          const std::vector<std::vector<std::string>>& ref_streams,
                                          const BleuOptions& options = {});

// sacreBLEU's BLEU.compute_bleu: the score from (summed) statistics. No signature.
absl::StatusOr<BleuScore> ComputeBleu(const BleuStats& stats, const BleuOptions& options = {});

// num_refs as in BleuStats.
std::string BleuSignature(const BleuOptions& options, int num_refs);

// Levenshtein distance between token sequences (unit costs).
int64_t EditDistance(const std::vector<std::string_view>& hyp,
                     const std::vector<std::string_view>& ref);

// Total edit distance over whitespace tokens / total reference tokens (a fraction, not percent).
absl::StatusOr<double> PhonemeErrorRate(const std::vector<std::string>& hyps,
                                        const std::vector<std::string>& refs);

// Share of hypotheses whose whitespace tokens differ from their reference's in any way (g2p's
// word error rate: the whole pronunciation is wrong). A fraction, not percent.
absl::StatusOr<double> WordErrorRate(const std::vector<std::string>& hyps,
                                     const std::vector<std::string>& refs);

}  // namespace fastdiss

#endif  // FASTDISS_TRAINER_BLEU_H_
