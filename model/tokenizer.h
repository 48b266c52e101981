// SentencePiece tokenization without linking libsentencepiece.
//
// Debian's libsentencepiece carries its own protobuf (3.14), which crashes a process that also
// loads LibTorch's protobuf (3.21). So Tokenizer reads the `.model` file (a serialized
// sentencepiece ModelProto) with a small wire-format reader and re-implements the encoder of
// sentencepiece 0.1.97 for the models our trainer makes: unigram or BPE pieces under the
// `identity` normalization rule. Encode matches `spm_encode --output_format=id` id for id
// (tokenizer_test checks it against the real program); models with another rule are refused.
//
// A Tokenizer is immutable once built: every const method is safe to call from many threads.
// It is movable but not copyable (its lookup table points into its own pieces); share one with
// std::shared_ptr. TrainSentencePiece runs the real `spm_train` program and blocks until it exits.
#ifndef FASTDISS_MODEL_TOKENIZER_H_
#define FASTDISS_MODEL_TOKENIZER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace fastdiss {

class Tokenizer {
 public:
  // Parses a serialized ModelProto. A truncated or corrupt proto gives DATA_LOSS; a model this
  // class cannot reproduce exactly (another normalization rule, WORD/CHAR models,
  // treat_whitespace_as_suffix) gives INVALID_ARGUMENT naming what is unsupported.
  // Keeps `bytes` so that checkpoints can embed the model unchanged.
  static absl::StatusOr<Tokenizer> FromSerializedProto(std::string bytes);
  // Reads `model_path` (NOT_FOUND if it cannot be read) and parses it as above.
  static absl::StatusOr<Tokenizer> Load(const std::string& model_path);

  // An empty tokenizer (no pieces), to be assigned a loaded one.
  Tokenizer() = default;
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Piece ids for `text`, without bos/eos. Malformed UTF-8 bytes become U+FFFD first, as in
  // sentencepiece; a run of unknown characters becomes one unk id.
  std::vector<int> Encode(std::string_view text) const;
  // Text for `ids`: control ids (pad/bos/eos) and out-of-range ids are skipped, unk becomes the
  // model's unk surface (" \u2047 "), U+2581 becomes a space and the dummy-prefix space is dropped.
  std::string Decode(const std::vector<int>& ids) const;

  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  // -1 when the model has no such piece.
  int pad_id() const { return pad_id_; }
  int unk_id() const { return unk_id_; }
  int bos_id() const { return bos_id_; }
  int eos_id() const { return eos_id_; }
  // The piece's text (with U+2581 for spaces); empty for an out-of-range id.
  const std::string& IdToPiece(int id) const;
  const std::string& serialized() const { return serialized_; }

 private:
  // Values of ModelProto.SentencePiece.Type.
  enum PieceType {
    kNormal = 1,
    kUnknown = 2,
    kControl = 3,
    kUserDefined = 4,
    kUnused = 5,
    kByte = 6
  };
  struct Piece {
    std::string text;
    float score = 0;
    int type = kNormal;
  };
  using Segment = std::pair<std::string_view, int>;  // a piece of the normalized text and its id

  struct ModelFields;    // what Parse reads from the ModelProto; defined in tokenizer.cc
  absl::Status Parse();  // reads serialized_, validates it and builds the lookup tables
  // Checks each piece and builds ids_, prefixes_, byte_ids_ and the score range.
  absl::Status IndexPieces();
  std::string Normalize(std::string_view text) const;
  std::vector<Segment> EncodeUnigram(std::string_view normalized) const;
  std::vector<Segment> EncodeBpe(std::string_view normalized) const;
  // The id of a piece that segmentation may produce (normal, user-defined or unused), else -1.
  int FindSegmentable(std::string_view piece) const;
  // Calls visit(length, id) for each such piece that starts `text`, shortest first.
  template <typename Visit>
  void ForEachPieceAtStart(std::string_view text, Visit visit) const;

  std::string serialized_;
  std::vector<Piece> pieces_;
  // Keys view into pieces_[i].text, which stay put when the vector is moved.
  std::unordered_map<std::string_view, int> ids_;  // every piece
  // Every prefix of a piece that segmentation may produce: the piece's id, or -1 for a prefix
  // that is no such piece. Lets a scan stop where no piece goes on, like spm's trie does.
  std::unordered_map<std::string_view, int> prefixes_;
  float min_score_ = 0, max_score_ = 0;  // over normal pieces, as sentencepiece computes them
  int byte_ids_[256] = {};               // only filled when byte_fallback_

  // From TrainerSpec and NormalizerSpec (see ModelFields for the defaults).
  bool bpe_ = false;
  bool byte_fallback_ = false;
  std::string unk_surface_;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;

  int unk_id_ = -1, bos_id_ = -1, eos_id_ = -1, pad_id_ = -1;
};

// How a model's source text is cut into units before the tokenizer sees it: the model config's
// `source_units` (network.h). "text" passes the text as it is. "characters" is for models trained
// on one unit per character, such as g2p's spelled words: whitespace (space, tab, newline) is
// dropped and the remaining characters (UTF-8 code points; a malformed byte counts as one) are
// joined by single spaces, so "hello", "hel lo" and "h e l l o" all become "h e l l o".
inline constexpr std::string_view kSourceUnitsText = "text";
inline constexpr std::string_view kSourceUnitsCharacters = "characters";
// INVALID_ARGUMENT naming the allowed values unless `units` is one of the two above.
absl::Status CheckSourceUnits(std::string_view units);
// A model's whole rule for its source text (ModelConfig::source_rule()).
struct SourceRule {
  std::string_view units = kSourceUnitsText;  // checked with CheckSourceUnits
  // ASCII capitals become small letters first, for models whose data has none (the CMU
  // dictionary's spellings): "Hello" reads as "hello". Other characters are left alone.
  bool lowercase = false;
};
// `text` as the tokenizer must see it under `rule`.
std::string PrepareSource(std::string_view text, const SourceRule& rule);

struct SentencePieceTrainOptions {
  std::vector<std::string> input_files;  // plain text, one sentence per line; no ',' in names
  std::string model_prefix;              // writes <model_prefix>.model and <model_prefix>.vocab
  int vocab_size = 8000;                 // a soft limit: tiny corpora give fewer pieces
  std::string model_type = "unigram";    // "unigram" or "bpe"
  double character_coverage = 1.0;       // in (0, 1]; rarer characters become unk
  int input_sentence_size = 0;           // sample this many lines (seeded); 0 reads all
  uint32_t random_seed = 1;              // fixed so that a run can be repeated exactly
  int num_threads = 1;                   // more threads may change the result
  // More spm_train flags, e.g. "--control_symbols=<mask>". They come last, and spm_train keeps
  // the last value of a flag, so they can also override the fixed choices below.
  std::vector<std::string> extra_args;
  std::string program = "spm_train";  // looked up in PATH
};

// Runs `spm_train` (no shell) with our fixed choices: identity normalization, pad=0, unk=1,
// bos=2, eos=3, no byte fallback, soft vocab limit. With the same inputs and options the model
// comes out the same (the seed is always passed). Blocks until it exits; on failure the status
// carries the tail of its output. NOT_FOUND when the program is not installed.
absl::Status TrainSentencePiece(const SentencePieceTrainOptions& options);

}  // namespace fastdiss

#endif  // FASTDISS_MODEL_TOKENIZER_H_
