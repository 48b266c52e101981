#include "base/command_line.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "base/number_text.h"

namespace fastdiss {
namespace {

// Holds argv for a FlagReader of program "prog"; the first argument is the current one.
class Flags {
 public:
  explicit Flags(std::vector<std::string> args) : args_(std::move(args)) {
    args_.insert(args_.begin(), "prog");
    for (const auto& a : args_) argv_.push_back(a.c_str());
    reader_.emplace("prog", static_cast<int>(argv_.size()), argv_.data());
    reader_->Next();
  }
  FlagReader& operator*() { return *reader_; }
  FlagReader* operator->() { return &*reader_; }

 private:
  std::vector<std::string> args_;
  std::vector<const char*> argv_;
  std::optional<FlagReader> reader_;
};

TEST(NumberTextTest, TakesOnlyWholeNumbers) {
  int64_t i;
  EXPECT_TRUE(ParseInt64("+5", &i));
  EXPECT_EQ(i, 5);
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &i));
  EXPECT_EQ(i, INT64_MIN);
  for (const char* bad : {"", "5x", " 5", "2.5", "+-5", "9223372036854775808", "0x10"}) {
    EXPECT_FALSE(ParseInt64(bad, &i)) << bad;
  }
  uint64_t u;
  EXPECT_TRUE(ParseUint64("18446744073709551615", &u));
  EXPECT_EQ(u, UINT64_MAX);
  EXPECT_FALSE(ParseUint64("18446744073709551616", &u));
  EXPECT_FALSE(ParseUint64("-1", &u));
  EXPECT_FALSE(ParseUint64("+1", &u));
  int small;
  EXPECT_FALSE(ParseInt("2147483648", &small));
  EXPECT_TRUE(ParseInt("-2147483648", &small));
  double d;
  EXPECT_TRUE(ParseDouble("1e-3", &d));
  EXPECT_DOUBLE_EQ(d, 1e-3);
  EXPECT_TRUE(ParseDouble("-.inf", &d));
  EXPECT_TRUE(std::isinf(d) && d < 0);
  for (const char* bad : {"", "abc", "1.5s", "inf", "nan", "0x1p3", "1e400", "+"}) {
    EXPECT_FALSE(ParseDouble(bad, &d)) << bad;
  }
}

TEST(FlagReaderTest, ReadsSpacedAndInlineValuesSwitchesAndPositionals) {
  const char* argv[] = {"prog", "--steps", "1,2,5", "--seed=7", "--json",  "hello world",
                        "-",    "--rate",  "2.5",   "--name=",  "--health"};
  FlagReader flags("prog", 11, argv);
  ASSERT_TRUE(flags.Next());
  ASSERT_TRUE(flags.Is("--steps"));
  EXPECT_EQ(flags.IntList(1), (std::vector<int64_t>{1, 2, 5}));
  ASSERT_TRUE(flags.Next());
  EXPECT_FALSE(flags.Is("--seed=7"));
  ASSERT_TRUE(flags.Is("--seed"));
  EXPECT_EQ(flags.Int(0), 7);
  ASSERT_TRUE(flags.Next());
  ASSERT_TRUE(flags.Is("--json"));
  EXPECT_TRUE(flags.Switch());
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.IsPositional());
  EXPECT_FALSE(flags.Is("hello world"));
  EXPECT_EQ(flags.arg(), "hello world");
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.IsPositional());  // "-" is stdin by convention, not a flag
  ASSERT_TRUE(flags.Next());
  ASSERT_TRUE(flags.Is("--rate"));
  EXPECT_DOUBLE_EQ(flags.Double(0), 2.5);
  ASSERT_TRUE(flags.Next());
  ASSERT_TRUE(flags.Is("--name"));
  EXPECT_EQ(flags.String(), "");  // "--name=" gives an empty value on purpose
  ASSERT_TRUE(flags.Next());
  ASSERT_TRUE(flags.Is("--health"));
  EXPECT_EQ(flags.OptionalString(), std::nullopt);
  EXPECT_FALSE(flags.Next());
}

TEST(FlagReaderTest, SeedsTakeTheWholeUnsignedRange) {
  // The server draws random seeds from all 64 bits and reports them; each must be replayable.
  EXPECT_EQ(Flags({"--seed", "18446744073709551615"})->Uint64(), UINT64_MAX);
}

TEST(FlagReaderTest, OnlyDashLetterOrDoubleDashIsAFlag) {
  const char* argv[] = {"prog", "-5 degrees", "-h", "--", "--json", "-h"};
  FlagReader flags("prog", 6, argv);
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.IsPositional());
  EXPECT_EQ(flags.arg(), "-5 degrees");
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.Is("-h"));
  // After a lone "--" every argument is a text, even one that looks like a flag.
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.IsPositional());
  EXPECT_FALSE(flags.Is("--json"));
  EXPECT_EQ(flags.arg(), "--json");
  ASSERT_TRUE(flags.Next());
  EXPECT_TRUE(flags.IsPositional());
  EXPECT_FALSE(flags.Next());
}

