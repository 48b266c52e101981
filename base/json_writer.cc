#include "base/json_writer.h"

#include <cassert>
#include <charconv>
#include <cmath>

#include "base/utf8.h"

namespace fastdiss {
void AppendJsonString(std::string_view value, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < value.size();) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c >= 0x80) {
      const size_t n = Utf8CharLength(value.substr(i));
      out->append(n == 0 ? kUtf8ReplacementChar : value.substr(i, n));
      i += n == 0 ? 1 : n;
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  assert((stack_.empty() ? out_.empty() : !stack_.back().is_object) && "value needs a Key");
  if (!stack_.empty()) {
    if (!stack_.back().empty) out_.push_back(',');
    stack_.back().empty = false;
  }
}

JsonWriter& JsonWriter::Open(char bracket, bool is_object) {
  BeforeValue();
  out_.push_back(bracket);
  stack_.push_back({is_object, true});
  return *this;
}

JsonWriter& JsonWriter::Close(char bracket, bool is_object) {
  assert(!stack_.empty() && stack_.back().is_object == is_object && !after_key_);
  (void)is_object;
  stack_.pop_back();
  out_.push_back(bracket);
  return *this;
}

JsonWriter& JsonWriter::BeginObject() { return Open('{', true); }
JsonWriter& JsonWriter::EndObject() { return Close('}', true); }
JsonWriter& JsonWriter::BeginArray() { return Open('[', false); }
JsonWriter& JsonWriter::EndArray() { return Close(']', false); }

JsonWriter& JsonWriter::Key(std::string_view key) {
  assert(!stack_.empty() && stack_.back().is_object && !after_key_);
  if (!stack_.back().empty) out_.push_back(',');
  stack_.back().empty = false;
  AppendJsonString(key, &out_);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendJsonString(value, &out_);
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view text) {
  BeforeValue();
  out_.append(text);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t value) { return Raw(std::to_string(value)); }
JsonWriter& JsonWriter::Uint(uint64_t value) { return Raw(std::to_string(value)); }
JsonWriter& JsonWriter::Bool(bool value) { return Raw(value ? "true" : "false"); }
JsonWriter& JsonWriter::Null() { return Raw("null"); }

JsonWriter& JsonWriter::Double(double value) {
  if (!std::isfinite(value)) return Null();
  char buf[32];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);  // shortest round-trip form
  return Raw(std::string_view(buf, result.ptr - buf));
}

}  // namespace fastdiss
