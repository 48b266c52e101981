// JsonWriter: builds one compact JSON text (metrics log lines, --json outputs) in memory.
//
// Calls mirror the document: BeginObject/Key/value.../EndObject. Strings are escaped per RFC 8259
// (control characters as \u00XX); valid UTF-8 passes through and each invalid byte becomes U+FFFD,
// so the output is always valid UTF-8 JSON. Non-finite doubles are written as null (JSON has no
// NaN). Doubles use the shortest text that reads back to the same value. Well-formedness (a Key
// before each value inside an object, balanced Begin/End) is the caller's job, checked by assert.
// Not thread-safe; one writer per document.
#ifndef FASTDISS_BASE_JSON_WRITER_H_
#define FASTDISS_BASE_JSON_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fastdiss {

class JsonWriter {
 public:
  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();

  // The document so far; complete once every Begin has its End.
  const std::string& str() const { return out_; }

 private:
  void BeforeValue();  // writes the ',' between siblings
  JsonWriter& Raw(std::string_view text);
  JsonWriter& Open(char bracket, bool is_object);
  JsonWriter& Close(char bracket, bool is_object);

  struct Level {
    bool is_object;
    bool empty;
  };
  std::string out_;
  std::vector<Level> stack_;
  bool after_key_ = false;
};

// Appends `value` to `out` as a quoted, escaped JSON string.
void AppendJsonString(std::string_view value, std::string* out);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_JSON_WRITER_H_