TEST(FlagReaderTest, SpacedValueIsTakenAsItIsEvenWhenItLooksLikeAFlag) {
  Flags flags({"--target", "--json"});
  EXPECT_EQ(flags->String(), "--json");
  EXPECT_FALSE(flags->Next());
  Flags negative({"--offset", "-3"});
  EXPECT_EQ(negative->Int(), -3);
}

TEST(FlagReaderTest, OptionalValueTakesOnlyAPositionalNextArgument) {
  Flags with({"--health", "fastdiss.v1.Generator"});
  EXPECT_EQ(with->OptionalString(), "fastdiss.v1.Generator");
  EXPECT_FALSE(with->Next());
  Flags inline_value({"--health=svc"});
  EXPECT_EQ(inline_value->OptionalString(), "svc");
  Flags before_end({"--health", "--", "text"});
  EXPECT_EQ(before_end->OptionalString(), std::nullopt);
  ASSERT_TRUE(before_end->Next());
  EXPECT_TRUE(before_end->IsPositional());
  EXPECT_EQ(before_end->arg(), "text");
  Flags before_flag({"--health", "--json"});
  EXPECT_EQ(before_flag->OptionalString(), std::nullopt);
  ASSERT_TRUE(before_flag->Next());
  EXPECT_TRUE(before_flag->Is("--json"));
}

TEST(FlagReaderTest, NoneListOnlyWhenAllowed) {
  Flags flags({"--gap-steps", "none"});
  EXPECT_TRUE(flags->IntList(1, 100, /*allow_none=*/true).empty());
}

TEST(FlagReaderDeathTest, BadValuesEndTheProgramWithStatus2AndSayWhy) {
  EXPECT_EXIT(Flags({"--steps"})->IntList(1), testing::ExitedWithCode(2),
              "prog: --steps needs a value");
  EXPECT_EXIT(Flags({"--steps", "none"})->IntList(1), testing::ExitedWithCode(2),
              "prog: --steps takes integers >= 1 separated by commas, got 'none' \\(see --help\\)");
  EXPECT_EXIT(Flags({"--steps", "1,,5"})->IntList(1), testing::ExitedWithCode(2), "got '1,,5'");
  EXPECT_EXIT(Flags({"--steps", "1,2,"})->IntList(1), testing::ExitedWithCode(2), "got '1,2,'");
  EXPECT_EXIT(Flags({"--steps", "0,5"})->IntList(1), testing::ExitedWithCode(2), "integers >= 1");
  EXPECT_EXIT(Flags({"--steps", "5,2001"})->IntList(1, 2000), testing::ExitedWithCode(2),
              "--steps takes integers in \\[1, 2000\\] separated by commas, got '5,2001'");
  EXPECT_EXIT(Flags({"--gap-steps", "x"})->IntList(1, 9, true), testing::ExitedWithCode(2),
              "separated by commas, or 'none', got 'x'");
  EXPECT_EXIT(Flags({"--concurrency", "2.5"})->Int(1), testing::ExitedWithCode(2),
              "prog: --concurrency takes an integer >= 1, got '2.5'");
  EXPECT_EXIT(Flags({"--rows=5x"})->Int(1, 100), testing::ExitedWithCode(2),
              "--rows takes an integer in \\[1, 100\\], got '5x'");
  EXPECT_EXIT(Flags({"--rows", "101"})->Int(1, 100), testing::ExitedWithCode(2), "got '101'");
  EXPECT_EXIT(Flags({"--seed", "9223372036854775808"})->Int(), testing::ExitedWithCode(2),
              "--seed takes an integer, got '9223372036854775808'");
  EXPECT_EXIT(Flags({"--deadline-seconds", "abc"})->Double(0), testing::ExitedWithCode(2),
              "--deadline-seconds takes a finite number >= 0, got 'abc'");
  EXPECT_EXIT(Flags({"--rate", ".nan"})->Double(), testing::ExitedWithCode(2),
              "takes a finite number, got '.nan'");
  EXPECT_EXIT(Flags({"--duration", ".inf"})->Double(0), testing::ExitedWithCode(2), "got '.inf'");
  EXPECT_EXIT(Flags({"--rate", "-1"})->Double(0.5, 2), testing::ExitedWithCode(2),
              "takes a finite number in \\[0.5, 2\\]");
  EXPECT_EXIT(Flags({"--seed", "-1"})->Uint64(), testing::ExitedWithCode(2),
              "--seed takes an integer in \\[0, 18446744073709551615\\], got '-1'");
  EXPECT_EXIT(Flags({"--json=1"})->Switch(), testing::ExitedWithCode(2),
              "prog: --json takes no value, got '1'");
  EXPECT_EXIT(Flags({"--bogus=3"})->Unknown(), testing::ExitedWithCode(2),
              "prog: unknown flag '--bogus'");
  EXPECT_EXIT(Flags({"stray"})->Unknown(), testing::ExitedWithCode(2),
              "prog: unexpected argument 'stray'");
}

}  // namespace
}  // namespace fastdiss
