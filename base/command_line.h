// FlagReader: how every fastdiss program reads its command line in main().
//
// It takes "--name VALUE" and "--name=VALUE" alike, bare switches ("--json") and positional
// arguments, in order. A flag starts with "--" or with '-' and a letter ("-h"); anything else is
// positional, so "-", "-5 degrees" and every argument after a lone "--" are texts, not flags. Every
// typed read checks the whole value and its range. A missing or bad value, a value given to a
// switch, or an unknown flag prints one line to stderr,
//   PROGRAM: --steps takes integers >= 1 separated by commas, got '5x' (see --help)
// and ends the process with exit status 2, the programs' status for bad usage. Nothing is ever
// truncated or guessed ("2.5" is not an integer, "5x" is not 5). For main() only: library
// code returns an absl::Status instead of ending the process.
//
//   fastdiss::FlagReader flags("fastdiss-eval", argc, argv);
//   while (flags.Next()) {
//     if (flags.Is("--steps")) steps = flags.IntList(1);
//     else if (flags.Is("--json")) json = flags.Switch();
//     else if (flags.IsPositional()) texts.push_back(flags.arg());
//     else flags.Unknown();
//   }
#ifndef FASTDISS_BASE_COMMAND_LINE_H_
#define FASTDISS_BASE_COMMAND_LINE_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fastdiss {

class FlagReader {
 public:
  FlagReader(std::string program, int argc, const char* const* argv);

  // Moves to the next argument; false after the last one.
  bool Next();
  // The current argument as given: "--steps=5", "--json", "some text".
  const std::string& arg() const { return arg_; }
  // Whether the current argument is the flag `name`, alone or as "name=VALUE".
  bool Is(std::string_view name) const;
  // Whether the current argument is positional, not a flag (see above).
  bool IsPositional() const { return positional_; }

  // The current flag's value: the part after '=', else the next argument (taken as it is).
  std::string String();
  // A switch: returns true; "--json=1" is an error.
  bool Switch();
  // An integer in [min, max].
  int64_t Int(int64_t min = std::numeric_limits<int64_t>::min(),
              int64_t max = std::numeric_limits<int64_t>::max());
  // An integer in [0, 2^64 - 1]: a seed.
  uint64_t Uint64();
  // A finite real in [min, max]: no flag means infinity (a duration of .inf would never end).
  double Double(double min = std::numeric_limits<double>::lowest(),
                double max = std::numeric_limits<double>::max());
  // Integers in [min, max] separated by commas ("1,2,5"), at least one; with allow_none, "none"
  // gives an empty list.
  std::vector<int64_t> IntList(int64_t min, int64_t max = std::numeric_limits<int64_t>::max(),
                               bool allow_none = false);
  // An optional value: the part after '=', else the next argument when it is positional, else
  // nothing ("--health" and "--health SERVICE").
  std::optional<std::string> OptionalString();

  // Ends the process: "PROGRAM: message (see --help)", exit status 2.
  [[noreturn]] void Fail(const std::string& message) const;
  // Fail() for the current argument: an unknown flag, or a positional argument the program
  // does not take.
  [[noreturn]] void Unknown() const;

 private:
  // Fail() for the current flag's value: "--name takes WHAT, got 'VALUE'".
  [[noreturn]] void BadValue(const std::string& what, const std::string& value) const;

  std::string program_;
  std::vector<std::string> args_;
  size_t next_ = 0;
  bool options_ended_ = false;               // a lone "--" was read
  bool positional_ = false;                  // the current argument is positional
  std::string arg_;                          // the current argument
  std::string name_;                         // its flag name, without "=VALUE"
  std::optional<std::string> inline_value_;  // its "=VALUE" part
};

}  // namespace fastdiss

#endif  // FASTDISS_BASE_COMMAND_LINE_H_
