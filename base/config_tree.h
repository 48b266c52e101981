// ConfigTree: the project's config files, YAML read by yaml-cpp into a flat tree of dotted keys.
//
// The tree maps dotted keys ("train.max_steps") to a scalar or a list of scalars, in file order:
// nested mappings become sections, and YAML's anchors, aliases, tags, quoting and multi-line
// strings read as YAML says. What such a tree cannot hold is rejected with "<file>:<line>: <why>":
// null or empty values, nested lists or mappings inside lists, duplicate keys, keys other than
// [A-Za-z0-9_-] names, a top level that is not a mapping, more than one document; and so is
// anything yaml-cpp cannot parse. So a file either means what it says or fails to load.
//
// Config structs pull their fields with the typed Get() overloads, which keep the struct's
// default when the key is absent and name key, value and source line on a type error;
// CheckAllConsumed() then rejects every key nobody read (typos). Set() applies "--set" overrides;
// Put() and ToYaml() write a tree back out (checkpoints store their config this way), and
// Parse(ToYaml()) gives the same keys and values. Not thread-safe.
#ifndef FASTDISS_BASE_CONFIG_TREE_H_
#define FASTDISS_BASE_CONFIG_TREE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace fastdiss {

struct ConfigValue {
  bool is_list = false;
  std::string scalar;             // when !is_list: the scalar's text, quotes and escapes resolved
  std::vector<std::string> list;  // when is_list
  int line = 0;                   // 1-based line in the source; 0 when it came from Set() or Put()
};

// A value as YAML text that reads back as the same value (yaml-cpp's emitter, as ToYaml writes
// it): a scalar quoted only where needed, or a flow list. `quote_scalar` double-quotes a scalar
// whatever it holds, for strings that should look like strings.
std::string YamlValueText(const ConfigValue& value, bool quote_scalar = false);

class ConfigTree {
 public:
  static absl::StatusOr<ConfigTree> Parse(std::string_view text, std::string_view source_name);
  static absl::StatusOr<ConfigTree> LoadFile(const std::string& path);

  // Applies one "--set" override, "train.max_steps=100" or "model.steps=[1, 2, 5]"; the value is
  // YAML, read like a value in the file. The key may be new (CheckAllConsumed judges it later) but
  // may not turn a section into a value or a value into a section.
  absl::Status Set(std::string_view assignment);

  // Typed readers. Each marks `key` as consumed. Absent key: OK, *out untouched. Present with the
  // wrong type: INVALID_ARGUMENT, e.g. "train.lr: expected a number, got 'abc' (config.yaml:7)".
  // Integers are decimal; numbers also take exponents and .inf/-.inf/.nan; bools are true/false.
  absl::Status Get(std::string_view key, int64_t* out);
  absl::Status Get(std::string_view key, int* out);
  absl::Status Get(std::string_view key, double* out);
  absl::Status Get(std::string_view key, bool* out);
  absl::Status Get(std::string_view key, std::string* out);
  absl::Status Get(std::string_view key, std::vector<int64_t>* out);
  absl::Status Get(std::string_view key, std::vector<double>* out);
  absl::Status Get(std::string_view key, std::vector<std::string>* out);

  // INVALID_ARGUMENT listing every key no Get() consumed, with its source and, where one is close,
  // the requested key it was probably meant to be:
  // "unknown config key 'train.max_stpes' (config.yaml:12; did you mean 'train.max_steps'?)".
  absl::Status CheckAllConsumed() const;

  // Writers, for building a tree to save. A new key goes last; an existing one keeps its place.
  absl::Status Put(std::string_view key, int64_t value);
  absl::Status Put(std::string_view key, int value) {
    return Put(key, static_cast<int64_t>(value));
  }
  absl::Status Put(std::string_view key, double value);
  absl::Status Put(std::string_view key, bool value);
  absl::Status Put(std::string_view key, std::string_view value);
  absl::Status Put(std::string_view key, const char* value) {
    return Put(key, std::string_view(value));
  }
  absl::Status Put(std::string_view key, const std::vector<int64_t>& value);
  absl::Status Put(std::string_view key, const std::vector<double>& value);
  absl::Status Put(std::string_view key, const std::vector<std::string>& value);

  // The tree as YAML (yaml-cpp's emitter): each section's keys written together, in
  // first-appearance order (so a reread tree's Keys() lists them grouped); strings quoted only
  // where needed; lists in flow style; numbers as Put() formatted them (doubles in the shortest
  // form that reads back bit-exact, non-finite as .inf/-.inf/.nan).
  std::string ToYaml() const;

  std::vector<std::string> Keys() const;  // in file order, then Set()/Put() order
  bool Has(std::string_view key) const;
  const ConfigValue* Find(std::string_view key) const;  // nullptr when absent
  const std::string& source_name() const { return source_name_; }

 private:
  struct Entry {
    std::string key;
    ConfigValue value;
    bool consumed = false;
  };

  // Stores `value` under `key` after checking it against the tree's shape. `replace` allows
  // overwriting an existing value (Set/Put); the parser passes false to catch duplicate keys.
  absl::Status Store(std::string_view key, ConfigValue value, bool replace);
  // Marks `key` requested and consumed; nullptr when absent.
  const ConfigValue* Consume(std::string_view key);
  // "config.yaml:12", or "--set" for values without a line.
  std::string Where(const ConfigValue& value) const;
  template <typename T>
  absl::Status GetScalar(std::string_view key, T* out, const char* expected,
                         bool (*parse)(std::string_view, T*));
  template <typename T>
  absl::Status GetList(std::string_view key, std::vector<T>* out, const char* expected,
                       bool (*parse)(std::string_view, T*));

  std::string source_name_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> index_;  // key -> position in entries_
  std::set<std::string, std::less<>> requested_;      // every key a Get() asked for
};

}  // namespace fastdiss

#endif  // FASTDISS_BASE_CONFIG_TREE_H_
