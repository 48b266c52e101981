// See tokenizer.h. Comments naming a sentencepiece file refer to the 0.1.97 sources this code
// follows (normalizer.cc, unigram_model.cc, bpe_model.cc, sentencepiece_processor.cc).
#include "model/tokenizer.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <queue>
#include <utility>

#include "base/subprocess.h"
#include "base/utf8.h"

namespace fastdiss {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 stands for ' ' in pieces

// ---------------------------------------------------------------------------------------------
// Protobuf wire format: just enough to read a ModelProto.

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

struct Field {
  uint32_t number = 0;
  int wire_type = 0;
  uint64_t value = 0;      // varint and fixed-width fields
  std::string_view bytes;  // length-delimited fields
};

// Calls on_field for each field of the `message` in `data`. Every read is bounds-checked, so a
// truncated or corrupt buffer gives DATA_LOSS, never a read past the end. on_field skips an
// unknown field by ignoring it: its payload has already been read.
template <typename OnField>
absl::Status ForEachField(std::string_view data, const char* message, OnField on_field) {
  size_t pos = 0;
  const auto corrupt = [&](const char* what) {
    return absl::DataLossError(std::string("corrupt sentencepiece model: ") + message + ": " +
                               what + " at byte " + std::to_string(pos));
  };
  const auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64 && pos < data.size(); shift += 7) {
      const uint8_t b = static_cast<uint8_t>(data[pos++]);
      *v |= uint64_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  while (pos < data.size()) {
    Field f;
    uint64_t tag, size = 0;
    if (!varint(&tag)) return corrupt("bad tag");
    f.number = static_cast<uint32_t>(tag >> 3);
    f.wire_type = static_cast<int>(tag & 7);
    if (f.number == 0 || (tag >> 3) > 0x1FFFFFFF) return corrupt("bad field number");
    if (f.wire_type == kVarint) {
      if (!varint(&f.value)) return corrupt("bad varint");
    } else if (f.wire_type == kFixed64 || f.wire_type == kFixed32) {
      size = f.wire_type == kFixed64 ? 8 : 4;
      if (data.size() - pos < size) return corrupt("truncated fixed-width field");
      for (size_t i = size; i-- > 0;) f.value = f.value << 8 | static_cast<uint8_t>(data[pos + i]);
    } else if (f.wire_type == kLengthDelimited) {
      if (!varint(&size) || size > data.size() - pos) return corrupt("bad length");
      f.bytes = data.substr(pos, size);
    } else {
      return corrupt("unsupported wire type");
    }
    pos += size;
    FASTDISS_RETURN_IF_ERROR(on_field(f));
  }
  return absl::OkStatus();
}

// A known field must come with the wire type its declaration implies.
absl::Status Want(const Field& f, WireType type, const char* name) {
  if (f.wire_type == type) return absl::OkStatus();
  return absl::DataLossError(std::string("corrupt sentencepiece model: ") + name +
                             " has wire type " + std::to_string(f.wire_type) + ", want " +
                             std::to_string(type));
}
absl::Status ReadString(const Field& f, const char* name, std::string* out) {
  FASTDISS_RETURN_IF_ERROR(Want(f, kLengthDelimited, name));
  out->assign(f.bytes);
  return absl::OkStatus();
}
template <typename T>  // int32, enum and bool fields
absl::Status ReadVarint(const Field& f, const char* name, T* out) {
  FASTDISS_RETURN_IF_ERROR(Want(f, kVarint, name));
  *out = static_cast<T>(static_cast<int32_t>(f.value));  // a negative int32 is sign-extended
  return absl::OkStatus();
}

// sentencepiece's string_util::OneCharLen: steps through text already known to be valid UTF-8.
int OneCharLen(std::string_view s, size_t pos) {
  const int len = "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[static_cast<uint8_t>(s[pos]) >> 4];
  return std::min<int>(len, static_cast<int>(s.size() - pos));
}

// The byte a byte piece stands for ("<0x41>" is 'A'), or -1 when `piece` is not one.
int PieceToByte(std::string_view piece) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  const size_t high = kHex.find(piece[3]), low = kHex.find(piece[4]);
  return high == kHex.npos || low == kHex.npos ? -1 : static_cast<int>(high * 16 + low);
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

absl::Status CheckSourceUnits(std::string_view units) {
  if (units == kSourceUnitsText || units == kSourceUnitsCharacters) return absl::OkStatus();
  return absl::InvalidArgumentError("source_units must be \"text\" or \"characters\", got \"" +
                                    std::string(units) + "\"");
}

std::string PrepareSource(std::string_view text, const SourceRule& rule) {
  std::string lowered;
  if (rule.lowercase) {
    lowered.assign(text);
    for (char& c : lowered) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    text = lowered;
  }
  if (rule.units != kSourceUnitsCharacters) return std::string(text);
  std::string spaced;
  spaced.reserve(2 * text.size());
  while (!text.empty()) {
    const size_t len = std::max<size_t>(1, Utf8CharLength(text));
    const char c = text[0];
    if (!(len == 1 &&
          (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'))) {
      if (!spaced.empty()) spaced.push_back(' ');
      spaced.append(text.substr(0, len));
    }
    text.remove_prefix(len);
  }
  return spaced;
}

// ---------------------------------------------------------------------------------------------
// Loading.

absl::StatusOr<Tokenizer> Tokenizer::FromSerializedProto(std::string bytes) {
  Tokenizer tokenizer;
  tokenizer.serialized_ = std::move(bytes);
  FASTDISS_RETURN_IF_ERROR(tokenizer.Parse());
  return tokenizer;
}

absl::StatusOr<Tokenizer> Tokenizer::Load(const std::string& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open sentencepiece model " + model_path);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError("cannot read sentencepiece model " + model_path);
  absl::StatusOr<Tokenizer> tokenizer = FromSerializedProto(std::move(bytes));
  if (!tokenizer.ok()) {
    return absl::Status(tokenizer.status().code(),
                        model_path + ": " + std::string(tokenizer.status().message()));
  }
  return tokenizer;
}

// The fields of a ModelProto that this tokenizer reads, with the proto defaults.
struct Tokenizer::ModelFields {
  std::vector<Piece> pieces;
  // TrainerSpec
  int model_type = 1;  // 1 unigram, 2 bpe
  bool treat_whitespace_as_suffix = false;
  bool byte_fallback = false;
  int reserved_ids[3] = {1, 2, -1};  // bos, eos, pad
  std::string unk_surface = " \xE2\x81\x87 ";
  // NormalizerSpec
  bool has_normalizer = false;
  std::string rule, charsmap;
  bool add_dummy_prefix = true, remove_extra_whitespaces = true, escape_whitespaces = true;
  // denormalizer_spec: a NormalizerSpec applied after decoding
  std::string denormalizer_charsmap;

  absl::Status Read(std::string_view model_proto) {
    return ForEachField(model_proto, "ModelProto", [&](const Field& f) {
      switch (f.number) {
        case 1:
          FASTDISS_RETURN_IF_ERROR(Want(f, kLengthDelimited, "pieces"));
          return ReadPiece(f.bytes);
        case 2:
          FASTDISS_RETURN_IF_ERROR(Want(f, kLengthDelimited, "trainer_spec"));
          return ReadTrainerSpec(f.bytes);
        case 3:
          has_normalizer = true;
          FASTDISS_RETURN_IF_ERROR(Want(f, kLengthDelimited, "normalizer_spec"));
          return ReadNormalizerSpec(f.bytes);
        case 5:
          FASTDISS_RETURN_IF_ERROR(Want(f, kLengthDelimited, "denormalizer_spec"));
          return ForEachField(f.bytes, "NormalizerSpec", [&](const Field& g) {
            return g.number == 2 ? ReadString(g, "precompiled_charsmap", &denormalizer_charsmap)
                                 : absl::OkStatus();
          });
        default:
          return absl::OkStatus();
      }
    });
  }

  absl::Status ReadPiece(std::string_view bytes) {
    Piece& piece = pieces.emplace_back();
    return ForEachField(bytes, "SentencePiece", [&](const Field& g) {
      if (g.number == 1) return ReadString(g, "piece", &piece.text);
      if (g.number == 3) return ReadVarint(g, "type", &piece.type);
      if (g.number != 2) return absl::OkStatus();
      FASTDISS_RETURN_IF_ERROR(Want(g, kFixed32, "score"));
      const uint32_t bits = static_cast<uint32_t>(g.value);
      std::memcpy(&piece.score, &bits, sizeof(bits));
      return absl::OkStatus();
    });
  }

  absl::Status ReadTrainerSpec(std::string_view bytes) {
    return ForEachField(bytes, "TrainerSpec", [&](const Field& g) {
      switch (g.number) {
        case 3:
          return ReadVarint(g, "model_type", &model_type);
        case 24:
          return ReadVarint(g, "treat_whitespace_as_suffix", &treat_whitespace_as_suffix);
        case 35:
          return ReadVarint(g, "byte_fallback", &byte_fallback);
        case 41:
          return ReadVarint(g, "bos_id", &reserved_ids[0]);
        case 42:
          return ReadVarint(g, "eos_id", &reserved_ids[1]);
        case 43:
          return ReadVarint(g, "pad_id", &reserved_ids[2]);
        case 44:
          return ReadString(g, "unk_surface", &unk_surface);
        default:
          return absl::OkStatus();
      }
    });
  }

  absl::Status ReadNormalizerSpec(std::string_view bytes) {
    return ForEachField(bytes, "NormalizerSpec", [&](const Field& g) {
      switch (g.number) {
        case 1:
          return ReadString(g, "name", &rule);
        case 2:
          return ReadString(g, "precompiled_charsmap", &charsmap);
        case 3:
          return ReadVarint(g, "add_dummy_prefix", &add_dummy_prefix);
        case 4:
          return ReadVarint(g, "remove_extra_whitespaces", &remove_extra_whitespaces);
        case 5:
          return ReadVarint(g, "escape_whitespaces", &escape_whitespaces);
        default:
          return absl::OkStatus();
      }
    });
  }

  absl::Status CheckSupported() const {
    // The normalizer spec is serialized after the pieces and the trainer spec, so a file cut at a
    // field boundary still shows up here.
    if (pieces.empty() || !has_normalizer) {
      return absl::DataLossError(
          "not a complete sentencepiece model: no pieces or no normalizer_spec");
    }
    if (rule != "identity" || !charsmap.empty() || !denormalizer_charsmap.empty()) {
      return absl::InvalidArgumentError(
          "sentencepiece normalization rule '" + rule +
          "' is not supported: train with --normalization_rule_name=identity");
    }
    if (model_type != 1 && model_type != 2) {
      return absl::InvalidArgumentError("sentencepiece model_type " + std::to_string(model_type) +
                                        " is not supported: only unigram (1) and bpe (2)");
    }
    if (treat_whitespace_as_suffix) {
      return absl::InvalidArgumentError(
          "sentencepiece treat_whitespace_as_suffix is not supported");
    }
    return absl::OkStatus();
  }
};

absl::Status Tokenizer::Parse() {
  ModelFields model;
  FASTDISS_RETURN_IF_ERROR(model.Read(serialized_));
  FASTDISS_RETURN_IF_ERROR(model.CheckSupported());
  pieces_ = std::move(model.pieces);
  bpe_ = model.model_type == 2;
  byte_fallback_ = model.byte_fallback;
  unk_surface_ = std::move(model.unk_surface);
  add_dummy_prefix_ = model.add_dummy_prefix;
  remove_extra_whitespaces_ = model.remove_extra_whitespaces;
  escape_whitespaces_ = model.escape_whitespaces;
  FASTDISS_RETURN_IF_ERROR(IndexPieces());
  // spm_train writes the reserved pieces as control pieces at these ids; -1 disables one.
  int* const ours[3] = {&bos_id_, &eos_id_, &pad_id_};
  for (int i = 0; i < 3; ++i) {
    const int id = model.reserved_ids[i];
    *ours[i] = id >= 0 && id < vocab_size() && pieces_[id].type == kControl ? id : -1;
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::IndexPieces() {
  // As sentencepiece's Model constructor computes them; note that max_score_ starts at FLT_MIN
  // (the smallest positive float), so with the usual negative scores it stays ~0.
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  int num_byte_pieces = 0;
  for (int id = 0; id < vocab_size(); ++id) {
    const Piece& p = pieces_[id];
    const std::string where = "sentencepiece piece " + std::to_string(id);
    if (p.text.empty() || p.text.find('\0') != std::string::npos) {
      return absl::DataLossError(where + " is empty or holds a NUL byte");
    }
    if (p.type < kNormal || p.type > kByte) {
      return absl::DataLossError(where + " has unknown type " + std::to_string(p.type));
    }
    if (!ids_.emplace(p.text, id).second) {
      return absl::DataLossError(where + " '" + p.text + "' is a duplicate");
    }
    if (p.type == kUnknown) {
      if (unk_id_ >= 0) return absl::DataLossError(where + " is a second unknown piece");
      unk_id_ = id;
    }
    if (p.type == kByte) {
      if (!byte_fallback_ || PieceToByte(p.text) < 0) {
        return absl::DataLossError(where + " '" + p.text +
                                   "' is a byte piece without byte_fallback or malformed");
      }
      byte_ids_[PieceToByte(p.text)] = id;
      ++num_byte_pieces;
    }
    if (p.type == kNormal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
    if (p.type == kNormal || p.type == kUserDefined || p.type == kUnused) {
      const std::string_view text = p.text;  // keys must view the piece, not a copy
      for (size_t k = 1; k < text.size(); ++k) prefixes_.emplace(text.substr(0, k), -1);
    }
  }
  for (int id = 0; id < vocab_size(); ++id) {  // after all the prefixes, which must not win
    const int type = pieces_[id].type;
    if (type == kNormal || type == kUserDefined || type == kUnused) {
      prefixes_[pieces_[id].text] = id;
    }
  }
  if (unk_id_ < 0) return absl::DataLossError("sentencepiece model has no unknown piece");
  if (byte_fallback_ && num_byte_pieces != 256) {  // no duplicates, so all 256 bytes are there
    return absl::DataLossError("sentencepiece model with byte_fallback has " +
                               std::to_string(num_byte_pieces) + " byte pieces, want 256");
  }
  return absl::OkStatus();
}

const std::string& Tokenizer::IdToPiece(int id) const {
  static const std::string* const kEmpty = new std::string();
  return id >= 0 && id < vocab_size() ? pieces_[id].text : *kEmpty;
}

// sentencepiece keeps control, unknown and byte pieces out of its segmentation trie, so text that
// spells "<s>" is segmented like any other text.
int Tokenizer::FindSegmentable(std::string_view piece) const {
  const auto it = prefixes_.find(piece);
  return it == prefixes_.end() ? -1 : it->second;
}

template <typename Visit>
void Tokenizer::ForEachPieceAtStart(std::string_view text, Visit visit) const {
  for (size_t len = 1; len <= text.size(); ++len) {
    const auto it = prefixes_.find(text.substr(0, len));
    if (it == prefixes_.end()) return;
    if (it->second >= 0) visit(static_cast<int>(len), it->second);
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding.

std::string Tokenizer::Normalize(std::string_view text) const {
  // normalizer.cc's Normalize under the identity rule: characters are copied as they are, except
  // that each malformed UTF-8 byte becomes U+FFFD. Only ' ' counts as whitespace (not tabs).
  if (remove_extra_whitespaces_) {
    text.remove_prefix(std::min(text.find_first_not_of(' '), text.size()));
  }
  std::string out;
  if (text.empty()) return out;
  const std::string_view space = escape_whitespaces_ ? kSpaceSymbol : " ";
  if (add_dummy_prefix_) out.append(space);
  bool prev_space = remove_extra_whitespaces_;  // then a space after a space is dropped
  while (!text.empty()) {
    const size_t len = Utf8CharLength(text);
    if (len == 0) {
      out.append(kUtf8ReplacementChar);
      prev_space = false;
      text.remove_prefix(1);
      continue;
    }
    if (text[0] == ' ') {
      if (!prev_space) out.append(space);
      prev_space = remove_extra_whitespaces_;
    } else {
      out.append(text.substr(0, len));
      prev_space = false;
    }
    text.remove_prefix(len);
  }
  // Also strips U+2581 typed by the user at the end, as sentencepiece does.
  while (remove_extra_whitespaces_ && EndsWith(out, space)) out.resize(out.size() - space.size());
  return out;
}

std::vector<int> Tokenizer::Encode(std::string_view text) const {
  const std::string normalized = Normalize(text);
  std::vector<int> ids;
  bool prev_unk = false;
  for (const auto& [surface, id] : bpe_ ? EncodeBpe(normalized) : EncodeUnigram(normalized)) {
    // sentencepiece_processor.cc: an unknown piece becomes its UTF-8 bytes under byte_fallback;
    // otherwise a run of unknown pieces is merged into one.
    const bool unk = id == unk_id_;
    if (unk && byte_fallback_) {
      for (char c : surface) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
    } else if (!(unk && prev_unk)) {
      ids.push_back(id);
    }
    prev_unk = unk;
  }
  return ids;
}

std::vector<Tokenizer::Segment> Tokenizer::EncodeUnigram(std::string_view s) const {
  // unigram_model.cc's EncodeOptimized: Viterbi over byte positions. Ties keep the first path
  // found (shorter pieces first), and the arithmetic mirrors spm's types exactly: a candidate is
  // computed in double (its user-defined bonus is a double) but stored as float.
  struct Best {
    int id = -1;
    float score = 0;
    int start = -1;
  };
  const int n = static_cast<int>(s.size());
  const float unk_score = min_score_ - 10.0f;  // kUnkPenalty
  std::vector<Best> best(n + 1);
  for (int start = 0; start < n;) {
    const float base = best[start].score;
    const int char_len = OneCharLen(s, start);
    bool has_single_char_piece = false;
    ForEachPieceAtStart(s.substr(start), [&](int len, int id) {
      if (pieces_[id].type == kUnused) return;
      // User-defined pieces get a bonus so that they are always chosen.
      const double score = pieces_[id].type == kUserDefined
                               ? static_cast<double>(static_cast<float>(len) * max_score_) - 0.1
                               : pieces_[id].score;
      const double candidate = score + base;
      Best& b = best[start + len];
      if (b.start == -1 || candidate > b.score) b = {id, static_cast<float>(candidate), start};
      if (len == char_len) has_single_char_piece = true;
    });
    if (!has_single_char_piece) {  // an unknown character is its own unk piece
      const float candidate = unk_score + base;
      Best& b = best[start + char_len];
      if (b.start == -1 || candidate > b.score) b = {unk_id_, candidate, start};
    }
    start += char_len;
  }
  std::vector<Segment> result;
  for (int end = n; end > 0; end = best[end].start) {
    result.emplace_back(s.substr(best[end].start, end - best[end].start), best[end].id);
  }
  return {result.rbegin(), result.rend()};
}

std::vector<Tokenizer::Segment> Tokenizer::EncodeBpe(std::string_view s) const {
  // bpe_model.cc's Encode: start from characters (user-defined pieces whole and frozen), then
  // repeatedly merge the adjacent pair that forms the best-scoring piece, leftmost on ties.
  struct Symbol {
    int prev, next;
    bool frozen;
    std::string_view piece;
  };
  struct Pair {
    int left, right;
    float score;
    size_t size;
  };
  const auto worse = [](const Pair& a, const Pair& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(worse)> agenda(worse);
  std::vector<Symbol> symbols;
  // Merged pieces that are unused, with their halves, to split them again at the end.
  std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> unmerge;

  const auto add_pair = [&](int left, int right) {
    if (left < 0 || right < 0 || symbols[left].frozen || symbols[right].frozen) return;
    const std::string_view piece(symbols[left].piece.data(),
                                 symbols[left].piece.size() + symbols[right].piece.size());
    const int id = FindSegmentable(piece);
    if (id < 0) return;
    agenda.push({left, right, pieces_[id].score, piece.size()});
    if (pieces_[id].type == kUnused) unmerge[piece] = {symbols[left].piece, symbols[right].piece};
  };

  for (size_t pos = 0; pos < s.size();) {
    int len = 0;  // the longest user-defined piece here, else one character
    ForEachPieceAtStart(s.substr(pos), [&](int length, int id) {
      if (pieces_[id].type == kUserDefined) len = length;
    });
    const bool frozen = len > 0;
    if (!frozen) len = OneCharLen(s, pos);
    const int index = static_cast<int>(symbols.size());
    pos += len;
    symbols.push_back(
        {index - 1, pos < s.size() ? index + 1 : -1, frozen, s.substr(pos - len, len)});
  }
  for (size_t i = 1; i < symbols.size(); ++i) add_pair(i - 1, i);

  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    // Stale: one side has been merged away or grown since the pair was queued.
    if (left.piece.empty() || right.piece.empty() ||
        left.piece.size() + right.piece.size() != top.size) {
      continue;
    }
    left.piece = std::string_view(left.piece.data(), top.size);
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = {};
    add_pair(left.prev, top.left);
    add_pair(top.left, left.next);
  }

  std::vector<Segment> result;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) {
    std::vector<std::string_view> stack = {symbols[i].piece};
    while (!stack.empty()) {
      const std::string_view w = stack.back();
      stack.pop_back();
      const auto it = ids_.find(w);
      const int id = it == ids_.end() ? unk_id_ : it->second;
      const auto halves = unmerge.find(w);
      if (pieces_[id].type == kUnused && halves != unmerge.end()) {
        stack.push_back(halves->second.second);
        stack.push_back(halves->second.first);
      } else {
        result.emplace_back(w, id);
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Decoding.

std::string Tokenizer::Decode(const std::vector<int>& ids) const {
  // sentencepiece_processor.cc's Decode: the first piece that starts with U+2581 loses it when
  // the model adds a dummy prefix, and so do the ones after it while no text has come out when
  // the model removes extra whitespace. Runs of byte pieces are joined, then UTF-8 checked.
  std::string text, bytes;
  bool at_start = true;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    const Piece& piece = pieces_[id];
    if (piece.type == kByte) {
      bytes.push_back(static_cast<char>(PieceToByte(piece.text)));
      continue;
    }
    AppendValidUtf8(bytes, &text);
    bytes.clear();
    if (!text.empty()) at_start = false;
    if (piece.type == kControl) continue;
    if (piece.type == kUnknown) {
      text += unk_surface_;
      continue;
    }
    std::string_view rest = piece.text;
    if (at_start && (add_dummy_prefix_ || remove_extra_whitespaces_) &&
        rest.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      rest.remove_prefix(kSpaceSymbol.size());
      at_start = remove_extra_whitespaces_;  // then every leading space goes, not just one
    }
    for (size_t pos; (pos = rest.find(kSpaceSymbol)) != std::string_view::npos;) {
      text.append(rest.substr(0, pos)).push_back(' ');
      rest.remove_prefix(pos + kSpaceSymbol.size());
    }
    text.append(rest);
  }
  AppendValidUtf8(bytes, &text);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Training.

absl::Status TrainSentencePiece(const SentencePieceTrainOptions& options) {
  const auto bad = [](const std::string& rule, const std::string& got) {
    return absl::InvalidArgumentError(rule + ", got " + got);
  };
  std::string inputs;
  for (const std::string& file : options.input_files) {
    if (file.empty() || file.find(',') != std::string::npos) {  // spm_train splits at ','
      return bad("input file names must be non-empty and free of ','", "'" + file + "'");
    }
    inputs += (inputs.empty() ? "" : ",") + file;
  }
  if (inputs.empty()) return bad("input_files must not be empty", "none");
  if (options.model_prefix.empty()) return bad("model_prefix must not be empty", "''");
  if (options.vocab_size <= 0) {
    return bad("vocab_size must be positive", std::to_string(options.vocab_size));
  }
  if (options.model_type != "unigram" && options.model_type != "bpe") {
    return bad("model_type must be unigram or bpe", options.model_type);
  }
  if (!(options.character_coverage > 0 && options.character_coverage <= 1)) {
    return bad("character_coverage must be in (0, 1]", std::to_string(options.character_coverage));
  }
  if (options.input_sentence_size < 0) {
    return bad("input_sentence_size must be >= 0", std::to_string(options.input_sentence_size));
  }
  if (options.num_threads < 1) {
    return bad("num_threads must be positive", std::to_string(options.num_threads));
  }
  if (options.random_seed == UINT32_MAX) {  // spm_train reads it as "seed from the clock"
    return bad("random_seed must not be 4294967295", "4294967295");
  }
  char coverage[32];
  std::snprintf(coverage, sizeof(coverage), "%.9g", options.character_coverage);
  std::vector<std::string> args = {
      options.program,
      "--input=" + inputs,
      "--model_prefix=" + options.model_prefix,
      "--vocab_size=" + std::to_string(options.vocab_size),
      "--model_type=" + options.model_type,
      std::string("--character_coverage=") + coverage,
      "--input_sentence_size=" + std::to_string(options.input_sentence_size),
      "--random_seed=" + std::to_string(options.random_seed),
      "--num_threads=" + std::to_string(options.num_threads),
      "--normalization_rule_name=identity",
      "--pad_id=0",
      "--unk_id=1",
      "--bos_id=2",
      "--eos_id=3",
      "--byte_fallback=false",
      "--hard_vocab_limit=false",
  };
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  return RunProgram(args);
}

}  // namespace fastdiss
