#include "base/number_text.h"

#include <charconv>
#include <limits>
#include <system_error>

namespace fastdiss {

bool ParseInt64(std::string_view text, int64_t* out) {
  const bool plus = text.size() > 1 && text[0] == '+' && text[1] != '-';
  const std::string_view digits = text.substr(plus ? 1 : 0);
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), *out);
  return !digits.empty() && r.ec == std::errc() && r.ptr == digits.data() + digits.size();
}

bool ParseUint64(std::string_view text, uint64_t* out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && text[0] != '-' && r.ec == std::errc() &&
         r.ptr == text.data() + text.size();
}

bool ParseInt(std::string_view text, int* out) {
  int64_t v;
  if (!ParseInt64(text, &v) || v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max())
    return false;
  *out = static_cast<int>(v);
  return true;
}

bool ParseDouble(std::string_view text, double* out) {
  const bool plus = text.size() > 1 && text[0] == '+' && text[1] != '-';
  const std::string_view v = text.substr(plus ? 1 : 0);
  const bool negative = !v.empty() && v[0] == '-';
  const std::string_view magnitude = negative ? v.substr(1) : v;
  if (magnitude == ".inf" || magnitude == ".Inf" || magnitude == ".INF") {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  if (v == ".nan" || v == ".NaN" || v == ".NAN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  // Leaves out what from_chars also reads but YAML does not: "inf", "nan", hex floats.
  if (v.empty() || v.find_first_not_of("0123456789.eE+-") != std::string_view::npos || v[0] == '+')
    return false;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), *out);
  return r.ec == std::errc() && r.ptr == v.data() + v.size();
}

}  // namespace fastdiss
