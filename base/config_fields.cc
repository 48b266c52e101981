#include "base/config_fields.h"

#include <sstream>
#include <type_traits>

namespace fastdiss {

absl::Status ReadFields(ConfigTree& tree, const ConfigFields& fields) {
  for (const ConfigField& field : fields) {
    FASTDISS_RETURN_IF_ERROR(
        std::visit([&](auto* target) { return tree.Get(field.key, target); }, field.target));
  }
  return absl::OkStatus();
}

absl::Status WriteFields(const ConfigFields& fields, ConfigTree* tree) {
  for (const ConfigField& field : fields) {
    FASTDISS_RETURN_IF_ERROR(std::visit(
        [&](auto* target) -> absl::Status {
          using T = std::remove_pointer_t<decltype(target)>;
          if constexpr (std::is_same_v<T, int>) {
            return tree->Put(field.key, static_cast<int64_t>(*target));
          } else {
            return tree->Put(field.key, *target);
          }
        },
        field.target));
  }
  return absl::OkStatus();
}

namespace {

// The value as it would be written in a config file; strings double-quoted.
std::string FormatValue(const ConfigField& field) {
  ConfigTree one;
  if (!WriteFields({field}, &one).ok()) return "?";
  const ConfigValue* value = one.Find(field.key);
  if (value == nullptr) return "?";
  return YamlValueText(*value, std::holds_alternative<std::string*>(field.target));
}

}  // namespace

std::string DescribeFields(const ConfigFields& fields) {
  std::ostringstream out;
  std::string section;
  for (const ConfigField& field : fields) {
    const size_t dot = field.key.find('.');
    const std::string head = dot == std::string::npos ? "" : field.key.substr(0, dot);
    const std::string name = dot == std::string::npos ? field.key : field.key.substr(dot + 1);
    if (head != section) {
      if (!section.empty()) out << "\n";
      section = head;
      if (!head.empty()) out << head << ":\n";
    }
    const std::string indent = head.empty() ? "" : "  ";
    out << indent << "# " << field.help << "\n"
        << indent << name << ": " << FormatValue(field) << "\n";
  }
  return out.str();
}

}  // namespace fastdiss
