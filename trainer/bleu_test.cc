#include "trainer/bleu.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

namespace fastdiss {
namespace {

// sacreBLEU's test/test_bleu.py compares with this tolerance on the 0..100 (or 0..1) scale.
constexpr double kEpsilon = 1e-8;

// The README example of sacreBLEU (test/test_bleu.py: _hyps, _refs).
const std::vector<std::string> kHyps = {
    "The dog bit the man.",
    "It wasn't surprising.",
    "The man had just bitten him.",
};
const std::vector<std::vector<std::string>> kRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
};

BleuScore MustBleu(const std::vector<std::string>& hyps,
                   const std::vector<std::vector<std::string>>& refs, const BleuOptions& options) {
  absl::StatusOr<BleuScore> score = CorpusBleuMultiRef(hyps, refs, options);
  EXPECT_TRUE(score.ok()) << score.status();
  return score.ok() ? score.value() : BleuScore{};
}

// sacreBLEU's compat raw_corpus_bleu: floor smoothing, no tokenization, effective order.
BleuOptions RawCorpusOptions(std::optional<double> floor) {
  BleuOptions options;
  options.smooth_method = BleuSmoothing::kFloor;
  options.smooth_value = floor;
  options.tokenize = BleuTokenize::kNone;
  options.effective_order = true;
  return options;
}

BleuStats Stats(std::vector<int64_t> correct, std::vector<int64_t> total, int64_t sys_len,
                int64_t ref_len) {
  BleuStats stats;
  stats.correct = std::move(correct);
  stats.total = std::move(total);
  stats.sys_len = sys_len;
  stats.ref_len = ref_len;
  return stats;
}

// test_bleu.py: test_corpus_bleu_cases (the 'intl' tokenizer case is not supported here).
TEST(CorpusBleuTest, SacreBleuCorpusCases) {
  EXPECT_NEAR(MustBleu(kHyps, kRefs, {}).score, 48.530827, kEpsilon);

  BleuOptions none_tok;
  none_tok.tokenize = BleuTokenize::kNone;
  EXPECT_NEAR(MustBleu(kHyps, kRefs, none_tok).score, 49.1919566, kEpsilon);

  BleuOptions tok_13a;
  tok_13a.tokenize = BleuTokenize::k13a;
  EXPECT_NEAR(MustBleu(kHyps, kRefs, tok_13a).score, 48.530827, kEpsilon);

  BleuOptions no_smoothing;
  no_smoothing.smooth_method = BleuSmoothing::kNone;
  EXPECT_NEAR(MustBleu(kHyps, kRefs, no_smoothing).score, 48.530827, kEpsilon);
}

// test_bleu.py: empty hypotheses are scored (as 0.0), not removed.
TEST(CorpusBleuTest, EmptyHypothesesScoreZero) {
  const BleuScore score = MustBleu({"", "", ""}, kRefs, {});
  EXPECT_EQ(score.score, 0.0);
  EXPECT_EQ(score.sys_len, 0);
  EXPECT_EQ(score.ref_len, 17);  // the shorter reference of each segment is the closer
  EXPECT_EQ(score.bp, 0.0);
}

// The README line of sacreBLEU for the same example.
TEST(CorpusBleuTest, FormatMatchesSacreBleuTextOutput) {
  const BleuScore score = MustBleu(kHyps, kRefs, {});
  EXPECT_EQ(score.Format(),
            "BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3 = 48.53 "
            "82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  EXPECT_EQ(score.counts, (std::vector<int64_t>{14, 7, 5, 3}));
  EXPECT_EQ(score.totals, (std::vector<int64_t>{17, 14, 11, 8}));
}

// test_bleu.py: test_raw_bleu_cases.
TEST(CorpusBleuTest, SacreBleuRawCases) {
  const BleuOptions raw = RawCorpusOptions(0.01);
  EXPECT_NEAR(MustBleu({"this is a test", "another test"}, {{"ref1", "ref2"}}, raw).score / 100,
              0.0, kEpsilon);
  EXPECT_NEAR(MustBleu({"this is a test"}, {{"this is a test"}}, raw).score / 100, 1.0, kEpsilon);
  EXPECT_NEAR(MustBleu({"this is a fest"}, {{"this is a test"}}, raw).score / 100,
              0.223606797749979, kEpsilon);
}

// test_bleu.py: test_case_effective_order.
TEST(CorpusBleuTest, SacreBleuEffectiveOrderCases) {
  const BleuOptions raw = RawCorpusOptions(0.01);
  EXPECT_NEAR(MustBleu({"test"}, {{"a test"}}, raw).score / 100, 0.3678794411714425, kEpsilon);
  EXPECT_NEAR(MustBleu({"a test"}, {{"a test"}}, raw).score / 100, 1.0, kEpsilon);
  EXPECT_NEAR(MustBleu({"a little test"}, {{"a test"}}, raw).score / 100, 0.03218297948685433,
              kEpsilon);
}

// test_bleu.py: test_case_statistics and test_case_offset.
TEST(CorpusBleuTest, SacreBleuStatisticsAndOffsetCases) {
  const std::vector<std::string> hyp = {"am I am a character sequence"};
  const std::vector<std::vector<std::string>> ref = {{"I am a symbol string sequence a a"}};
  const BleuScore with_floor = MustBleu(hyp, ref, RawCorpusOptions(0.01));
  EXPECT_EQ(with_floor.counts, (std::vector<int64_t>{4, 2, 1, 0}));
  EXPECT_EQ(with_floor.totals, (std::vector<int64_t>{6, 5, 4, 3}));

  EXPECT_NEAR(MustBleu(hyp, ref, RawCorpusOptions(0.0)).score / 100, 0.0, kEpsilon);
  // Unset falls back to floor's default 0.1.
  EXPECT_NEAR(MustBleu(hyp, ref, RawCorpusOptions(std::nullopt)).score / 100, 0.1555722182,
              kEpsilon);
}

// test_bleu.py: test_case_scoring (compute_bleu's own default is no smoothing).
TEST(ComputeBleuTest, SacreBleuScoringCase) {
  BleuOptions options;
  options.smooth_method = BleuSmoothing::kNone;
  absl::StatusOr<BleuScore> score =
      ComputeBleu(Stats({9, 7, 5, 3}, {10, 8, 6, 4}, 11, 11), options);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_NEAR(score->score / 100, 0.8375922397, kEpsilon);
  EXPECT_TRUE(score->signature.empty());
}

// test_bleu.py: test_case_degenerate_stats, floor smoothing, compared exactly.
TEST(ComputeBleuTest, SacreBleuDegenerateCases) {
  struct Case {
    BleuStats stats;
    double offset;
  };
  const std::vector<Case> cases = {
      {Stats({0, 0, 0, 0}, {4, 4, 2, 1}, 0, 1), 0.0},
      {Stats({0, 0, 0, 0}, {10, 11, 12, 0}, 14, 10), 0.0},
      {Stats({0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0), 0.0},
      {Stats({6, 5, 4, 0}, {6, 5, 4, 3}, 6, 6), 0.0},
      {Stats({0, 0, 0, 0}, {0, 0, 0, 0}, 0, 0), 0.1},
      {Stats({0, 0, 0, 0}, {0, 0, 0, 0}, 1, 5), 0.01},
  };
  for (const Case& c : cases) {
    BleuOptions options;
    options.smooth_method = BleuSmoothing::kFloor;
    options.smooth_value = c.offset;
    absl::StatusOr<BleuScore> score = ComputeBleu(c.stats, options);
    ASSERT_TRUE(score.ok()) << score.status();
    EXPECT_EQ(score->score, 0.0) << "offset " << c.offset;
  }
}

// test_bleu.py: test_bleu_max_order, compared as "%.2f".
TEST(CorpusBleuTest, SacreBleuMaxOrderCases) {
  const std::vector<std::string> expected = {"77.65", "60.50", "53.93", "48.53", "46.14", "43.28"};
  for (int order = 1; order <= 6; ++order) {
    BleuOptions options;
    options.max_ngram_order = order;
    const BleuScore score = MustBleu(kHyps, kRefs, options);
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f", score.score);
    EXPECT_EQ(buf, expected[order - 1]) << "order " << order;
    EXPECT_EQ(score.precisions.size(), static_cast<size_t>(order));
  }
}

// test_sentence_bleu.py (sacreBLEU issue #98): one UTF-8 sentence, effective order, each
// smoothing; sacreBLEU checks these to 1e-3.
TEST(CorpusBleuTest, SacreBleuSentenceSmoothingCases) {
  const std::string ref = "producţia de zahăr brut se exprimă în zahăr alb;";
  const std::string sys =
      "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  struct Case {
    BleuSmoothing method;
    std::optional<double> value;
    BleuTokenize tokenize;
    double expected;
  };
  const std::vector<Case> cases = {
      {BleuSmoothing::kExp, std::nullopt, BleuTokenize::k13a, 8.493},
      {BleuSmoothing::kNone, std::nullopt, BleuTokenize::k13a, 0.0},
      {BleuSmoothing::kFloor, std::nullopt, BleuTokenize::k13a, 4.51688},
      {BleuSmoothing::kFloor, 0.1, BleuTokenize::k13a, 4.51688},
      {BleuSmoothing::kFloor, 0.5, BleuTokenize::k13a, 10.10},
      {BleuSmoothing::kAddK, std::nullopt, BleuTokenize::k13a, 14.882},
      {BleuSmoothing::kAddK, 1.0, BleuTokenize::k13a, 14.882},
      {BleuSmoothing::kAddK, 2.0, BleuTokenize::k13a, 21.389},
      {BleuSmoothing::kExp, std::nullopt, BleuTokenize::kNone, 7.347},
  };
  for (const Case& c : cases) {
    BleuOptions options;
    options.smooth_method = c.method;
    options.smooth_value = c.value;
    options.tokenize = c.tokenize;
    options.effective_order = true;
    EXPECT_NEAR(MustBleu({sys}, {{ref}}, options).score, c.expected, 1e-3)
        << BleuSmoothingName(c.method) << " " << c.value.value_or(-1) << " "
        << BleuTokenizeName(c.tokenize);
  }
}

// test_sentence_bleu.py (sacreBLEU issue #141): no match at all is 0.0 whatever the smoothing.
TEST(CorpusBleuTest, SacreBleuZeroMatchCases) {
  for (BleuSmoothing method :
       {BleuSmoothing::kExp, BleuSmoothing::kNone, BleuSmoothing::kFloor, BleuSmoothing::kAddK}) {
    BleuOptions options;
    options.smooth_method = method;
    options.effective_order = true;
    EXPECT_EQ(MustBleu({"this is a cat"}, {{"okay thanks"}}, options).score, 0.0)
        << BleuSmoothingName(method);
  }
}

TEST(CorpusBleuTest, SignatureNamesTheSettings) {
  EXPECT_EQ(MustBleu(kHyps, {kRefs[0]}, {}).signature,
            "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3");
  BleuOptions floor;
  floor.smooth_method = BleuSmoothing::kFloor;
  floor.tokenize = BleuTokenize::kNone;
  floor.effective_order = true;
  EXPECT_EQ(BleuSignature(floor, 1),
            "nrefs:1|case:mixed|eff:yes|tok:none|smooth:floor[0.10]|version:2.4.3");
  BleuOptions add_k;
  add_k.smooth_method = BleuSmoothing::kAddK;
  add_k.smooth_value = 2;
  EXPECT_EQ(BleuSignature(add_k, 3),
            "nrefs:3|case:mixed|eff:no|tok:13a|smooth:add-k[2.00]|version:2.4.3");

  // An empty reference is a missing one: the count varies.
  std::vector<std::vector<std::string>> refs = kRefs;
  refs[1][2] = "";
  EXPECT_EQ(MustBleu(kHyps, refs, {}).signature,
            "nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3");
}

// sacreBLEU's _get_closest_ref_len: on a tie the shorter reference length wins.
TEST(CorpusBleuTest, ClosestReferenceLengthPrefersTheShorterOnATie) {
  const BleuScore score = MustBleu({"a b c"}, {{"a b c d"}, {"a b"}}, {});
  EXPECT_EQ(score.sys_len, 3);
  EXPECT_EQ(score.ref_len, 2);
  EXPECT_EQ(score.bp, 1.0);
}

// Matches are clipped by the largest count of the n-gram in any one reference.
TEST(CorpusBleuTest, ClipsByTheMaximumCountOverReferences) {
  const BleuScore score = MustBleu({"a a a"}, {{"a a c"}, {"a b"}}, {});
  EXPECT_EQ(score.counts, (std::vector<int64_t>{2, 1, 0, 0}));
  EXPECT_EQ(score.totals, (std::vector<int64_t>{3, 2, 1, 0}));
}

TEST(CorpusBleuTest, SingleReferenceOverloadMatchesMultiRef) {
  absl::StatusOr<BleuScore> single = CorpusBleu(kHyps, kRefs[0]);
  ASSERT_TRUE(single.ok()) << single.status();
  const BleuScore multi = MustBleu(kHyps, {kRefs[0]}, {});
  EXPECT_EQ(single->score, multi.score);
  EXPECT_EQ(single->Format(), multi.Format());
  EXPECT_LT(single->score, MustBleu(kHyps, kRefs, {}).score);
}

TEST(CorpusBleuTest, StatsOfShardsAddUpToTheCorpus) {
  absl::StatusOr<BleuStats> first = CorpusBleuStats({kHyps[0]}, {{kRefs[0][0]}, {kRefs[1][0]}});
  absl::StatusOr<BleuStats> rest = CorpusBleuStats(
      {kHyps[1], kHyps[2]}, {{kRefs[0][1], kRefs[0][2]}, {kRefs[1][1], kRefs[1][2]}});
  ASSERT_TRUE(first.ok() && rest.ok());
  BleuStats sum = first.value();
  sum += rest.value();
  EXPECT_EQ(sum.num_refs, 2);
  absl::StatusOr<BleuScore> score = ComputeBleu(sum);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_NEAR(score->score, 48.530827, kEpsilon);
}

TEST(CorpusBleuTest, RejectsBadInput) {
  EXPECT_EQ(CorpusBleu({"a", "b"}, {"a"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CorpusBleu({"a"}, {""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CorpusBleu({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CorpusBleuMultiRef({"a"}, {}).status().code(), absl::StatusCode::kInvalidArgument);

  BleuOptions zero_order;
  zero_order.max_ngram_order = 0;
  const absl::Status status = CorpusBleu({"a"}, {"a"}, zero_order).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("max_ngram_order"), std::string::npos) << status;

  BleuOptions negative;
  negative.smooth_method = BleuSmoothing::kFloor;
  negative.smooth_value = -0.1;
  EXPECT_EQ(CorpusBleu({"a"}, {"a"}, negative).status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(ComputeBleu(Stats({1, 1}, {1, 1}, 2, 2)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BleuNamesTest, ParseRoundTrips) {
  for (BleuSmoothing m :
       {BleuSmoothing::kExp, BleuSmoothing::kNone, BleuSmoothing::kFloor, BleuSmoothing::kAddK}) {
    absl::StatusOr<BleuSmoothing> parsed = ParseBleuSmoothing(BleuSmoothingName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), m);
  }
  EXPECT_FALSE(ParseBleuSmoothing("add-n").ok());
  absl::StatusOr<BleuTokenize> tok = ParseBleuTokenize("none");
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok.value(), BleuTokenize::kNone);
  EXPECT_FALSE(ParseBleuTokenize("intl").ok());
}

// Expected strings are the output of sacreBLEU's own Tokenizer13a regular expressions.
TEST(Tokenize13aTest, MatchesSacreBleu) {
  struct Case {
    std::string in;
    std::string out;
  };
  const std::vector<Case> cases = {
      {"Hello, world!", "Hello , world !"},
      {"It costs $3.50, not 3,000 dollars.", "It costs $ 3.50 , not 3,000 dollars ."},
      {"U.S.A. e.g. end...", "U . S . A . e . g . end . . ."},
      {"pages 10-20 and well-known", "pages 10 - 20 and well-known"},
      {"a-\nb c\nd", "ab c d"},
      {"x &amp; y &lt;z&gt; &quot;q&quot; &amp;quot;", "x & y < z > \" q \" & quot ;"},
      {"<skipped> gone", "gone"},
      {"don't (really) [no] {yes} /slash/ a@b #1 ~t 5%",
       "don't ( really ) [ no ] { yes } / slash / a @ b # 1 ~ t 5 %"},
      {"  many   spaces\there  ", "many spaces here"},
      {"Straße, Ärger. 1.000,5 €", "Straße , Ärger . 1.000,5 €"},
      {"no\u00a0break\u3000ideo", "no break ideo"},
      {".5 ,a 5. 5, a.5", ". 5 , a 5 . 5 , a . 5"},
      {"", ""},
      {"2-3-4", "2 - 3 - 4"},
      {"Mr.Smith,Jones.", "Mr . Smith , Jones ."},
  };
  for (const Case& c : cases) EXPECT_EQ(Tokenize13a(c.in), c.out) << "input: " << c.in;
}

TEST(SplitPyWhitespaceTest, SplitsOnUnicodeSpaces) {
  const std::vector<std::string_view> tokens =
      SplitPyWhitespace("\x1c a\u2009b\u00a0\u00a0c\u200bd \u3000");
  // U+200B (zero width space) is not whitespace to Python.
  EXPECT_EQ(tokens, (std::vector<std::string_view>{"a", "b", "c\u200bd"}));
  EXPECT_TRUE(SplitPyWhitespace(" \t\n").empty());
}

TEST(EditDistanceTest, CountsInsertionsDeletionsSubstitutions) {
  const auto d = [](std::string_view a, std::string_view b) {
    return EditDistance(SplitPyWhitespace(a), SplitPyWhitespace(b));
  };
  EXPECT_EQ(d("", ""), 0);
  EXPECT_EQ(d("k eh m", ""), 3);
  EXPECT_EQ(d("", "k eh m"), 3);
  EXPECT_EQ(d("k eh m b ax l", "k eh m b ax l"), 0);
  EXPECT_EQ(d("k ae m b ax l", "k eh m b ax l"), 1);     // substitution
  EXPECT_EQ(d("k eh m b l", "k eh m b ax l"), 1);        // deletion
  EXPECT_EQ(d("k eh eh m b ax l", "k eh m b ax l"), 1);  // insertion
  EXPECT_EQ(d("a b c d", "b c d a"), 2);
}

TEST(PhonemeErrorRateTest, IsTotalEditsOverTotalReferenceTokens) {
  absl::StatusOr<double> per =
      PhonemeErrorRate({"k eh m b ax l", "k ae t", "d"}, {"k eh m b ax l", "k ae t s", "d ao g"});
  ASSERT_TRUE(per.ok()) << per.status();
  EXPECT_DOUBLE_EQ(per.value(), 3.0 / 13.0);  // 0 + 1 + 2 edits over 6 + 4 + 3 tokens

  EXPECT_EQ(PhonemeErrorRate({"a"}, {"a", "b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PhonemeErrorRate({"a"}, {" "}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WordErrorRateTest, CountsWholeSequencesThatDifferAtAll) {
  absl::StatusOr<double> wer = WordErrorRate({"k eh m b ax l", "k ae t", "d  ao g", "b"},
                                             {"k eh m b ax l", "k ae t s", "d ao g", "p"});
  ASSERT_TRUE(wer.ok()) << wer.status();
  EXPECT_DOUBLE_EQ(wer.value(),
                   2.0 / 4.0);  // extra spaces are no error; a missing or wrong token is

  EXPECT_EQ(WordErrorRate({"a"}, {"a", "b"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WordErrorRate({}, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastdiss
