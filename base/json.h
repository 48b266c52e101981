// JSON documents are nlohmann::ordered_json (Debian's nlohmann-json3-dev): keys stay in the
// order they were set. JsonText writes one in compact form, with each invalid UTF-8 byte of a
// string as U+FFFD (so the text is always valid JSON) and NaN and infinities as null.
#ifndef FASTDISS_BASE_JSON_H_
#define FASTDISS_BASE_JSON_H_

#include <nlohmann/json.hpp>
#include <string>

namespace fastdiss {

using Json = nlohmann::ordered_json;

inline std::string JsonText(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace fastdiss

#endif  // FASTDISS_BASE_JSON_H_
