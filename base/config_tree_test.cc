#include "base/config_tree.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

namespace fastdiss {
namespace {

ConfigTree MustParse(std::string_view text) {
  auto tree = ConfigTree::Parse(text, "cfg.yaml");
  EXPECT_TRUE(tree.ok()) << tree.status();
  return tree.ok() ? std::move(tree).value() : ConfigTree();
}

// The error message of parsing `text`, or "OK".
std::string ParseError(std::string_view text) {
  auto tree = ConfigTree::Parse(text, "cfg.yaml");
  return tree.ok() ? "OK" : std::string(tree.status().message());
}

std::string Scalar(const ConfigTree& tree, std::string_view key) {
  const ConfigValue* v = tree.Find(key);
  if (v == nullptr) return "<absent>";
  return v->is_list ? "<list>" : v->scalar;
}

std::vector<std::string> List(const ConfigTree& tree, std::string_view key) {
  const ConfigValue* v = tree.Find(key);
  return v != nullptr && v->is_list ? v->list : std::vector<std::string>{"<not a list>"};
}

TEST(ConfigTreeParseTest, NestedMappingsScalarsAndComments) {
  const ConfigTree tree = MustParse(
      "# leading comment\n"
      "name: fastdiss   # trailing comment\n"
      "\n"
      "train:\n"
      "  max_steps: 100\n"
      "    # comment lines may sit at any indentation\n"
      "  optimizer:\n"
      "    lr: 3e-4\n"
      "    betas: [0.9, 0.999]\n"
      "  log_every: 10\n"
      "url: http://host:8080/a#frag\n"
      "path: C:\\dir\n"
      "  \t  \n"
      "sampler:\n"
      "  kind: ddim\n");
  EXPECT_EQ(tree.Keys(), (std::vector<std::string>{"name", "train.max_steps", "train.optimizer.lr",
                                                   "train.optimizer.betas", "train.log_every",
                                                   "url", "path", "sampler.kind"}));
  EXPECT_EQ(Scalar(tree, "name"), "fastdiss");
  EXPECT_EQ(Scalar(tree, "train.optimizer.lr"), "3e-4");
  EXPECT_EQ(List(tree, "train.optimizer.betas"), (std::vector<std::string>{"0.9", "0.999"}));
  EXPECT_EQ(Scalar(tree, "url"), "http://host:8080/a#frag");  // '#' without a space before is text
  EXPECT_EQ(Scalar(tree, "path"), "C:\\dir");
  EXPECT_EQ(tree.Find("train.log_every")->line, 10);
  EXPECT_EQ(tree.Find("sampler.kind")->line, 15);
  EXPECT_FALSE(tree.Has("train"));  // sections are not values
  EXPECT_EQ(tree.Find("nope"), nullptr);
}

TEST(ConfigTreeParseTest, QuotedStrings) {
  const ConfigTree tree = MustParse(
      "a: \"x # not a comment\"  # a comment\n"
      "b: \"q\\\"uote \\\\ back\\nline\\ttab\"\n"
      "c: 'it''s # here'\n"
      "d: ''\n"
      "e: \"\"\n"
      "f: 'no \\n escapes'\n"
      "g: \"caf\xC3\xA9\"\n");
  EXPECT_EQ(Scalar(tree, "a"), "x # not a comment");
  EXPECT_EQ(Scalar(tree, "b"), "q\"uote \\ back\nline\ttab");
  EXPECT_EQ(Scalar(tree, "c"), "it's # here");
  EXPECT_EQ(Scalar(tree, "d"), "");
  EXPECT_EQ(Scalar(tree, "e"), "");
  EXPECT_EQ(Scalar(tree, "f"), "no \\n escapes");
  EXPECT_EQ(Scalar(tree, "g"), "caf\xC3\xA9");
}

TEST(ConfigTreeParseTest, FlowAndBlockLists) {
  const ConfigTree tree = MustParse(
      "steps: [1, 2, 5]  # comment\n"
      "empty: []\n"
      "spaced: [ a b ,  'c, d' , \"e]\" ]\n"
      "block:\n"
      "  - 1\n"
      "  - \"two\"   # comment\n"
      "  - three four\n"
      "compact:\n"
      "- x\n"
      "- y\n"
      "after: 1\n");
  EXPECT_EQ(List(tree, "steps"), (std::vector<std::string>{"1", "2", "5"}));
  EXPECT_EQ(List(tree, "empty"), std::vector<std::string>{});
  EXPECT_EQ(List(tree, "spaced"), (std::vector<std::string>{"a b", "c, d", "e]"}));
  EXPECT_EQ(List(tree, "block"), (std::vector<std::string>{"1", "two", "three four"}));
  EXPECT_EQ(List(tree, "compact"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(Scalar(tree, "after"), "1");
  EXPECT_EQ(tree.Find("block")->line, 4);
}

TEST(ConfigTreeParseTest, CrLfByteOrderMarkAndEmptyInput) {
  const ConfigTree tree = MustParse(
      "\xEF\xBB\xBF"
      "a: 1\r\nb:\r\n  c: 'x'\r\n");
  EXPECT_EQ(tree.Keys(), (std::vector<std::string>{"a", "b.c"}));
  EXPECT_EQ(Scalar(tree, "b.c"), "x");
  EXPECT_TRUE(MustParse("").Keys().empty());
  EXPECT_TRUE(MustParse("# only a comment\n\n").Keys().empty());
}

struct Rejected {
  const char* text;
  const char* message;  // the full error message
};

// What a tree of dotted keys cannot hold is refused by name and line.
TEST(ConfigTreeParseTest, RejectsWhatTheTreeCannotHold) {
  const Rejected cases[] = {
      {"a: [1, {b: 1}]\n", "cfg.yaml:1: a: lists hold only scalars (no nested lists or mappings)"},
      {"a: [1, [2]]\n", "cfg.yaml:1: a: lists hold only scalars (no nested lists or mappings)"},
      {"a:\n  - [1]\n", "cfg.yaml:2: a: lists hold only scalars (no nested lists or mappings)"},
      {"a:\n  - b: 1\n", "cfg.yaml:2: a: lists hold only scalars (no nested lists or mappings)"},
      {"a: [1,, 2]\n", "cfg.yaml:1: a: empty list item"},
      {"a:\n  -\n", "cfg.yaml:2: a: empty list item"},
      {"a: [~]\n", "cfg.yaml:1: a: empty list item"},
      {"a: ~\n", "cfg.yaml:1: 'a' has no value (write \"\" for an empty string)"},
      {"a: null\n", "cfg.yaml:1: 'a' has no value (write \"\" for an empty string)"},
      {"a:\nb: 1\n", "cfg.yaml:1: 'a' has no value (write \"\" for an empty string)"},
      {"a:\n  b:\n", "cfg.yaml:2: 'a.b' has no value (write \"\" for an empty string)"},
      {"a:   # just a comment\n", "cfg.yaml:1: 'a' has no value (write \"\" for an empty string)"},
      {"a: {}\n", "cfg.yaml:1: 'a' has no value (write \"\" for an empty string)"},
      {"a: 1\nb: 2\na: 3\n", "cfg.yaml:3: duplicate key 'a' (first at line 1)"},
      {"s:\n  x: 1\nt: 1\ns:\n  y: 2\n", "cfg.yaml:4: duplicate key 's' (first at line 1)"},
      {"s:\n  x: 1\n  x: 2\n", "cfg.yaml:3: duplicate key 's.x' (first at line 2)"},
      {"a.b: 1\n", "cfg.yaml:1: keys are names of letters, digits, '_' and '-'"},
      {"<<: {a: 1}\n", "cfg.yaml:1: keys are names of letters, digits, '_' and '-'"},
      {"[a]: 1\n", "cfg.yaml:1: keys are names of letters, digits, '_' and '-'"},
      {"- 1\n", "cfg.yaml:1: the file must be a mapping of 'key: value' lines"},
      {"just text\n", "cfg.yaml:1: the file must be a mapping of 'key: value' lines"},
      {"a: 1\n---\nb: 2\n", "cfg.yaml:2: more than one document"},
      {"# c\n,\na: 1\n", "cfg.yaml:2: the file must be a mapping of 'key: value' lines"},
      {"a: &x {b: *x}\n", "cfg.yaml:1: sections nested deeper than 32 levels"},
  };
  for (const Rejected& c : cases) EXPECT_EQ(ParseError(c.text), c.message) << c.text;
}

// What is not YAML at all is refused with yaml-cpp's reason, at the line where it found it.
TEST(ConfigTreeParseTest, SyntaxErrorsNameTheLine) {
  const Rejected cases[] = {
      {"a:\n\tb: 1\n", "cfg.yaml:2: "},
      {"a: [1, 2\n", "cfg.yaml:2: "},
      {"a: [1 2] x\n", "cfg.yaml:1: "},
      {"a: b: c\n", "cfg.yaml:1: "},
      {"a: - b\n", "cfg.yaml:1: "},
      {"a: \"x\" y\n", "cfg.yaml:1: "},
      {"a: @x\n", "cfg.yaml:1: "},
      {"a:\n    b: 1\n  c: 2\n", "cfg.yaml:3: "},
      {"a:\n  b: 1\n  - 2\n", "cfg.yaml:3: "},
  };
  for (const Rejected& c : cases) {
    const std::string error = ParseError(c.text);
    EXPECT_EQ(error.substr(0, std::strlen(c.message)), c.message) << c.text << " -> " << error;
    EXPECT_GT(error.size(), std::strlen(c.message)) << c.text;
  }
}

// The rest of YAML reads as YAML says.
TEST(ConfigTreeParseTest, AcceptsTheRestOfYaml) {
  const ConfigTree tree = MustParse(
      "---\n"
      "base: &lr 0.001\n"
      "train:\n"
      "  lr: *lr\n"
      "  name: !!str 12\n"
      "  note: |\n"
      "    two\n"
      "    lines\n"
      "  folded: >-\n"
      "    one\n"
      "    line\n"
      "  escaped: \"\\x41\\u00e9\"\n"
      "model: {dim: 64, steps: [1, 2]}\n"
      "\"quoted\": 1\n");
  EXPECT_EQ(tree.Keys(), (std::vector<std::string>{"base", "train.lr", "train.name", "train.note",
                                                   "train.folded", "train.escaped", "model.dim",
                                                   "model.steps", "quoted"}));
  EXPECT_EQ(Scalar(tree, "train.lr"), "0.001");
  EXPECT_EQ(Scalar(tree, "train.name"), "12");
  EXPECT_EQ(Scalar(tree, "train.note"), "two\nlines\n");
  EXPECT_EQ(Scalar(tree, "train.folded"), "one line");
  EXPECT_EQ(Scalar(tree, "train.escaped"), "A\xC3\xA9");
  EXPECT_EQ(List(tree, "model.steps"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(tree.Find("train.note")->line, 6);
}

// Garbage never crashes or throws: every prefix of a valid file, and random bytes.
TEST(ConfigTreeParseTest, GarbageIsAnErrorNotACrash) {
  const std::string valid =
      "a:\n  b: 'x''y'  # c\n  l: [1, \"2\\\"\", 'a,b']\n  m:\n  - 1\n  -  two\nz: \"e\\n\"\n";
  ASSERT_TRUE(ConfigTree::Parse(valid, "f").ok());
  for (size_t n = 0; n <= valid.size(); ++n) (void)ConfigTree::Parse(valid.substr(0, n), "f");
  uint64_t state = 42;
  const std::string alphabet = " \t\n\r:#-[]{},'\"\\ab1.&*!|>~\xC3";
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    for (int k = 0; k < 40; ++k) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      text.push_back(alphabet[(state >> 33) % alphabet.size()]);
    }
    (void)ConfigTree::Parse(text, "f");
    ConfigTree tree;
    (void)tree.Set(text);
  }
}

TEST(ConfigTreeParseTest, ErrorsAreInvalidArgument) {
  EXPECT_EQ(ConfigTree::Parse("a: [1, [2]]\n", "f").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConfigTree::Parse("a: [1, 2\n", "f").status().code(),
            absl::StatusCode::kInvalidArgument);
  // yaml-cpp 0.7's LoadAll never returns on these; the tree must answer.
  EXPECT_EQ(ConfigTree::Parse(",", "f").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConfigTree::Parse(",\"[{.{\"\n-\t,[\nb1]}\n", "f").status().code(),
            absl::StatusCode::kInvalidArgument);
}

class ConfigTreeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "config_tree_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(ConfigTreeFileTest, LoadFile) {
  const std::string path = dir_ + "/config.yaml";
  std::ofstream(path) << "train:\n  steps: 7\n  bad: [1, [2]]\n";
  auto tree = ConfigTree::LoadFile(path);
  ASSERT_FALSE(tree.ok());
  EXPECT_EQ(tree.status().message(),
            path + ":3: train.bad: lists hold only scalars (no nested lists or mappings)");

  std::ofstream(path, std::ios::trunc) << "train:\n  steps: 7\n";
  tree = ConfigTree::LoadFile(path);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->source_name(), path);
  int64_t steps = 0;
  ASSERT_TRUE(tree->Get("train.steps", &steps).ok());
  EXPECT_EQ(steps, 7);

  const auto missing = ConfigTree::LoadFile(dir_ + "/nope.yaml");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "config file '" + dir_ + "/nope.yaml' does not exist");
  EXPECT_FALSE(ConfigTree::LoadFile(dir_).ok());  // a directory
}

TEST(ConfigTreeGetTest, TypedReadersConvertValues) {
  ConfigTree tree = MustParse(
      "i: -42\n"
      "plus: +7\n"
      "big: 9223372036854775807\n"
      "d: 2.5e-3\n"
      "dint: 3\n"
      "inf: -.inf\n"
      "nan: .nan\n"
      "t: true\n"
      "f: false\n"
      "s: hello world\n"
      "num_as_string: 123\n"
      "li: [1, -2, 3]\n"
      "ld: [0.5, 1e3, .inf]\n"
      "ls: [a, 'b c']\n");
  int64_t i = 0, plus = 0, big = 0;
  int small = 0;
  double d = 0, dint = 0, inf = 0, nan = 0;
  bool t = false, f = true;
  std::string s, num_as_string;
  std::vector<int64_t> li;
  std::vector<double> ld;
  std::vector<std::string> ls;
  ASSERT_TRUE(tree.Get("i", &i).ok());
  ASSERT_TRUE(tree.Get("i", &small).ok());
  ASSERT_TRUE(tree.Get("plus", &plus).ok());
  ASSERT_TRUE(tree.Get("big", &big).ok());
  ASSERT_TRUE(tree.Get("d", &d).ok());
  ASSERT_TRUE(tree.Get("dint", &dint).ok());
  ASSERT_TRUE(tree.Get("inf", &inf).ok());
  ASSERT_TRUE(tree.Get("nan", &nan).ok());
  ASSERT_TRUE(tree.Get("t", &t).ok());
  ASSERT_TRUE(tree.Get("f", &f).ok());
  ASSERT_TRUE(tree.Get("s", &s).ok());
  ASSERT_TRUE(tree.Get("num_as_string", &num_as_string).ok());
  ASSERT_TRUE(tree.Get("li", &li).ok());
  ASSERT_TRUE(tree.Get("ld", &ld).ok());
  ASSERT_TRUE(tree.Get("ls", &ls).ok());
  EXPECT_EQ(i, -42);
  EXPECT_EQ(small, -42);
  EXPECT_EQ(plus, 7);
  EXPECT_EQ(big, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(d, 2.5e-3);
  EXPECT_EQ(dint, 3.0);
  EXPECT_EQ(inf, -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(nan));
  EXPECT_TRUE(t);
  EXPECT_FALSE(f);
  EXPECT_EQ(s, "hello world");
  EXPECT_EQ(num_as_string, "123");
  EXPECT_EQ(li, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(ld, (std::vector<double>{0.5, 1000, std::numeric_limits<double>::infinity()}));
  EXPECT_EQ(ls, (std::vector<std::string>{"a", "b c"}));
  EXPECT_TRUE(tree.CheckAllConsumed().ok()) << tree.CheckAllConsumed();
}

TEST(ConfigTreeGetTest, AbsentKeyLeavesDefault) {
  ConfigTree tree = MustParse("a: 1\n");
  int64_t i = 17;
  double d = 0.5;
  std::string s = "default";
  std::vector<int64_t> v = {1, 2};
  EXPECT_TRUE(tree.Get("x", &i).ok());
  EXPECT_TRUE(tree.Get("x", &d).ok());
  EXPECT_TRUE(tree.Get("x", &s).ok());
  EXPECT_TRUE(tree.Get("x", &v).ok());
  EXPECT_EQ(i, 17);
  EXPECT_EQ(d, 0.5);
  EXPECT_EQ(s, "default");
  EXPECT_EQ(v, (std::vector<int64_t>{1, 2}));
}

TEST(ConfigTreeGetTest, TypeErrorsNameKeyValueAndLine) {
  ConfigTree tree = MustParse(
      "train:\n"
      "  lr: abc\n"
      "  steps: 1.5\n"
      "  huge: 9223372036854775808\n"
      "  flag: yes\n"
      "  word: inf\n"
      "  hex: 0x10\n"
      "  list: [1, 2.5]\n"
      "  scalar: 5\n"
      "  int32: 3000000000\n");
  const auto error = [&](auto* out, std::string_view key) {
    const absl::Status s = tree.Get(key, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    return std::string(s.message());
  };
  double d = 1;
  int64_t i = 1;
  int small = 1;
  bool b = false;
  std::string str;
  std::vector<int64_t> li;
  EXPECT_EQ(error(&d, "train.lr"), "train.lr: expected a number, got 'abc' (cfg.yaml:2)");
  EXPECT_EQ(error(&i, "train.steps"), "train.steps: expected an integer, got '1.5' (cfg.yaml:3)");
  EXPECT_EQ(error(&i, "train.huge"),
            "train.huge: expected an integer, got '9223372036854775808' (cfg.yaml:4)");
  EXPECT_EQ(error(&b, "train.flag"), "train.flag: expected true or false, got 'yes' (cfg.yaml:5)");
  EXPECT_EQ(error(&d, "train.word"), "train.word: expected a number, got 'inf' (cfg.yaml:6)");
  EXPECT_EQ(error(&d, "train.hex"), "train.hex: expected a number, got '0x10' (cfg.yaml:7)");
  EXPECT_EQ(error(&i, "train.hex"), "train.hex: expected an integer, got '0x10' (cfg.yaml:7)");
  EXPECT_EQ(error(&li, "train.list"), "train.list[1]: expected an integer, got '2.5' (cfg.yaml:8)");
  EXPECT_EQ(error(&str, "train.list"), "train.list: expected a string, got a list (cfg.yaml:8)");
  EXPECT_EQ(error(&li, "train.scalar"), "train.scalar: expected a list, got '5' (cfg.yaml:9)");
  EXPECT_EQ(error(&small, "train.int32"),
            "train.int32: expected a 32-bit integer, got '3000000000' (cfg.yaml:10)");
  // Failed reads leave the output alone.
  EXPECT_EQ(d, 1);
  EXPECT_EQ(i, 1);
  EXPECT_TRUE(li.empty());
  for (const char* bad : {"", "+", "-", "+-1", "1e", "1.5.3", ".", "nan", "1_000", " 1"}) {
    ConfigTree t;
    ASSERT_TRUE(t.Put("x", std::string_view(bad)).ok());
    EXPECT_FALSE(t.Get("x", &d).ok()) << "'" << bad << "'";
    EXPECT_FALSE(t.Get("x", &i).ok()) << "'" << bad << "'";
  }
}

TEST(ConfigTreeSetTest, OverridesAddAndReject) {
  ConfigTree tree = MustParse("train:\n  max_steps: 10\n  lr: 0.1\nmodel:\n  steps: [1]\n");
  ASSERT_TRUE(tree.Set("train.max_steps=100").ok());
  ASSERT_TRUE(tree.Set("model.steps=[1, 2, 5]").ok());
  ASSERT_TRUE(tree.Set(" train.name = 'my run' # comment").ok());
  ASSERT_TRUE(tree.Set("train.opt.beta=0.9").ok());
  EXPECT_EQ(tree.Keys(), (std::vector<std::string>{"train.max_steps", "train.lr", "model.steps",
                                                   "train.name", "train.opt.beta"}));
  EXPECT_EQ(tree.Find("train.max_steps")->line, 0);
  int64_t steps = 0;
  std::vector<int64_t> list;
  std::string name;
  ASSERT_TRUE(tree.Get("train.max_steps", &steps).ok());
  ASSERT_TRUE(tree.Get("model.steps", &list).ok());
  ASSERT_TRUE(tree.Get("train.name", &name).ok());
  EXPECT_EQ(steps, 100);
  EXPECT_EQ(list, (std::vector<int64_t>{1, 2, 5}));
  EXPECT_EQ(name, "my run");

  ASSERT_TRUE(tree.Set("train.lr=abc").ok());
  double lr = 0;
  EXPECT_EQ(tree.Get("train.lr", &lr).message(), "train.lr: expected a number, got 'abc' (--set)");

  const std::pair<const char*, const char*> bad[] = {
      {"train.max_steps", "--set train.max_steps: expected key=value"},
      {"train.max_steps=", "--set train.max_steps=: empty value (write \"\" for an empty string)"},
      {"train=5",
       "--set train=5: 'train' is a section (it holds 'train.lr'), so it cannot take a value"},
      {"train.lr.x=5", "--set train.lr.x=5: 'train.lr' is a value, so it cannot hold 'train.lr.x'"},
      {"train..lr=5",
       "--set train..lr=5: invalid config key 'train..lr' (dot-separated names of letters, digits, "
       "'_' and '-')"},
      {"=5",
       "--set =5: invalid config key '' (dot-separated names of letters, digits, '_' and '-')"},
      {"a=[1", "--set a=[1: end of sequence flow not found"},
      {"a={b: 1}", "--set a={b: 1}: expected a scalar or a list"},
      {"a=[1, [2]]", "--set a=[1, [2]]: lists hold only scalars (no nested lists or mappings)"},
      {"a=~", "--set a=~: empty value (write \"\" for an empty string)"},
  };
  for (const auto& [assignment, message] : bad) EXPECT_EQ(tree.Set(assignment).message(), message);
  EXPECT_FALSE(tree.Has("a"));
}

TEST(ConfigTreeConsumedTest, ReportsEveryUnknownKeyWithSourceAndSuggestion) {
  ConfigTree tree = MustParse(
      "train:\n"
      "  max_steps: 10\n"
      "  max_stpes: 20\n"
      "  lr: 0.1\n"
      "zzz: 1\n");
  ASSERT_TRUE(tree.Set("sampler.stpes=5").ok());
  int64_t steps = 0, sampler_steps = 0;
  double lr = 0;
  ASSERT_TRUE(tree.Get("train.max_steps", &steps).ok());
  ASSERT_TRUE(tree.Get("train.lr", &lr).ok());
  ASSERT_TRUE(
      tree.Get("sampler.steps", &sampler_steps).ok());  // absent in the tree; still a suggestion
  const absl::Status s = tree.CheckAllConsumed();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "unknown config key 'train.max_stpes' (cfg.yaml:3; did you mean 'train.max_steps'?); "
            "unknown config key 'zzz' (cfg.yaml:5); "
            "unknown config key 'sampler.stpes' (--set; did you mean 'sampler.steps'?)");
  int64_t unused = 0;
  ASSERT_TRUE(tree.Get("train.max_stpes", &unused).ok());
  ASSERT_TRUE(tree.Get("zzz", &unused).ok());
  ASSERT_TRUE(tree.Get("sampler.stpes", &unused).ok());
  EXPECT_TRUE(tree.CheckAllConsumed().ok());
}

TEST(ConfigTreeWriteTest, ToYamlGroupsSectionsAndQuotesOnlyWhenNeeded) {
  ConfigTree tree;
  ASSERT_TRUE(tree.Put("model.dim", 512).ok());
  ASSERT_TRUE(tree.Put("name", "run-1").ok());
  ASSERT_TRUE(tree.Put("model.steps", std::vector<int64_t>{1, 2, 5}).ok());
  ASSERT_TRUE(tree.Put("train.opt.lr", 0.0003).ok());
  ASSERT_TRUE(tree.Put("model.ema", true).ok());
  ASSERT_TRUE(tree.Put("train.tags", std::vector<std::string>{"a", "b c", "x, y", ""}).ok());
  ASSERT_TRUE(tree.Put("note", "a: b # c").ok());
  ASSERT_TRUE(tree.Put("train.opt.betas", std::vector<double>{0.9, 0.999}).ok());
  EXPECT_EQ(tree.ToYaml(),
            "model:\n"
            "  dim: 512\n"
            "  steps: [1, 2, 5]\n"
            "  ema: true\n"
            "name: run-1\n"
            "train:\n"
            "  opt:\n"
            "    lr: 3e-04\n"
            "    betas: [0.9, 0.999]\n"
            "  tags: [a, b c, \"x, y\", \"\"]\n"
            "note: \"a: b # c\"\n");
  EXPECT_EQ(tree.Put("model.dim.x", 1).message(),
            "'model.dim' is a value, so it cannot hold 'model.dim.x'");
  EXPECT_EQ(tree.Put("train", 1).message(),
            "'train' is a section (it holds 'train.opt.betas'), so it cannot take a value");
  ASSERT_TRUE(tree.Put("model.dim", 1024).ok());  // replaces in place
  EXPECT_EQ(tree.Keys().front(), "model.dim");
  EXPECT_EQ(Scalar(tree, "model.dim"), "1024");
}

TEST(ConfigTreeWriteTest, YamlValueTextReadsBackAsTheSameValue) {
  const auto text = [](std::string scalar, bool quote = false) {
    ConfigValue value;
    value.scalar = std::move(scalar);
    return YamlValueText(value, quote);
  };
  EXPECT_EQ(text("cpu"), "cpu");
  EXPECT_EQ(text("models/g2p", true), "\"models/g2p\"");
  EXPECT_EQ(text("a: b"), "\"a: b\"");
  ConfigValue list;
  list.is_list = true;
  list.list = {"1", "x, y", ""};
  EXPECT_EQ(YamlValueText(list), "[1, \"x, y\", \"\"]");
  for (const std::string& scalar :
       {std::string("q\"uote"), std::string("back\\slash"), std::string("new\nline"),
        std::string("cr\r"), std::string("null"), std::string("- x")}) {
    for (const bool quote : {false, true}) {
      auto tree = ConfigTree::Parse("k: " + text(scalar, quote) + "\n", "t");
      ASSERT_TRUE(tree.ok()) << tree.status() << " " << text(scalar, quote);
      EXPECT_EQ(Scalar(*tree, "k"), scalar) << text(scalar, quote);
    }
  }
}

TEST(ConfigTreeWriteTest, RoundTripIsExact) {
  const std::vector<std::string> strings = {"",
                                            " lead",
                                            "trail ",
                                            "a: b",
                                            "a:",
                                            "#x",
                                            "x #y",
                                            "x#y",
                                            "- x",
                                            "-",
                                            "-x",
                                            "~",
                                            "null",
                                            "true",
                                            "123",
                                            "[x]",
                                            "{x}",
                                            "a,b",
                                            "'s'",
                                            "\"d\"",
                                            "back\\slash",
                                            "new\nline",
                                            "tab\tin",
                                            "cr\r",
                                            "caf\xC3\xA9",
                                            "&a",
                                            "*a",
                                            "!t",
                                            "|",
                                            ">",
                                            "@",
                                            "`",
                                            "%",
                                            "?",
                                            "]",
                                            "}",
                                            ",",
                                            "http://x:1/y",
                                            "say \"hi\"",
                                            "ctl\x01",
                                            "...",
                                            "---"};
  const std::vector<double> doubles = {0.1,
                                       1.0 / 3,
                                       -0.0,
                                       1e-300,
                                       5e-324,
                                       std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::lowest(),
                                       1e21,
                                       123456789012345678.0,
                                       std::numeric_limits<double>::infinity(),
                                       -std::numeric_limits<double>::infinity()};
  const std::vector<int64_t> ints = {0, -1, std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max()};
  ConfigTree tree;
  for (size_t k = 0; k < strings.size(); ++k)
    ASSERT_TRUE(tree.Put("s.k" + std::to_string(k), strings[k]).ok());
  for (size_t k = 0; k < doubles.size(); ++k)
    ASSERT_TRUE(tree.Put("d.k" + std::to_string(k), doubles[k]).ok());
  for (size_t k = 0; k < ints.size(); ++k)
    ASSERT_TRUE(tree.Put("i.k" + std::to_string(k), ints[k]).ok());
  ASSERT_TRUE(tree.Put("lists.s", strings).ok());
  ASSERT_TRUE(tree.Put("lists.d", doubles).ok());
  ASSERT_TRUE(tree.Put("lists.i", ints).ok());
  ASSERT_TRUE(tree.Put("lists.empty", std::vector<std::string>{}).ok());
  ASSERT_TRUE(tree.Put("nan", std::numeric_limits<double>::quiet_NaN()).ok());

  const std::string yaml = tree.ToYaml();
  auto reread = ConfigTree::Parse(yaml, "checkpoint");
  ASSERT_TRUE(reread.ok()) << reread.status() << "\n" << yaml;
  EXPECT_EQ(reread->Keys(), tree.Keys());
  for (size_t k = 0; k < strings.size(); ++k) {
    std::string s;
    ASSERT_TRUE(reread->Get("s.k" + std::to_string(k), &s).ok());
    EXPECT_EQ(s, strings[k]);
  }
  for (size_t k = 0; k < doubles.size(); ++k) {
    double d = 0;
    ASSERT_TRUE(reread->Get("d.k" + std::to_string(k), &d).ok());
    EXPECT_EQ(std::memcmp(&d, &doubles[k], sizeof(d)), 0)
        << doubles[k];  // bit-exact, -0.0 included
  }
  for (size_t k = 0; k < ints.size(); ++k) {
    int64_t i = 0;
    ASSERT_TRUE(reread->Get("i.k" + std::to_string(k), &i).ok());
    EXPECT_EQ(i, ints[k]);
  }
  std::vector<std::string> ls;
  std::vector<double> ld;
  std::vector<int64_t> li;
  double nan = 0;
  ASSERT_TRUE(reread->Get("lists.s", &ls).ok());
  ASSERT_TRUE(reread->Get("lists.d", &ld).ok());
  ASSERT_TRUE(reread->Get("lists.i", &li).ok());
  ASSERT_TRUE(reread->Get("nan", &nan).ok());
  EXPECT_EQ(ls, strings);
  EXPECT_EQ(ld, doubles);
  EXPECT_EQ(li, ints);
  EXPECT_TRUE(std::isnan(nan));
  EXPECT_EQ(reread->Find("lists.empty")->list.size(), 0u);
  EXPECT_EQ(reread->ToYaml(), yaml);  // and writing again is stable
}

TEST(ConfigTreeWriteTest, ParsedFileSurvivesToYaml) {
  const ConfigTree tree = MustParse(
      "a:\n  b: 'x y'   # c\n  l:\n    - 1\n    - two\nz: \"q\\\"\"\nm:\n  n:\n    o: [a, "
      "'b,c']\n");
  auto reread = ConfigTree::Parse(tree.ToYaml(), "again");
  ASSERT_TRUE(reread.ok()) << reread.status();
  EXPECT_EQ(reread->Keys(), tree.Keys());
  for (const std::string& key : tree.Keys()) {
    EXPECT_EQ(reread->Find(key)->is_list, tree.Find(key)->is_list) << key;
    EXPECT_EQ(reread->Find(key)->scalar, tree.Find(key)->scalar) << key;
    EXPECT_EQ(reread->Find(key)->list, tree.Find(key)->list) << key;
  }
}

}  // namespace
}  // namespace fastdiss
