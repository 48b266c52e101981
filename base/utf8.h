// UTF-8, decoded by one set of rules for the whole project (RFC 3629, as sentencepiece's
// string_util::DecodeUTF8): no stray continuation bytes, truncated sequences, overlong forms,
// surrogates (U+D800..U+DFFF) or code points above U+10FFFF.
#ifndef FASTDISS_BASE_UTF8_H_
#define FASTDISS_BASE_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace fastdiss {

// U+FFFD REPLACEMENT CHARACTER, what a malformed byte becomes.
inline constexpr std::string_view kUtf8ReplacementChar = "\xEF\xBF\xBD";

// Byte length of the well-formed character that starts `text`, or 0 when it is malformed or
// `text` is empty.
size_t Utf8CharLength(std::string_view text);

// True when all of `text` is well-formed UTF-8.
bool IsValidUtf8(std::string_view text);

// Appends `bytes` with every malformed byte replaced by U+FFFD, so `out` stays valid UTF-8.
void AppendValidUtf8(std::string_view bytes, std::string* out);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_UTF8_H_
