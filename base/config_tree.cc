#include "base/config_tree.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "base/number_text.h"

namespace fastdiss {
namespace {

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool ValidKeySegment(std::string_view s) {
  return !s.empty() && s[0] != '-' && std::all_of(s.begin(), s.end(), IsKeyChar);
}

bool ValidDottedKey(std::string_view key) {
  for (size_t start = 0;;) {
    const size_t dot = key.find('.', start);
    if (!ValidKeySegment(key.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// 1-based line of a node in its text.
int LineOf(const YAML::Node& node) { return node.Mark().line + 1; }

// A value node as the tree holds it: a scalar, or a list of scalars. The message says why not,
// without a location (callers add it).
absl::StatusOr<ConfigValue> ToConfigValue(const YAML::Node& node) {
  ConfigValue value;
  value.line = LineOf(node);
  if (node.IsScalar()) {
    value.scalar = node.Scalar();
    return value;
  }
  if (node.IsSequence()) {
    value.is_list = true;
    for (const YAML::Node& item : node) {
      if (item.IsNull()) return absl::InvalidArgumentError("empty list item");
      if (!item.IsScalar())
        return absl::InvalidArgumentError("lists hold only scalars (no nested lists or mappings)");
      value.list.push_back(item.Scalar());
    }
    return value;
  }
  if (node.IsNull()) return absl::InvalidArgumentError("no value (write \"\" for an empty string)");
  return absl::InvalidArgumentError("expected a scalar or a list");
}

// Where a text's YAML content lines are: the first (0 when there is none) and the first "---"
// after content, which starts a second document (0 when there is none).
struct ContentLines {
  int first = 0;
  int second_document = 0;
};

ContentLines FindContentLines(std::string_view text) {
  ContentLines lines;
  int number = 0;
  for (size_t start = 0; start < text.size() && lines.second_document == 0;) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++number;
    const bool marker = line.substr(0, 3) == "---" &&
                        (line.size() == 3 || std::isspace(static_cast<unsigned char>(line[3])));
    if (marker && lines.first > 0) lines.second_document = number;
    const size_t first = line.find_first_not_of(" \t\r");
    if (marker || first == std::string_view::npos || line[first] == '#' || line[0] == '%') continue;
    if (lines.first == 0) lines.first = number;
  }
  return lines;
}

// The one document of `text` (a null node when it has only comments). yaml-cpp's parse errors
// become INVALID_ARGUMENT at "<source>:<line>" (no location when `source` is empty). YAML::Load,
// not LoadAll: yaml-cpp 0.7's LoadAll never returns on some malformed input (a lone ","), Load
// does.
absl::StatusOr<YAML::Node> LoadDocument(std::string_view text, std::string_view source) {
  const auto error = [&](int line, const std::string& message) {
    if (source.empty()) return absl::InvalidArgumentError(message);
    return absl::InvalidArgumentError(std::string(source) + ":" + std::to_string(line) + ": " +
                                      message);
  };
  const ContentLines lines = FindContentLines(text);
  if (lines.second_document > 0) return error(lines.second_document, "more than one document");
  YAML::Node document;
  try {
    document = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return error(e.mark.line + 1, e.msg);
  }
  return document;
}

// ---- Scalar conversions for Get() and Put(). ----

bool ParseBool(std::string_view s, bool* out) {
  if (s != "true" && s != "false") return false;
  *out = s == "true";
  return true;
}

bool ParseString(std::string_view s, std::string* out) {
  *out = std::string(s);
  return true;
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest text that reads back exactly
  return std::string(buf, r.ptr);
}

// Optimal string alignment distance (a transposition counts as one edit).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// yaml-cpp's emitter writes a carriage return or other control character into a plain scalar,
// where it does not read back; such strings go double-quoted, with escapes.
void EmitString(const std::string& text, YAML::Emitter* out, bool quote = false) {
  const bool control = std::any_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (control || quote) *out << YAML::DoubleQuoted;
  *out << text;
}

void EmitValue(const ConfigValue& value, YAML::Emitter* out, bool quote_scalar = false) {
  if (!value.is_list) return EmitString(value.scalar, out, quote_scalar);
  *out << YAML::Flow << YAML::BeginSeq;
  for (const std::string& item : value.list) EmitString(item, out);
  *out << YAML::EndSeq;
}

// Writes the entries below `prefix` (entries_[begin, end) all start with it) as one mapping,
// each section's keys together in first-appearance order.
template <typename Entry>
void EmitSection(const std::vector<Entry>& entries, const std::string& prefix, YAML::Emitter* out) {
  std::vector<std::string> names;  // this level's keys and sections, in first-appearance order
  for (const Entry& entry : entries) {
    if (entry.key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string name =
        entry.key.substr(prefix.size(), entry.key.find('.', prefix.size()) - prefix.size());
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  *out << YAML::BeginMap;
  for (const std::string& name : names) {
    *out << YAML::Key << name << YAML::Value;
    const auto value = std::find_if(entries.begin(), entries.end(),
                                    [&](const Entry& entry) { return entry.key == prefix + name; });
    if (value == entries.end()) {
      EmitSection(entries, prefix + name + ".", out);
    } else {
      EmitValue(value->value, out);
    }
  }
  *out << YAML::EndMap;
}

}  // namespace

std::string YamlValueText(const ConfigValue& value, bool quote_scalar) {
  YAML::Emitter out;
  EmitValue(value, &out, quote_scalar);
  return out.c_str();
}

absl::StatusOr<ConfigTree> ConfigTree::Parse(std::string_view text, std::string_view source_name) {
  const auto error = [&](int line, const std::string& message) {
    return absl::InvalidArgumentError(std::string(source_name) + ":" + std::to_string(line) + ": " +
                                      message);
  };
  FASTDISS_ASSIGN_OR_RETURN(const YAML::Node root, LoadDocument(text, source_name));
  ConfigTree tree;
  tree.source_name_ = std::string(source_name);
  // yaml-cpp reads some malformed text (a leading ",") as no document at all, like a file of
  // comments: only the latter is an empty config.
  const int first_content = FindContentLines(text).first;
  if (root.IsNull() && first_content == 0) return tree;
  if (!root.IsMap()) {
    return error(root.IsNull() ? first_content : LineOf(root),
                 "the file must be a mapping of 'key: value' lines");
  }
  // Depth-first over the mappings, so keys keep their file order.
  std::map<std::string, int> seen;  // every key and section -> line, for duplicates
  std::vector<std::pair<std::string, ConfigValue>> entries;
  // Nesting is bounded: an alias may name a mapping that holds it, which would never end.
  constexpr int kMaxDepth = 32;
  const std::function<absl::Status(const YAML::Node&, const std::string&, int)> read_mapping =
      [&](const YAML::Node& mapping, const std::string& prefix, int depth) -> absl::Status {
    if (depth > kMaxDepth) {
      return error(LineOf(mapping),
                   "sections nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    for (const auto& pair : mapping) {
      const int line = LineOf(pair.first);
      if (!pair.first.IsScalar() || !ValidKeySegment(pair.first.Scalar())) {
        return error(line, "keys are names of letters, digits, '_' and '-'");
      }
      const std::string key = prefix + pair.first.Scalar();
      const auto [first, inserted] = seen.emplace(key, line);
      if (!inserted)
        return error(line, "duplicate key '" + key + "' (first at line " +
                               std::to_string(first->second) + ")");
      if (pair.second.IsMap()) {
        if (pair.second.size() == 0)
          return error(line, "'" + key + "' has no value (write \"\" for an empty string)");
        FASTDISS_RETURN_IF_ERROR(read_mapping(pair.second, key + ".", depth + 1));
        continue;
      }
      if (pair.second.IsNull())
        return error(line, "'" + key + "' has no value (write \"\" for an empty string)");
      auto value = ToConfigValue(pair.second);
      if (!value.ok())
        return error(LineOf(pair.second), key + ": " + std::string(value.status().message()));
      value->line = line;
      entries.emplace_back(key, *std::move(value));
    }
    return absl::OkStatus();
  };
  FASTDISS_RETURN_IF_ERROR(read_mapping(root, "", 1));
  for (auto& [key, value] : entries)
    FASTDISS_RETURN_IF_ERROR(tree.Store(key, std::move(value), false));
  return tree;
}

absl::StatusOr<ConfigTree> ConfigTree::LoadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return absl::NotFoundError("config file '" + path + "' does not exist");
    return absl::FailedPreconditionError("cannot open config file '" + path +
                                         "': " + std::strerror(errno));
  }
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  const bool failed = std::ferror(f);
  std::fclose(f);
  if (failed) return absl::FailedPreconditionError("cannot read config file '" + path + "'");
  return Parse(text, path);
}

absl::Status ConfigTree::Set(std::string_view assignment) {
  const std::string context = "--set " + std::string(assignment) + ": ";
  const size_t eq = assignment.find('=');
  if (eq == std::string_view::npos)
    return absl::InvalidArgumentError(context + "expected key=value");
  const auto document = LoadDocument(assignment.substr(eq + 1), "");
  if (!document.ok())
    return absl::InvalidArgumentError(context + std::string(document.status().message()));
  if (document->IsNull())
    return absl::InvalidArgumentError(context + "empty value (write \"\" for an empty string)");
  auto value = ToConfigValue(*document);
  if (!value.ok())
    return absl::InvalidArgumentError(context + std::string(value.status().message()));
  value->line = 0;
  std::string_view key = assignment.substr(0, eq);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.remove_suffix(1);
  while (!key.empty() && std::isspace(static_cast<unsigned char>(key.front())))
    key.remove_prefix(1);
  const absl::Status stored = Store(key, *std::move(value), true);
  return stored.ok() ? stored : absl::InvalidArgumentError(context + std::string(stored.message()));
}

absl::Status ConfigTree::Store(std::string_view key, ConfigValue value, bool replace) {
  if (!ValidDottedKey(key)) {
    return absl::InvalidArgumentError("invalid config key '" + std::string(key) +
                                      "' (dot-separated names of letters, digits, '_' and '-')");
  }
  if (const auto it = index_.find(key); it != index_.end()) {
    if (!replace)
      return absl::InvalidArgumentError("duplicate config key '" + std::string(key) + "'");
    entries_[it->second].value = std::move(value);
    return absl::OkStatus();
  }
  const std::string section = std::string(key) + ".";
  if (const auto it = index_.lower_bound(section);
      it != index_.end() && it->first.compare(0, section.size(), section) == 0) {
    return absl::InvalidArgumentError("'" + std::string(key) + "' is a section (it holds '" +
                                      it->first + "'), so it cannot take a value");
  }
  for (size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
    if (index_.count(key.substr(0, dot)) > 0) {
      return absl::InvalidArgumentError("'" + std::string(key.substr(0, dot)) +
                                        "' is a value, so it cannot hold '" + std::string(key) +
                                        "'");
    }
  }
  index_.emplace(std::string(key), entries_.size());
  entries_.push_back({std::string(key), std::move(value), false});
  return absl::OkStatus();
}

const ConfigValue* ConfigTree::Consume(std::string_view key) {
  requested_.emplace(key);
  const auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  entries_[it->second].consumed = true;
  return &entries_[it->second].value;
}

std::string ConfigTree::Where(const ConfigValue& value) const {
  return value.line > 0 ? source_name_ + ":" + std::to_string(value.line) : "--set";
}

template <typename T>
absl::Status ConfigTree::GetScalar(std::string_view key, T* out, const char* expected,
                                   bool (*parse)(std::string_view, T*)) {
  const ConfigValue* value = Consume(key);
  if (value == nullptr) return absl::OkStatus();
  const std::string context = std::string(key) + ": expected " + expected + ", got ";
  if (value->is_list) return absl::InvalidArgumentError(context + "a list (" + Where(*value) + ")");
  T parsed{};
  if (!parse(value->scalar, &parsed)) {
    return absl::InvalidArgumentError(context + "'" + value->scalar + "' (" + Where(*value) + ")");
  }
  *out = std::move(parsed);
  return absl::OkStatus();
}

template <typename T>
absl::Status ConfigTree::GetList(std::string_view key, std::vector<T>* out, const char* expected,
                                 bool (*parse)(std::string_view, T*)) {
  const ConfigValue* value = Consume(key);
  if (value == nullptr) return absl::OkStatus();
  if (!value->is_list) {
    return absl::InvalidArgumentError(std::string(key) + ": expected a list, got '" +
                                      value->scalar + "' (" + Where(*value) + ")");
  }
  std::vector<T> parsed(value->list.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    T item{};
    if (!parse(value->list[i], &item)) {
      return absl::InvalidArgumentError(std::string(key) + "[" + std::to_string(i) +
                                        "]: expected " + expected + ", got '" + value->list[i] +
                                        "' (" + Where(*value) + ")");
    }
    parsed[i] = std::move(item);
  }
  *out = std::move(parsed);
  return absl::OkStatus();
}

absl::Status ConfigTree::Get(std::string_view key, int64_t* out) {
  return GetScalar(key, out, "an integer", ParseInt64);
}
absl::Status ConfigTree::Get(std::string_view key, int* out) {
  return GetScalar(key, out, "a 32-bit integer", ParseInt);
}
absl::Status ConfigTree::Get(std::string_view key, double* out) {
  return GetScalar(key, out, "a number", ParseDouble);
}
absl::Status ConfigTree::Get(std::string_view key, bool* out) {
  return GetScalar(key, out, "true or false", ParseBool);
}
absl::Status ConfigTree::Get(std::string_view key, std::string* out) {
  return GetScalar(key, out, "a string", ParseString);
}
absl::Status ConfigTree::Get(std::string_view key, std::vector<int64_t>* out) {
  return GetList(key, out, "an integer", ParseInt64);
}
absl::Status ConfigTree::Get(std::string_view key, std::vector<double>* out) {
  return GetList(key, out, "a number", ParseDouble);
}
absl::Status ConfigTree::Get(std::string_view key, std::vector<std::string>* out) {
  return GetList(key, out, "a string", ParseString);
}

absl::Status ConfigTree::CheckAllConsumed() const {
  std::string message;
  for (const Entry& entry : entries_) {
    if (entry.consumed) continue;
    if (!message.empty()) message += "; ";
    message += "unknown config key '" + entry.key + "' (" + Where(entry.value);
    const std::string* best = nullptr;
    size_t best_distance = 3;  // suggest only close matches
    for (const std::string& requested : requested_) {
      const size_t d = EditDistance(entry.key, requested);
      if (d < best_distance && d < requested.size() / 2) {
        best = &requested;
        best_distance = d;
      }
    }
    if (best != nullptr) message += "; did you mean '" + *best + "'?";
    message += ")";
  }
  return message.empty() ? absl::OkStatus() : absl::InvalidArgumentError(message);
}

absl::Status ConfigTree::Put(std::string_view key, int64_t value) {
  ConfigValue v;
  v.scalar = std::to_string(value);
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, double value) {
  ConfigValue v;
  v.scalar = FormatDouble(value);
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, bool value) {
  ConfigValue v;
  v.scalar = value ? "true" : "false";
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, std::string_view value) {
  ConfigValue v;
  v.scalar = std::string(value);
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, const std::vector<int64_t>& value) {
  ConfigValue v;
  v.is_list = true;
  for (int64_t x : value) v.list.push_back(std::to_string(x));
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, const std::vector<double>& value) {
  ConfigValue v;
  v.is_list = true;
  for (double x : value) v.list.push_back(FormatDouble(x));
  return Store(key, std::move(v), true);
}

absl::Status ConfigTree::Put(std::string_view key, const std::vector<std::string>& value) {
  ConfigValue v;
  v.is_list = true;
  v.list = value;
  return Store(key, std::move(v), true);
}

std::string ConfigTree::ToYaml() const {
  if (entries_.empty()) return "";
  YAML::Emitter out;
  EmitSection(entries_, "", &out);
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> ConfigTree::Keys() const {
  std::vector<std::string> keys;
  for (const Entry& entry : entries_) keys.push_back(entry.key);
  return keys;
}

bool ConfigTree::Has(std::string_view key) const { return index_.count(key) > 0; }

const ConfigValue* ConfigTree::Find(std::string_view key) const {
  const auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].value;
}

}  // namespace fastdiss
