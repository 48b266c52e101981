// Binds the fields of a config struct to dotted keys, so one list per struct drives reading it
// from a ConfigTree (YAML + --set), writing it back (checkpoints, run metadata) and documenting
// it (--help, configs/*.yaml). Defaults live in the struct itself.
#ifndef FASTDISS_BASE_CONFIG_FIELDS_H_
#define FASTDISS_BASE_CONFIG_FIELDS_H_

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "base/config_tree.h"
#include "base/status.h"

namespace fastdiss {

struct ConfigField {
  std::string key;   // "train.max_steps"
  std::string help;  // one line
  std::variant<int*, int64_t*, double*, bool*, std::string*, std::vector<int64_t>*,
               std::vector<double>*, std::vector<std::string>*>
      target;
};
using ConfigFields = std::vector<ConfigField>;

// Reads every field present in the tree; absent keys keep the struct's value.
absl::Status ReadFields(ConfigTree& tree, const ConfigFields& fields);
// Puts every field's current value into the tree.
absl::Status WriteFields(const ConfigFields& fields, ConfigTree* tree);
// The fields' current values as a config file with each key's help as a comment above it
// (sections from the first part of the dotted key). Parses back into the same values.
std::string DescribeFields(const ConfigFields& fields);

}  // namespace fastdiss

#endif  // FASTDISS_BASE_CONFIG_FIELDS_H_
