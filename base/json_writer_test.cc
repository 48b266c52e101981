#include "base/json_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace fastdiss {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

TEST(JsonWriterTest, NestedObjectsAndArrays) {
  JsonWriter w;
  w.BeginObject();
  w.Key("step").Int(3);
  w.Key("loss").Double(0.25);
  w.Key("ok").Bool(true);
  w.Key("none").Null();
  w.Key("steps").BeginArray().Int(1).Int(-2).Uint(18446744073709551615ull).EndArray();
  w.Key("empty_obj").BeginObject().EndObject();
  w.Key("empty_arr").BeginArray().EndArray();
  w.Key("rows").BeginArray();
  w.BeginObject().Key("a").String("x").EndObject();
  w.BeginObject().Key("b").BeginArray().Bool(false).EndArray().EndObject();
  w.EndArray();
  w.EndObject();
  EXPECT_EQ(w.str(), R"({"step":3,"loss":0.25,"ok":true,"none":null,"steps":[1,-2,18446744073709551615],)"
                     R"("empty_obj":{},"empty_arr":[],"rows":[{"a":"x"},{"b":[false]}]})");
}

TEST(JsonWriterTest, TopLevelScalarAndArray) {
  EXPECT_EQ(JsonWriter().String("hi").str(), "\"hi\"");
  EXPECT_EQ(JsonWriter().BeginArray().String("a").Null().EndArray().str(), "[\"a\",null]");
}

TEST(JsonWriterTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Quoted("a\"b\\c/d"), R"("a\"b\\c/d")");
  EXPECT_EQ(Quoted("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(Quoted(std::string("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\x7f\"");
  EXPECT_EQ(Quoted(""), "\"\"");
}

TEST(JsonWriterTest, KeysAreEscapedToo) {
  JsonWriter w;
  w.BeginObject().Key("a\"\n").Int(1).EndObject();
  EXPECT_EQ(w.str(), R"({"a\"\n":1})");
}

TEST(JsonWriterTest, ValidUtf8PassesThrough) {
  const std::string s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
  EXPECT_EQ(Quoted(s), "\"" + s + "\"");
}

TEST(JsonWriterTest, InvalidUtf8BecomesReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(Quoted("a\xFF"
                   "b"),
            "\"a" + r + "b\"");                                        // never a lead byte
  EXPECT_EQ(Quoted("\x80"), "\"" + r + "\"");                          // stray continuation
  EXPECT_EQ(Quoted("\xC3"), "\"" + r + "\"");                          // truncated at end
  EXPECT_EQ(Quoted("\xC3("), "\"" + r + "(\"");                        // bad continuation
  EXPECT_EQ(Quoted("\xC0\xAF"), "\"" + r + r + "\"");                  // overlong '/'
  EXPECT_EQ(Quoted("\xE0\x80\xAF"), "\"" + r + r + r + "\"");          // overlong 3-byte
  EXPECT_EQ(Quoted("\xED\xA0\x80"), "\"" + r + r + r + "\"");          // UTF-16 surrogate
  EXPECT_EQ(Quoted("\xF4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
}

TEST(JsonWriterTest, NumbersRoundTripAndNonFiniteIsNull) {
  JsonWriter w;
  w.BeginArray()
      .Double(0.1)
      .Double(1e-5)
      .Double(1e300)
      .Double(-0.0)
      .Double(2.0)
      .Double(std::numeric_limits<double>::quiet_NaN())
      .Double(std::numeric_limits<double>::infinity())
      .Double(-std::numeric_limits<double>::infinity())
      .Int(std::numeric_limits<int64_t>::min())
      .EndArray();
  EXPECT_EQ(w.str(), "[0.1,1e-05,1e+300,-0,2,null,null,null,-9223372036854775808]");
  JsonWriter pi;
  pi.Double(3.141592653589793);
  EXPECT_EQ(std::stod(pi.str()), 3.141592653589793);
}

}  // namespace
}  // namespace fastdiss
