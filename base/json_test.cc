#include "base/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace fastdiss {
namespace {

TEST(JsonTextTest, KeysKeepTheirOrderAndTheTextIsCompact) {
  Json json;
  json["z"] = 1;
  json["a"] = {1, 2};
  json["m"] = {{"k", "v"}};
  EXPECT_EQ(JsonText(json), R"({"z":1,"a":[1,2],"m":{"k":"v"}})");
}

TEST(JsonTextTest, InvalidUtf8BecomesTheReplacementCharacterAndControlsAreEscaped) {
  const Json json = {{"text", std::string("caf\xC3\xA9 \xFF\x80 \"q\" \n\x01")}};
  EXPECT_EQ(JsonText(json),
            "{\"text\":\"caf\xC3\xA9 \xEF\xBF\xBD\xEF\xBF\xBD \\\"q\\\" \\n\\u0001\"}");
}

TEST(JsonTextTest, NonFiniteNumbersAreNullAndDoublesReadBack) {
  const Json json = {std::nan(""), std::numeric_limits<double>::infinity(), 0.1, 1.0 / 3, 1e-7,
                     -0.0};
  EXPECT_EQ(JsonText(json), "[null,null,0.1,0.3333333333333333,1e-07,-0.0]");
  EXPECT_EQ(Json::parse(JsonText(json))[3].get<double>(), 1.0 / 3);
}

}  // namespace
}  // namespace fastdiss
