// Tokenizer is checked against the real sentencepiece programs: TrainSentencePiece trains a model
// on license texts that every Debian machine has, and spm_encode / spm_decode are the reference
// for every line of another license plus lines written to hit the corner cases.
#include "model/tokenizer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace fastdiss {
namespace {

namespace fs = std::filesystem;

const char kLicenses[] = "/usr/share/common-licenses/";

bool HaveSentencePieceTools() {
  return std::system(
             "{ command -v spm_train && command -v spm_encode && command -v spm_decode; }"
             " >/dev/null 2>&1") == 0;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void WriteLines(const fs::path& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary);
  for (const std::string& line : lines) out << line << '\n';
}

std::vector<int> ParseIds(const std::string& line) {
  std::istringstream in(line);
  std::vector<int> ids;
  for (int id; in >> id;) ids.push_back(id);
  return ids;
}

// A fresh directory under the test temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string templ = testing::TempDir() + "tokenizer_test.XXXXXX";
    path_ = mkdtemp(templ.data()) != nullptr ? templ : "";
  }
  ~TempDir() {
    if (!path_.empty()) fs::remove_all(path_);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs a sentencepiece tool on `input` lines; returns its output lines. The paths come from
// mkdtemp and are single-quoted, so the shell sees them as plain words.
std::vector<std::string> RunSpmTool(const std::string& tool, const fs::path& model,
                                    const std::string& flags, const std::vector<std::string>& input,
                                    const fs::path& dir) {
  const fs::path in = dir / "tool_in.txt", out = dir / "tool_out.txt";
  WriteLines(in, input);
  const std::string command = tool + " --model='" + model.string() + "' " + flags + " --input='" +
                              in.string() + "' --output='" + out.string() + "' 2>/dev/null";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return ReadLines(out);
}

// Encodes every line with both spm_encode and `tokenizer`, and decodes spm's ids with both
// spm_decode and the tokenizer; every line must agree exactly.
void ExpectSameAsSentencePiece(const Tokenizer& tokenizer, const fs::path& model,
                               const std::vector<std::string>& lines, const fs::path& dir) {
  const std::vector<std::string> encoded =
      RunSpmTool("spm_encode", model, "--output_format=id", lines, dir);
  ASSERT_EQ(encoded.size(), lines.size());
  const std::vector<std::string> decoded =
      RunSpmTool("spm_decode", model, "--input_format=id", encoded, dir);
  ASSERT_EQ(decoded.size(), lines.size());
  int mismatches = 0;
  for (size_t i = 0; i < lines.size() && mismatches < 5; ++i) {
    const std::vector<int> want = ParseIds(encoded[i]);
    const std::vector<int> got = tokenizer.Encode(lines[i]);
    EXPECT_EQ(got, want) << "line " << i << ": '" << lines[i] << "'";
    EXPECT_EQ(tokenizer.Decode(want), decoded[i]) << "line " << i << ": '" << lines[i] << "'";
    mismatches += got != want || tokenizer.Decode(want) != decoded[i];
  }
}

// What identity normalization keeps of `text`: spaces trimmed and runs of them collapsed.
std::string CollapseSpaces(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c != ' ' || (!out.empty() && out.back() != ' ')) out += c;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// Lines that spm must handle but that license texts lack.
const std::vector<std::string>& CornerCaseLines() {
  static const auto* const kLines = new std::vector<std::string>{
      "",
      "      ",
      "   leading and trailing spaces   ",
      "multiple    internal     spaces",
      "tab\tseparated\tvalues\t",
      "na\xC3\xAFve caf\xC3\xA9 fa\xC3\xA7"
      "ade \xE2\x80\x94 \xE2\x80\x9Cquoted\xE2\x80\x9D",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E and \xE2\x98\x83\xE2\x98\x83\xE2\x98\x83 snowmen",
      "emoji \xF0\x9F\x98\x80 and \xF0\x9F\x98\x80\xF0\x9F\x98\x80x",
      "\xE2\x96\x81 a literal U+2581 \xE2\x96\x81",
      "<s> </s> <unk> <pad> spelled out",
      "bad \xFF\xFE bytes \xC0\xAF overlong \xED\xA0\x80 surrogate \xE2\x82",
      "1234567890 !@#$%^&*()_+-=[]{}|;':\",./<>?`~",
      "alll llll sss eee ttt rrrrr oooo",  // equal-score BPE merges: the leftmost goes first
  };
  return *kLines;
}

class TrainedModelTest : public testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!HaveSentencePieceTools()) GTEST_SKIP() << "spm_train/spm_encode/spm_decode not installed";
    for (const char* name : {"GPL-3", "Apache-2.0", "MPL-2.0"}) {
      if (!fs::exists(fs::path(kLicenses) / name)) GTEST_SKIP() << "no " << kLicenses << name;
    }
    ASSERT_FALSE(dir_.path().empty());
    SentencePieceTrainOptions options;
    options.input_files = {std::string(kLicenses) + "GPL-3", std::string(kLicenses) + "Apache-2.0"};
    options.model_prefix = (dir_.path() / "m").string();
    options.vocab_size = 1000;
    options.model_type = GetParam();
    ASSERT_TRUE(TrainSentencePiece(options).ok());
    model_ = dir_.path() / "m.model";
    absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Load(model_.string());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::make_unique<Tokenizer>(std::move(tokenizer).value());
    lines_ = ReadLines(fs::path(kLicenses) / "MPL-2.0");
    lines_.insert(lines_.end(), CornerCaseLines().begin(), CornerCaseLines().end());
  }

  TempDir dir_;
  fs::path model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::string> lines_;
};

