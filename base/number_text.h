// Text to numbers, exactly: the one parser of integers and reals for YAML config values and
// command-line flags. A value parses only when all of it is the number: "5x", "", " 5" and
// out-of-range values are rejected, never truncated or wrapped. Reals also take YAML's .inf,
// -.inf and .nan; they do not take C's "inf", "nan" or hex floats.
#ifndef FASTDISS_BASE_NUMBER_TEXT_H_
#define FASTDISS_BASE_NUMBER_TEXT_H_

#include <cstdint>
#include <string_view>

namespace fastdiss {

// Decimal integer with an optional sign ("+5", "-3").
bool ParseInt64(std::string_view text, int64_t* out);
// Decimal integer in [0, 2^64 - 1], no sign: seeds, which use the whole range.
bool ParseUint64(std::string_view text, uint64_t* out);
// ParseInt64 within int's range.
bool ParseInt(std::string_view text, int* out);
// Decimal real ("0.5", "1e-3", "-2", ".inf").
bool ParseDouble(std::string_view text, double* out);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_NUMBER_TEXT_H_
