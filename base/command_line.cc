#include "base/command_line.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <utility>

#include "base/number_text.h"

namespace fastdiss {
namespace {

std::string Range(const char* what, const std::string& min, const std::string& max, bool has_min,
                  bool has_max) {
  if (has_min && has_max) return std::string(what) + " in [" + min + ", " + max + "]";
  if (has_min) return std::string(what) + " >= " + min;
  if (has_max) return std::string(what) + " <= " + max;
  return what;
}

// "--name", "--name=VALUE", "-h": a dash then a letter or a second dash.
bool LooksLikeFlag(const std::string& arg) {
  return arg.size() >= 2 && arg[0] == '-' &&
         (arg[1] == '-' || std::isalpha(static_cast<unsigned char>(arg[1])));
}

std::string Text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

FlagReader::FlagReader(std::string program, int argc, const char* const* argv)
    : program_(std::move(program)) {
  for (int i = 1; i < argc; ++i) args_.emplace_back(argv[i]);
}

bool FlagReader::Next() {
  if (!options_ended_ && next_ < args_.size() && args_[next_] == "--") {
    options_ended_ = true;
    ++next_;
  }
  if (next_ >= args_.size()) return false;
  arg_ = args_[next_++];
  positional_ = options_ended_ || !LooksLikeFlag(arg_);
  inline_value_.reset();
  name_ = arg_;
  if (!positional_) {
    const size_t equals = arg_.find('=');
    if (equals != std::string::npos) {
      name_ = arg_.substr(0, equals);
      inline_value_ = arg_.substr(equals + 1);
    }
  }
  return true;
}

bool FlagReader::Is(std::string_view name) const { return !positional_ && name_ == name; }

std::string FlagReader::String() {
  if (inline_value_) return *inline_value_;
  if (next_ >= args_.size()) Fail(name_ + " needs a value");
  return args_[next_++];
}

bool FlagReader::Switch() {
  if (inline_value_) Fail(name_ + " takes no value, got '" + *inline_value_ + "'");
  return true;
}

int64_t FlagReader::Int(int64_t min, int64_t max) {
  const std::string value = String();
  int64_t v;
  if (!ParseInt64(value, &v) || v < min || v > max) {
    BadValue(Range("an integer", std::to_string(min), std::to_string(max),
                   min != std::numeric_limits<int64_t>::min(),
                   max != std::numeric_limits<int64_t>::max()),
             value);
  }
  return v;
}

uint64_t FlagReader::Uint64() {
  const std::string value = String();
  uint64_t v;
  if (!ParseUint64(value, &v)) BadValue("an integer in [0, 18446744073709551615]", value);
  return v;
}

double FlagReader::Double(double min, double max) {
  const std::string value = String();
  double v;
  if (!ParseDouble(value, &v) || !std::isfinite(v) || v < min || v > max) {
    BadValue(
        Range("a finite number", Text(min), Text(max), min != std::numeric_limits<double>::lowest(),
              max != std::numeric_limits<double>::max()),
        value);
  }
  return v;
}

std::vector<int64_t> FlagReader::IntList(int64_t min, int64_t max, bool allow_none) {
  const std::string value = String();
  std::vector<int64_t> out;
  if (allow_none && value == "none") return out;
  std::string what = Range("integers", std::to_string(min), std::to_string(max),
                           min != std::numeric_limits<int64_t>::min(),
                           max != std::numeric_limits<int64_t>::max()) +
                     " separated by commas";
  if (allow_none) what += ", or 'none'";
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ',');) {
    int64_t v;
    if (!ParseInt64(item, &v) || v < min || v > max) BadValue(what, value);
    out.push_back(v);
  }
  // getline drops a trailing empty item: "1,2," would otherwise read as "1,2".
  if (out.empty() || value.back() == ',') BadValue(what, value);
  return out;
}

std::optional<std::string> FlagReader::OptionalString() {
  if (inline_value_) return inline_value_;
  if (next_ < args_.size()) {
    if (!LooksLikeFlag(args_[next_])) return args_[next_++];
  }
  return std::nullopt;
}

void FlagReader::Fail(const std::string& message) const {
  std::cerr << program_ << ": " << message << " (see --help)\n";
  std::exit(2);
}

void FlagReader::Unknown() const {
  if (IsPositional()) Fail("unexpected argument '" + arg_ + "'");
  Fail("unknown flag '" + name_ + "'");
}

void FlagReader::BadValue(const std::string& what, const std::string& value) const {
  Fail(name_ + " takes " + what + ", got '" + value + "'");
}

}  // namespace fastdiss