TEST_P(TrainedModelTest, ReservedIdsAreOurs) {
  EXPECT_EQ(tokenizer_->pad_id(), 0);
  EXPECT_EQ(tokenizer_->unk_id(), 1);
  EXPECT_EQ(tokenizer_->bos_id(), 2);
  EXPECT_EQ(tokenizer_->eos_id(), 3);
  EXPECT_EQ(tokenizer_->IdToPiece(2), "<s>");
  EXPECT_EQ(tokenizer_->IdToPiece(-1), "");
  EXPECT_EQ(tokenizer_->IdToPiece(tokenizer_->vocab_size()), "");
  EXPECT_GT(tokenizer_->vocab_size(), 200);
  EXPECT_LE(tokenizer_->vocab_size(), 1000);
  EXPECT_EQ(tokenizer_->serialized(), ReadFile(model_));
}

TEST_P(TrainedModelTest, MatchesSpmEncodeAndDecodeLineForLine) {
  ASSERT_GT(lines_.size(), 300u);
  ExpectSameAsSentencePiece(*tokenizer_, model_, lines_, dir_.path());
}

TEST_P(TrainedModelTest, RunOfUnknownCharactersIsOneUnk) {
  // The training text is ASCII, so these are all unknown; sentencepiece merges a run of them.
  const std::vector<int> ids = tokenizer_->Encode("x \xE2\x98\x83\xE2\x98\x83\xC3\xA9 y");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer_->unk_id()), 1);
  EXPECT_EQ(tokenizer_->Decode({tokenizer_->unk_id()}), " \xE2\x81\x87 ");
}

