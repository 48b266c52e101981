#include "model/config_fields.h"

#include <sstream>
#include <type_traits>

namespace fastdiss {

Status ReadFields(ConfigTree& tree, const ConfigFields& fields) {
  for (const ConfigField& field : fields) {
    FASTDISS_RETURN_IF_ERROR(
        std::visit([&](auto* target) { return tree.Get(field.key, target); }, field.target));
  }
  return OkStatus();
}

Status WriteFields(const ConfigFields& fields, ConfigTree* tree) {
  for (const ConfigField& field : fields) {
    FASTDISS_RETURN_IF_ERROR(std::visit(
        [&](auto* target) -> Status {
          using T = std::remove_pointer_t<decltype(target)>;
          if constexpr (std::is_same_v<T, int>) {
            return tree->Put(field.key, static_cast<int64_t>(*target));
          } else {
            return tree->Put(field.key, *target);
          }
        },
        field.target));
  }
  return OkStatus();
}

std::string DescribeFields(const ConfigFields& fields) {
  std::ostringstream out;
  for (const ConfigField& field : fields) {
    ConfigTree one;
    std::string value = "?";
    if (WriteFields({field}, &one).ok()) {
      const ConfigValue* v = one.Find(field.key);
      if (v && !v->is_list) value = v->scalar.empty() ? "\"\"" : v->scalar;
      if (v && v->is_list) {
        value = "[";
        for (size_t i = 0; i < v->list.size(); ++i) value += (i ? ", " : "") + v->list[i];
        value += "]";
      }
    }
    out << "  " << field.key << " = " << value << "\n      " << field.help << "\n";
  }
  return out.str();
}

}  // namespace fastdiss
