#include "trainer/bleu.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>
#include <utility>

namespace fastdiss {
namespace {

// Byte length of the Python whitespace character (str.isspace) that starts at text[i], or 0.
// Multi-byte ones start with 0xC2, 0xE1, 0xE2 or 0xE3, never continuation bytes, so scanning
// valid UTF-8 byte by byte finds exactly the characters Python would.
size_t PyWhitespaceLen(std::string_view text, size_t i) {
  const auto at = [&](size_t k) -> unsigned char {
    return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0;
  };
  const unsigned char c = at(0);
  if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return 1;
  if (c == 0xC2 && (at(1) == 0x85 || at(1) == 0xA0)) return 2;  // U+0085, U+00A0
  if (c == 0xE1 && at(1) == 0x9A && at(2) == 0x80) return 3;    // U+1680
  if (c == 0xE3 && at(1) == 0x80 && at(2) == 0x80) return 3;    // U+3000
  if (c == 0xE2 && at(1) == 0x80) {
    const unsigned char d = at(2);
    if ((d >= 0x80 && d <= 0x8A) || d == 0xA8 || d == 0xA9 || d == 0xAF) return 3;  // U+2000..
  }
  if (c == 0xE2 && at(1) == 0x81 && at(2) == 0x9F) return 3;  // U+205F
  return 0;
}

// str.rstrip().
std::string_view RStripPyWhitespace(std::string_view text) {
  size_t end = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t ws = PyWhitespaceLen(text, i);
    if (ws > 0) {
      i += ws;
    } else {
      end = ++i;
    }
  }
  return text.substr(0, end);
}

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  if (text.find(from) == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out.append(to);
  }
  out.append(text, pos, std::string::npos);
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsPeriodOrComma(char c) { return c == '.' || c == ','; }

// The class [\{-\~\[-\` -\&\(-\+\:-\@\/] of sacreBLEU's TokenizerRegexp.
bool IsSplitPunct(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') ||
         (c >= '(' && c <= '+') || (c >= ':' && c <= '@') || c == '/';
}

// re.sub of a two-character pattern: scan left to right, a match consumes both characters.
// `match(a, b)` says whether the pair matches; `emit` writes the replacement.
template <typename Match, typename Emit>
std::string SubstitutePairs(const std::string& in, Match match, Emit emit) {
  std::string out;
  out.reserve(in.size() + in.size() / 4);
  size_t i = 0;
  while (i + 1 < in.size()) {
    if (match(in[i], in[i + 1])) {
      emit(in[i], in[i + 1], out);
      i += 2;
    } else {
      out.push_back(in[i++]);
    }
  }
  if (i < in.size()) out.push_back(in[i]);
  return out;
}

// sacreBLEU's TokenizerRegexp.__call__, rule by rule. Rules 2-4 are two-character patterns whose
// classes are ASCII or "not an ASCII digit", so a byte of a multi-byte UTF-8 character plays the
// part of the whole character exactly.
std::string RegexpTokenize(const std::string& line) {
  // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> ' \1 '
  std::string s;
  s.reserve(line.size() * 2);
  for (char c : line) {
    if (IsSplitPunct(c)) {
      s.push_back(' ');
      s.push_back(c);
      s.push_back(' ');
    } else {
      s.push_back(c);
    }
  }
  // ([^0-9])([\.,]) -> '\1 \2 '
  s = SubstitutePairs(
      s, [](char a, char b) { return !IsDigit(a) && IsPeriodOrComma(b); },
      [](char a, char b, std::string& out) {
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
        out.push_back(' ');
      });
  // ([\.,])([^0-9]) -> ' \1 \2'
  s = SubstitutePairs(
      s, [](char a, char b) { return IsPeriodOrComma(a) && !IsDigit(b); },
      [](char a, char b, std::string& out) {
        out.push_back(' ');
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
      });
  // ([0-9])(-) -> '\1 \2 '
  s = SubstitutePairs(
      s, [](char a, char b) { return IsDigit(a) && b == '-'; },
      [](char a, char b, std::string& out) {
        out.push_back(a);
        out.push_back(' ');
        out.push_back(b);
        out.push_back(' ');
      });
  // ' '.join(line.split())
  std::string joined;
  joined.reserve(s.size());
  for (std::string_view token : SplitPyWhitespace(s)) {
    if (!joined.empty()) joined.push_back(' ');
    joined.append(token);
  }
  return joined;
}

std::string Preprocess(std::string_view sentence, BleuTokenize tokenize) {
  const std::string_view stripped = RStripPyWhitespace(sentence);
  switch (tokenize) {
    case BleuTokenize::k13a:
      return Tokenize13a(stripped);
    case BleuTokenize::kNone:
      break;
  }
  return std::string(stripped);
}

using NgramCounts = std::unordered_map<std::string, int64_t>;

// All n-grams of orders 1..max_order, keyed by their tokens joined with ' ' (tokens hold no
// whitespace, so the key is as unambiguous as sacreBLEU's tuple).
NgramCounts ExtractNgrams(const std::vector<std::string_view>& tokens, int max_order) {
  NgramCounts counts;
  std::string key;
  for (int n = 1; n <= max_order; ++n) {
    for (size_t i = 0; i + n <= tokens.size(); ++i) {
      key.assign(tokens[i]);
      for (int k = 1; k < n; ++k) {
        key.push_back(' ');
        key.append(tokens[i + k]);
      }
      ++counts[key];
    }
  }
  return counts;
}

int64_t ClosestRefLen(int64_t hyp_len, const std::vector<int64_t>& ref_lens) {
  int64_t closest_diff = -1;
  int64_t closest_len = -1;
  for (int64_t ref_len : ref_lens) {
    const int64_t diff = std::llabs(hyp_len - ref_len);
    if (closest_diff == -1 || diff < closest_diff) {
      closest_diff = diff;
      closest_len = ref_len;
    } else if (diff == closest_diff && ref_len < closest_len) {
      closest_len = ref_len;
    }
  }
  return closest_len;
}

absl::Status ValidateOptions(const BleuOptions& options) {
  if (options.max_ngram_order < 1) {
    return absl::InvalidArgumentError("max_ngram_order must be at least 1, got " +
                                      std::to_string(options.max_ngram_order));
  }
  if (options.smooth_value.has_value() &&
      !(std::isfinite(*options.smooth_value) && *options.smooth_value >= 0.0)) {
    return absl::InvalidArgumentError("smooth_value must be finite and non-negative, got " +
                                      std::to_string(*options.smooth_value));
  }
  return absl::OkStatus();
}

double DefaultSmoothValue(BleuSmoothing method) {
  switch (method) {
    case BleuSmoothing::kFloor:
      return 0.1;
    case BleuSmoothing::kAddK:
      return 1.0;
    case BleuSmoothing::kExp:
    case BleuSmoothing::kNone:
      break;
  }
  return 0.0;
}

// sacreBLEU's my_log: log floored for zero.
double MyLog(double x) { return x == 0.0 ? -9999999999.0 : std::log(x); }

std::string FormatFixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, value);
  return buf;
}

}  // namespace