TEST_P(TrainedModelTest, DecodeInvertsEncodeWithoutUnknowns) {
  int checked = 0;
  for (const std::string& line : lines_) {
    const std::vector<int> ids = tokenizer_->Encode(line);
    if (std::count(ids.begin(), ids.end(), tokenizer_->unk_id()) > 0) continue;
    EXPECT_EQ(tokenizer_->Decode(ids), CollapseSpaces(line));
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST_P(TrainedModelTest, DecodeSkipsControlAndOutOfRangeIds) {
  std::vector<int> ids = tokenizer_->Encode("the Program");
  ids.insert(ids.begin(), {tokenizer_->bos_id(), tokenizer_->pad_id(), -5});
  ids.insert(ids.end(), {tokenizer_->eos_id(), tokenizer_->vocab_size(), tokenizer_->pad_id()});
  EXPECT_EQ(tokenizer_->Decode(ids), "the Program");
}

TEST_P(TrainedModelTest, TrainingIsRepeatable) {
  SentencePieceTrainOptions options;
  options.input_files = {std::string(kLicenses) + "GPL-3", std::string(kLicenses) + "Apache-2.0"};
  options.model_prefix = (dir_.path() / "again").string();
  options.vocab_size = 1000;
  options.model_type = GetParam();
  ASSERT_TRUE(TrainSentencePiece(options).ok());
  EXPECT_EQ(ReadFile(dir_.path() / "again.vocab"), ReadFile(dir_.path() / "m.vocab"));
}

TEST_P(TrainedModelTest, CorruptModelsGiveAnErrorNotACrash) {
  const std::string bytes = tokenizer_->serialized();
  // Cut anywhere, including the last bytes where the normalizer spec sits.
  for (size_t size = 0; size < bytes.size(); size += size + 64 < bytes.size() ? 61 : 1) {
    const absl::StatusOr<Tokenizer> cut = Tokenizer::FromSerializedProto(bytes.substr(0, size));
    EXPECT_FALSE(cut.ok()) << "cut at " << size;
    if (!cut.ok()) {
      EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss) << cut.status();
    }
  }
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::string noise(random() % 4096, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    EXPECT_FALSE(Tokenizer::FromSerializedProto(noise).ok());
  }
  // Flipped bytes may still parse; then the tokenizer must still work.
  for (int i = 0; i < 200; ++i) {
    std::string flipped = bytes;
    for (int j = 0; j < 3; ++j) flipped[random() % flipped.size()] ^= 1 << (random() % 8);
    const absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromSerializedProto(flipped);
    if (tokenizer.ok()) tokenizer->Decode(tokenizer->Encode("Licensed under the License."));
  }
}

TEST_P(TrainedModelTest, OtherNormalizationRuleIsRefused) {
  SentencePieceTrainOptions options;
  options.input_files = {std::string(kLicenses) + "Apache-2.0"};
  options.model_prefix = (dir_.path() / "nfkc").string();
  options.vocab_size = 500;
  options.model_type = GetParam();
  options.extra_args = {"--normalization_rule_name=nmt_nfkc"};
  ASSERT_TRUE(TrainSentencePiece(options).ok());
  const absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::Load((dir_.path() / "nfkc.model").string());
  ASSERT_FALSE(tokenizer.ok());
  EXPECT_EQ(tokenizer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tokenizer.status().message().find("nmt_nfkc"), std::string::npos) << tokenizer.status();
}

TEST_P(TrainedModelTest, ExtraSymbolsAndByteFallbackMatchSpm) {
  SentencePieceTrainOptions options;
  options.input_files = {std::string(kLicenses) + "GPL-3"};
  options.model_prefix = (dir_.path() / "extra").string();
  options.vocab_size = 800;
  options.model_type = GetParam();
  options.extra_args = {"--control_symbols=<mask>", "--user_defined_symbols=[X],ense",
                        "--byte_fallback=true"};
  ASSERT_TRUE(TrainSentencePiece(options).ok());
  const fs::path model = dir_.path() / "extra.model";
  absl::StatusOr<Tokenizer> tokenizer = Tokenizer::Load(model.string());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::vector<std::string> lines = {"the License[X] of <mask> [X][X]License", "dense sense"};
  lines.insert(lines.end(), lines_.end() - 40, lines_.end());
  ExpectSameAsSentencePiece(*tokenizer, model, lines, dir_.path());
}

INSTANTIATE_TEST_SUITE_P(ModelTypes, TrainedModelTest, testing::Values("unigram", "bpe"));

// A minimal protobuf writer, to hand-make models the trainer would not produce.
std::string Varint(uint64_t v) {
  std::string out;
  for (; v >= 0x80; v >>= 7) out += static_cast<char>(v | 0x80);
  return out + static_cast<char>(v);
}
std::string Tag(int field, int wire_type) { return Varint(field << 3 | wire_type); }
std::string Message(int field, const std::string& bytes) {
  return Tag(field, 2) + Varint(bytes.size()) + bytes;
}
std::string Int(int field, int64_t v) { return Tag(field, 0) + Varint(static_cast<uint64_t>(v)); }
std::string Float(int field, float f) {
  char bytes[4];
  std::memcpy(bytes, &f, 4);  // little-endian host, like the wire format
  return Tag(field, 5) + std::string(bytes, 4);
}
std::string Piece(const std::string& text, float score, int type, const std::string& extra = "") {
  return Message(1, Message(1, text) + Float(2, score) + Int(3, type) + extra);
}

// Pieces: 0 <unk>, 1 a, 2 b, 3 c, 4 "ab" (user-defined), 5 "abc", 6 d, 7 e, 8 "de" scored so
// that "de" and "d" "e" tie; no dummy prefix.
std::string HandMadeModel(const std::string& rule = "identity", int model_type = 1,
                          const std::string& unknown_fields = "") {
  return Piece("<unk>", 0, 2) + Piece("a", -1, 1, unknown_fields) + Piece("b", -1, 1) +
         Piece("c", -1, 1) + Piece("ab", 0, 4) + Piece("abc", -0.5, 1) + Piece("d", -1, 1) +
         Piece("e", -1, 1) + Piece("de", -2, 1) +
         Message(2, Int(3, model_type) + unknown_fields + Int(41, -1)) +
         Message(3, Message(1, rule) + unknown_fields + Int(3, 0)) + unknown_fields;
}

TEST(HandMadeModelTest, UserDefinedBonusAndTiesMatchSpm) {
  // spm 0.1.97 scores a user-defined piece length * max_score - 0.1 (about -0.1 here), so "abc"
  // (-0.5) beats "ab" + "c" (-1.1); an older +1.0 bonus would pick "ab" "c".
  const absl::StatusOr<Tokenizer> tokenizer = Tokenizer::FromSerializedProto(HandMadeModel());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Encode("abc"), std::vector<int>({5}));
  EXPECT_EQ(tokenizer->Encode("cab"), std::vector<int>({3, 4}));
  EXPECT_EQ(tokenizer->Encode("de"), std::vector<int>({8}));  // on a tie the first path found
  EXPECT_EQ(tokenizer->bos_id(), -1);                         // a negative int32 on the wire
  if (!HaveSentencePieceTools()) GTEST_SKIP() << "spm_encode not installed";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const fs::path model = dir.path() / "hand.model";
  std::ofstream(model, std::ios::binary) << HandMadeModel();
  ExpectSameAsSentencePiece(*tokenizer, model, {"abc", "cab", "ab", "a b c", "abcd", "de", "dede"},
                            dir.path());
}

