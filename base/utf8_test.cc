#include "base/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace fastdiss {
namespace {

TEST(IsValidUtf8Test, AcceptsWellFormedText) {
  for (const char* text : {"", "plain ascii", "caf\xC3\xA9", "\xE2\x96\x81", "\xF0\x9F\x98\x80",
                           "\xED\x9F\xBF", "\xEE\x80\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_TRUE(IsValidUtf8(text)) << text;
  }
  EXPECT_TRUE(IsValidUtf8(std::string("nul \0 inside", 12)));
}

TEST(IsValidUtf8Test, RejectsMalformedText) {
  for (const char* text : {
           "\x80",                  // stray continuation byte
           "\xC3",                  // truncated 2-byte
           "caf\xC3",               // truncated at the end
           "\xE2\x96",              // truncated 3-byte
           "\xF0\x9F\x98",          // truncated 4-byte
           "\xC3\x28",              // bad continuation
           "\xC0\xAF",              // overlong '/'
           "\xC1\xBF",              // overlong
           "\xE0\x80\xAF",          // overlong 3-byte
           "\xF0\x80\x80\xAF",      // overlong 4-byte
           "\xED\xA0\x80",          // surrogate U+D800
           "\xED\xBF\xBF",          // surrogate U+DFFF
           "\xF4\x90\x80\x80",      // above U+10FFFF
           "\xF8\x88\x80\x80\x80",  // 5-byte form
           "\xFF",
       }) {
    EXPECT_FALSE(IsValidUtf8(text)) << testing::PrintToString(text);
  }
}

TEST(Utf8Test, CharLengthCountsOneWellFormedCharacter) {
  EXPECT_EQ(Utf8CharLength(""), 0u);
  EXPECT_EQ(Utf8CharLength("ab"), 1u);
  EXPECT_EQ(Utf8CharLength("\xC3\xA9x"), 2u);
  EXPECT_EQ(Utf8CharLength("\xE2\x96\x81"), 3u);
  EXPECT_EQ(Utf8CharLength("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(Utf8CharLength("\x80"
                           "a"),
            0u);
  EXPECT_EQ(Utf8CharLength("\xED\xA0\x80"), 0u);
}

TEST(Utf8Test, AppendValidUtf8ReplacesEachMalformedByte) {
  std::string out = "x";
  AppendValidUtf8("caf\xC3\xA9 \x80\xFF!", &out);
  EXPECT_EQ(out, "xcaf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD!");
  EXPECT_TRUE(IsValidUtf8(out));
}

}  // namespace
}  // namespace fastdiss