const char* BleuSmoothingName(BleuSmoothing method) {
  switch (method) {
    case BleuSmoothing::kExp:
      return "exp";
    case BleuSmoothing::kNone:
      return "none";
    case BleuSmoothing::kFloor:
      return "floor";
    case BleuSmoothing::kAddK:
      return "add-k";
  }
  return "?";
}

absl::StatusOr<BleuSmoothing> ParseBleuSmoothing(std::string_view name) {
  for (BleuSmoothing m :
       {BleuSmoothing::kExp, BleuSmoothing::kNone, BleuSmoothing::kFloor, BleuSmoothing::kAddK}) {
    if (name == BleuSmoothingName(m)) return m;
  }
  return absl::InvalidArgumentError("BLEU smoothing must be one of exp, none, floor, add-k; got '" +
                                    std::string(name) + "'");
}

const char* BleuTokenizeName(BleuTokenize tokenize) {
  switch (tokenize) {
    case BleuTokenize::k13a:
      return "13a";
    case BleuTokenize::kNone:
      return "none";
  }
  return "?";
}

absl::StatusOr<BleuTokenize> ParseBleuTokenize(std::string_view name) {
  for (BleuTokenize t : {BleuTokenize::k13a, BleuTokenize::kNone}) {
    if (name == BleuTokenizeName(t)) return t;
  }
  return absl::InvalidArgumentError("BLEU tokenizer must be 13a or none; got '" +
                                    std::string(name) + "'");
}

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  sys_len += other.sys_len;
  ref_len += other.ref_len;
  if (correct.size() < other.correct.size()) correct.resize(other.correct.size(), 0);
  if (total.size() < other.total.size()) total.resize(other.total.size(), 0);
  for (size_t i = 0; i < other.correct.size(); ++i) correct[i] += other.correct[i];
  for (size_t i = 0; i < other.total.size(); ++i) total[i] += other.total[i];
  if (num_refs == 0) {
    num_refs = other.num_refs;
  } else if (other.num_refs != 0 && other.num_refs != num_refs) {
    num_refs = -1;
  }
  return *this;
}