TEST(HandMadeModelTest, UnknownFieldsOfEveryWireTypeAreSkipped) {
  const std::string unknown = Int(99, 12345) + Tag(98, 1) + std::string(8, '\x7f') + Tag(97, 5) +
                              std::string(4, '\x01') + Message(96, "junk");
  const absl::StatusOr<Tokenizer> tokenizer =
      Tokenizer::FromSerializedProto(HandMadeModel("identity", 1, unknown));
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ(tokenizer->Encode("cab"), std::vector<int>({3, 4}));
}

TEST(HandMadeModelTest, UnsupportedModelsAreRefusedByName) {
  const absl::StatusOr<Tokenizer> nfkc = Tokenizer::FromSerializedProto(HandMadeModel("nfkc_cf"));
  EXPECT_EQ(nfkc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nfkc.status().message().find("nfkc_cf"), std::string::npos) << nfkc.status();
  const absl::StatusOr<Tokenizer> word =
      Tokenizer::FromSerializedProto(HandMadeModel("identity", 3));
  EXPECT_EQ(word.status().code(), absl::StatusCode::kInvalidArgument) << word.status();
}

TEST(HandMadeModelTest, MalformedModelsAreDataLoss) {
  const std::string good = HandMadeModel();
  for (const std::string& bad : {
           std::string(), Message(1, Int(1, 5)) + good,  // piece text sent as a varint
           good + Tag(5, 3),                             // groups are not supported
           good + Varint(uint64_t{1} << 63),             // a tag with field number out of range
           good + Piece("a", -1, 1),                     // duplicate piece
           good + Piece("z", -1, 9),                     // unknown piece type
           Message(3, Message(1, "identity")),           // no pieces
       }) {
    EXPECT_EQ(Tokenizer::FromSerializedProto(bad).status().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_EQ(Tokenizer::Load("/nonexistent/m.model").status().code(), absl::StatusCode::kNotFound);
}

TEST(PrepareSourceTest, TextUnitsLeaveTheTextAlone) {
  EXPECT_EQ(PrepareSource("  Ein Mann\tfährt. ", SourceRule{}), "  Ein Mann\tfährt. ");
}

constexpr SourceRule kCharacters{kSourceUnitsCharacters, false};

TEST(PrepareSourceTest, CharacterUnitsSpaceEveryCharacterWhateverTheInputSpacing) {
  for (const char* word : {"hello", "h e l l o", "hel lo", "  h\te l\nl o \r\n"}) {
    EXPECT_EQ(PrepareSource(word, kCharacters), "h e l l o") << word;
  }
  // Idempotent, so spaced training data and plain requests meet in the same form.
  const std::string once = PrepareSource("o'brien-smith", kCharacters);
  EXPECT_EQ(once, "o ' b r i e n - s m i t h");
  EXPECT_EQ(PrepareSource(once, kCharacters), once);
  // A multi-byte character stays whole; a malformed byte is one unit of its own.
  EXPECT_EQ(PrepareSource("caf\xC3\xA9", kCharacters), "c a f \xC3\xA9");
  EXPECT_EQ(PrepareSource("a\xC3", kCharacters), "a \xC3");
  EXPECT_EQ(PrepareSource(" \t\n", kCharacters), "");
}

TEST(PrepareSourceTest, LowercasingTouchesOnlyAsciiCapitals) {
  const SourceRule lowered{kSourceUnitsCharacters, true};
  EXPECT_EQ(PrepareSource("HeLLo", lowered), "h e l l o");
  EXPECT_EQ(PrepareSource("O'Brien \xC3\x89", lowered), "o ' b r i e n \xC3\x89");  // É stays
  EXPECT_EQ(PrepareSource("Ein Mann", SourceRule{kSourceUnitsText, true}), "ein mann");
  EXPECT_EQ(PrepareSource("Ein Mann", SourceRule{}), "Ein Mann");
}

TEST(PrepareSourceTest, OnlyTheTwoKnownUnitsPassTheCheck) {
  EXPECT_TRUE(CheckSourceUnits("text").ok());
  EXPECT_TRUE(CheckSourceUnits("characters").ok());
  const absl::Status bad = CheckSourceUnits("letters");
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("\"letters\""), std::string::npos) << bad.message();
}

TEST(TrainSentencePieceTest, RejectsBadOptions) {
  SentencePieceTrainOptions options;
  options.input_files = {"a.txt"};
  options.model_prefix = "m";
  EXPECT_EQ(TrainSentencePiece({}).code(), absl::StatusCode::kInvalidArgument);
  for (auto change : std::vector<void (*)(SentencePieceTrainOptions&)>{
           [](SentencePieceTrainOptions& o) { o.input_files = {"a.txt,b.txt"}; },
           [](SentencePieceTrainOptions& o) { o.model_prefix.clear(); },
           [](SentencePieceTrainOptions& o) { o.vocab_size = 0; },
           [](SentencePieceTrainOptions& o) { o.model_type = "word"; },
           [](SentencePieceTrainOptions& o) { o.character_coverage = 0; },
           [](SentencePieceTrainOptions& o) { o.num_threads = 0; },
           [](SentencePieceTrainOptions& o) { o.random_seed = UINT32_MAX; },
       }) {
    SentencePieceTrainOptions bad = options;
    change(bad);
    EXPECT_EQ(TrainSentencePiece(bad).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(TrainSentencePieceTest, ReportsMissingProgramAndItsFailures) {
  SentencePieceTrainOptions options;
  options.input_files = {"/nonexistent/input.txt"};
  options.model_prefix = "/nonexistent/m";
  options.program = "/nonexistent/spm_train";
  EXPECT_EQ(TrainSentencePiece(options).code(), absl::StatusCode::kNotFound);
  if (!HaveSentencePieceTools()) GTEST_SKIP() << "spm_train not installed";
  options.program = "spm_train";
  const absl::Status status = TrainSentencePiece(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  // The message carries spm_train's own complaint about the input.
  EXPECT_NE(status.message().find("input.txt"), std::string::npos) << status;
}

}  // namespace
}  // namespace fastdiss
