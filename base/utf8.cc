#include "base/utf8.h"

#include <cstdint>

namespace fastdiss {

size_t Utf8CharLength(std::string_view text) {
  if (text.empty()) return 0;
  const uint8_t lead = static_cast<uint8_t>(text[0]);
  if (lead < 0x80) return 1;
  const size_t n = lead >= 0xF8 ? 0 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (n == 0 || text.size() < n) return 0;
  uint32_t code_point = lead & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((text[i] & 0xC0) != 0x80) return 0;
    code_point = code_point << 6 | (text[i] & 0x3F);
  }
  constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};  // shorter forms are overlong
  const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
  return code_point >= kSmallest[n] && code_point <= 0x10FFFF && !surrogate ? n : 0;
}

bool IsValidUtf8(std::string_view text) {
  while (!text.empty()) {
    const size_t length = Utf8CharLength(text);
    if (length == 0) return false;
    text.remove_prefix(length);
  }
  return true;
}

void AppendValidUtf8(std::string_view bytes, std::string* out) {
  while (!bytes.empty()) {
    const size_t length = Utf8CharLength(bytes);
    out->append(length == 0 ? kUtf8ReplacementChar : bytes.substr(0, length));
    bytes.remove_prefix(length == 0 ? 1 : length);
  }
}

}  // namespace fastdiss