std::string BleuScore::Format(int width) const {
  std::string out = "BLEU";
  if (!signature.empty()) out += "|" + signature;
  out += " = " + FormatFixed(score, width) + " ";
  for (size_t i = 0; i < precisions.size(); ++i) {
    if (i > 0) out += "/";
    out += FormatFixed(precisions[i], 1);
  }
  out += " (BP = " + FormatFixed(bp, 3) + " ratio = " + FormatFixed(ratio(), 3) +
         " hyp_len = " + std::to_string(sys_len) + " ref_len = " + std::to_string(ref_len) + ")";
  return out;
}

std::vector<std::string_view> SplitPyWhitespace(std::string_view text) {
  std::vector<std::string_view> tokens;
  size_t start = std::string_view::npos;
  for (size_t i = 0; i < text.size();) {
    const size_t ws = PyWhitespaceLen(text, i);
    if (ws > 0) {
      if (start != std::string_view::npos) {
        tokens.push_back(text.substr(start, i - start));
        start = std::string_view::npos;
      }
      i += ws;
    } else {
      if (start == std::string_view::npos) start = i;
      ++i;
    }
  }
  if (start != std::string_view::npos) tokens.push_back(text.substr(start));
  return tokens;
}

std::string Tokenize13a(std::string_view line) {
  std::string s(line);
  s = ReplaceAll(std::move(s), "<skipped>", "");
  s = ReplaceAll(std::move(s), "-\n", "");
  s = ReplaceAll(std::move(s), "\n", " ");
  s = ReplaceAll(std::move(s), "&quot;", "\"");
  s = ReplaceAll(std::move(s), "&amp;", "&");
  s = ReplaceAll(std::move(s), "&lt;", "<");
  s = ReplaceAll(std::move(s), "&gt;", ">");
  return RegexpTokenize(" " + s + " ");
}

absl::StatusOr<BleuStats> CorpusBleuStats(const std::vector<std::string>& hyps,
                                          const std::vector<std::vector<std::string>>& ref_streams,
                                          const BleuOptions& options) {
  FASTDISS_RETURN_IF_ERROR(ValidateOptions(options));
  if (ref_streams.empty()) return absl::InvalidArgumentError("no reference streams given");
  for (size_t k = 0; k < ref_streams.size(); ++k) {
    if (ref_streams[k].size() != hyps.size()) {
      return absl::InvalidArgumentError("reference stream " + std::to_string(k) + " has " +
                                        std::to_string(ref_streams[k].size()) +
                                        " lines but there are " + std::to_string(hyps.size()) +
                                        " hypotheses");
    }
  }
  const int max_order = options.max_ngram_order;
  BleuStats stats;
  stats.correct.assign(max_order, 0);
  stats.total.assign(max_order, 0);
  for (size_t i = 0; i < hyps.size(); ++i) {
    NgramCounts ref_ngrams;
    std::vector<int64_t> ref_lens;
    for (const auto& stream : ref_streams) {
      if (stream[i].empty()) continue;  // a missing reference for this segment
      const std::string ref = Preprocess(stream[i], options.tokenize);
      const std::vector<std::string_view> tokens = SplitPyWhitespace(ref);
      ref_lens.push_back(static_cast<int64_t>(tokens.size()));
      for (auto& [ngram, count] : ExtractNgrams(tokens, max_order)) {
        int64_t& best = ref_ngrams[ngram];
        best = std::max(best, count);
      }
    }
    if (ref_lens.empty()) {
      return absl::InvalidArgumentError("segment " + std::to_string(i) +
                                        " has no non-empty reference");
    }
    const int segment_refs = static_cast<int>(ref_lens.size());
    if (i == 0) {
      stats.num_refs = segment_refs;
    } else if (stats.num_refs != segment_refs) {
      stats.num_refs = -1;
    }

    const std::string hyp = Preprocess(hyps[i], options.tokenize);
    const std::vector<std::string_view> tokens = SplitPyWhitespace(hyp);
    const auto hyp_len = static_cast<int64_t>(tokens.size());
    stats.sys_len += hyp_len;
    stats.ref_len += ClosestRefLen(hyp_len, ref_lens);
    for (const auto& [ngram, count] : ExtractNgrams(tokens, max_order)) {
      const int n = static_cast<int>(std::count(ngram.begin(), ngram.end(), ' '));
      stats.total[n] += count;
      const auto it = ref_ngrams.find(ngram);
      if (it != ref_ngrams.end()) stats.correct[n] += std::min(count, it->second);
    }
  }
  return stats;
}

absl::StatusOr<BleuScore> ComputeBleu(const BleuStats& stats, const BleuOptions& options) {
  FASTDISS_RETURN_IF_ERROR(ValidateOptions(options));
  const int max_order = options.max_ngram_order;
  if (stats.correct.size() != static_cast<size_t>(max_order) ||
      stats.total.size() != static_cast<size_t>(max_order)) {
    return absl::InvalidArgumentError("BLEU statistics have " +
                                      std::to_string(stats.correct.size()) + " and " +
                                      std::to_string(stats.total.size()) +
                                      " orders, max_ngram_order is " + std::to_string(max_order));
  }
  const double smooth_value =
      options.smooth_value.value_or(DefaultSmoothValue(options.smooth_method));

  BleuScore result;
  result.counts = stats.correct;
  result.totals = stats.total;
  result.sys_len = stats.sys_len;
  result.ref_len = stats.ref_len;
  result.precisions.assign(max_order, 0.0);
  if (stats.sys_len < stats.ref_len) {
    result.bp = stats.sys_len > 0
                    ? std::exp(1.0 - static_cast<double>(stats.ref_len) / stats.sys_len)
                    : 0.0;
  } else {
    result.bp = 1.0;
  }
  // No match at all: 0.0 without smoothing (sacreBLEU #141).
  if (std::all_of(stats.correct.begin(), stats.correct.end(), [](int64_t c) { return c == 0; })) {
    result.score = 0.0;
    return result;
  }

  // Doubles because add-k adds a possibly fractional k to counts and totals of orders > 1.
  std::vector<double> correct(stats.correct.begin(), stats.correct.end());
  std::vector<double> total(stats.total.begin(), stats.total.end());
  double smooth_mteval = 1.0;
  int eff_order = max_order;
  for (int n = 1; n <= max_order; ++n) {
    if (options.smooth_method == BleuSmoothing::kAddK && n > 1) {
      correct[n - 1] += smooth_value;
      total[n - 1] += smooth_value;
    }
    if (total[n - 1] == 0.0) break;
    if (options.effective_order) eff_order = n;
    if (correct[n - 1] == 0.0) {
      if (options.smooth_method == BleuSmoothing::kExp) {
        smooth_mteval *= 2.0;
        result.precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1]);
      } else if (options.smooth_method == BleuSmoothing::kFloor) {
        result.precisions[n - 1] = 100.0 * smooth_value / total[n - 1];
      }
    } else {
      result.precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
    }
  }
  // Summed left to right like Python's sum().
  double log_sum = 0.0;
  for (int n = 0; n < eff_order; ++n) log_sum += MyLog(result.precisions[n]);
  result.score = result.bp * std::exp(log_sum / eff_order);
  return result;
}

std::string BleuSignature(const BleuOptions& options, int num_refs) {
  std::string smooth = BleuSmoothingName(options.smooth_method);
  if (options.smooth_method == BleuSmoothing::kFloor ||
      options.smooth_method == BleuSmoothing::kAddK) {
    smooth +=
        "[" +
        FormatFixed(options.smooth_value.value_or(DefaultSmoothValue(options.smooth_method)), 2) +
        "]";
  }
  return "nrefs:" + (num_refs < 0 ? std::string("var") : std::to_string(num_refs)) +
         "|case:mixed|eff:" + (options.effective_order ? "yes" : "no") +
         "|tok:" + BleuTokenizeName(options.tokenize) + "|smooth:" + smooth +
         "|version:" + kSacreBleuVersion;
}

absl::StatusOr<BleuScore> CorpusBleuMultiRef(
    const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_streams,
    const BleuOptions& options) {
  if (hyps.empty()) return absl::InvalidArgumentError("corpus BLEU needs at least one hypothesis");
  FASTDISS_ASSIGN_OR_RETURN(BleuStats stats, CorpusBleuStats(hyps, ref_streams, options));
  FASTDISS_ASSIGN_OR_RETURN(BleuScore score, ComputeBleu(stats, options));
  score.signature = BleuSignature(options, stats.num_refs);
  return score;
}

absl::StatusOr<BleuScore> CorpusBleu(const std::vector<std::string>& hyps,
                                     const std::vector<std::string>& refs,
                                     const BleuOptions& options) {
  return CorpusBleuMultiRef(hyps, {refs}, options);
}

int64_t EditDistance(const std::vector<std::string_view>& hyp,
                     const std::vector<std::string_view>& ref) {
  // One row of the Levenshtein table over the reference.
  std::vector<int64_t> row(ref.size() + 1);
  for (size_t j = 0; j <= ref.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= hyp.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= ref.size(); ++j) {
      const int64_t substitute = diagonal + (hyp[i - 1] == ref[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[ref.size()];
}

absl::StatusOr<double> PhonemeErrorRate(const std::vector<std::string>& hyps,
                                        const std::vector<std::string>& refs) {
  if (hyps.size() != refs.size()) {
    return absl::InvalidArgumentError("PER needs one reference per hypothesis, got " +
                                      std::to_string(hyps.size()) + " hypotheses and " +
                                      std::to_string(refs.size()) + " references");
  }
  int64_t edits = 0;
  int64_t ref_tokens = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    const std::vector<std::string_view> ref = SplitPyWhitespace(refs[i]);
    edits += EditDistance(SplitPyWhitespace(hyps[i]), ref);
    ref_tokens += static_cast<int64_t>(ref.size());
  }
  if (ref_tokens == 0)
    return absl::InvalidArgumentError("PER is undefined: the references have no tokens");
  return static_cast<double>(edits) / ref_tokens;
}

absl::StatusOr<double> WordErrorRate(const std::vector<std::string>& hyps,
                                     const std::vector<std::string>& refs) {
  if (hyps.size() != refs.size()) {
    return absl::InvalidArgumentError("WER needs one reference per hypothesis, got " +
                                      std::to_string(hyps.size()) + " hypotheses and " +
                                      std::to_string(refs.size()) + " references");
  }
  if (refs.empty()) return absl::InvalidArgumentError("WER is undefined: there are no references");
  int64_t wrong = 0;
  for (size_t i = 0; i < hyps.size(); ++i) {
    if (SplitPyWhitespace(hyps[i]) != SplitPyWhitespace(refs[i])) ++wrong;
  }
  return static_cast<double>(wrong) / static_cast<double>(refs.size());
}

}  // namespace fastdiss
