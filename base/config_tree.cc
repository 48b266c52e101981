#include "base/config_tree.h"

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

bool IsSpace(char c) { return c == ' ' || c == '\t'; }
bool IsKeyChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

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

bool IsNull(std::string_view s) { return s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// A value as written after "key:", "- " or "--set key=": absent, a scalar, or a flow list.
struct ParsedValue {
  bool present = false;
  bool is_list = false;
  std::string scalar;
  std::vector<std::string> list;
};

// Reads one value of the subset from a single line; errors carry no location (callers add it).
class ValueParser {
 public:
  explicit ValueParser(std::string_view text) : s_(text) {}

  absl::Status Parse(ParsedValue* out) {
    SkipSpace();
    if (i_ == s_.size() || AtComment()) return absl::OkStatus();
    out->present = true;
    if (s_[i_] == '[') {
      out->is_list = true;
      FASTDISS_RETURN_IF_ERROR(FlowList(&out->list));
    } else if (s_[i_] == '"' || s_[i_] == '\'') {
      FASTDISS_RETURN_IF_ERROR(Quoted(&out->scalar));
    } else {
      FASTDISS_RETURN_IF_ERROR(Plain(/*in_list=*/false, &out->scalar));
    }
    SkipSpace();
    if (i_ == s_.size() || AtComment()) return absl::OkStatus();
    return absl::InvalidArgumentError("unexpected text after the value: '" + std::string(s_.substr(i_)) + "'");
  }

 private:
  void SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
  }
  // YAML starts a comment only at '#' after whitespace (or at the start).
  bool AtComment() const { return i_ < s_.size() && s_[i_] == '#' && (i_ == 0 || IsSpace(s_[i_ - 1])); }

  absl::Status Quoted(std::string* out) {
    const char quote = s_[i_++];
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == quote) {
        if (quote == '"' || i_ == s_.size() || s_[i_] != '\'') return absl::OkStatus();
        ++i_;  // '' inside '...' is one quote
        out->push_back('\'');
      } else if (c == '\\' && quote == '"' && i_ < s_.size()) {
        const char e = s_[i_++];
        static constexpr std::string_view kFrom = "\"\\/ntr", kTo = "\"\\/\n\t\r";
        const size_t k = kFrom.find(e);
        if (k == std::string_view::npos) {
          return absl::InvalidArgumentError(std::string("unsupported escape '\\") + e +
                                      "' (use \\\" \\\\ \\n \\t \\r)");
        }
        out->push_back(kTo[k]);
      } else {
        out->push_back(c);
      }
    }
    return absl::InvalidArgumentError("unterminated quoted string (multi-line strings are not supported)");
  }

  absl::Status Plain(bool in_list, std::string* out) {
    const char c0 = s_[i_];
    const bool item_marker = c0 == '-' && (i_ + 1 == s_.size() || IsSpace(s_[i_ + 1]));
    if (c0 == '&' || c0 == '*') return absl::InvalidArgumentError("anchors and aliases are not supported");
    if (c0 == '!') return absl::InvalidArgumentError("tags are not supported");
    if (c0 == '|' || c0 == '>') return absl::InvalidArgumentError("multi-line strings are not supported");
    if (c0 == '{') return absl::InvalidArgumentError("flow mappings are not supported");
    if (c0 == '[') return absl::InvalidArgumentError("nested lists are not supported");
    if (item_marker) return absl::InvalidArgumentError("a list item must start its own line");
    if (!in_list && std::string_view("]},@`%?").find(c0) != std::string_view::npos) {
      return absl::InvalidArgumentError(std::string("a value cannot start with '") + c0 + "'; quote it");
    }
    const size_t start = i_;
    for (; i_ < s_.size(); ++i_) {
      const char c = s_[i_];
      if (in_list && (c == ',' || c == ']')) break;
      if (AtComment()) break;
      if (in_list && (c == '[' || c == '{' || c == '}')) {
        return absl::InvalidArgumentError("nested lists and flow mappings are not supported");
      }
      const char next = i_ + 1 < s_.size() ? s_[i_ + 1] : ' ';
      if (c == ':' && (IsSpace(next) || (in_list && (next == ',' || next == ']')))) {
        return absl::InvalidArgumentError(
            "': ' inside a plain value (put nested keys on their own lines; quote strings)");
      }
    }
    size_t end = i_;
    while (end > start && IsSpace(s_[end - 1])) --end;
    *out = std::string(s_.substr(start, end - start));
    if (out->empty()) return absl::InvalidArgumentError("empty list item");
    if (IsNull(*out))
      return absl::InvalidArgumentError("null values are not supported (quote the string, or drop the key)");
    return absl::OkStatus();
  }

  absl::Status FlowList(std::vector<std::string>* out) {
    ++i_;  // '['
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return absl::OkStatus();
    }
    while (true) {
      SkipSpace();
      if (i_ == s_.size()) break;
      std::string item;
      if (s_[i_] == '"' || s_[i_] == '\'') {
        FASTDISS_RETURN_IF_ERROR(Quoted(&item));
      } else {
        FASTDISS_RETURN_IF_ERROR(Plain(/*in_list=*/true, &item));
      }
      out->push_back(std::move(item));
      SkipSpace();
      if (i_ == s_.size() || AtComment()) break;
      const char c = s_[i_++];
      if (c == ']') return absl::OkStatus();
      if (c != ',')
        return absl::InvalidArgumentError(std::string("expected ',' or ']' in a list, got '") + c + "'");
    }
    return absl::InvalidArgumentError("unterminated list (a flow list must close on its own line)");
  }

  std::string_view s_;
  size_t i_ = 0;
};

ConfigValue ToConfigValue(ParsedValue v, int line) {
  ConfigValue value;
  value.is_list = v.is_list;
  value.scalar = std::move(v.scalar);
  value.list = std::move(v.list);
  value.line = line;
  return value;
}

// One non-blank, non-comment line of a file.
struct Line {
  int number;
  int indent;
  bool is_item;           // "- value"
  std::string_view key;   // when !is_item
  std::string_view rest;  // the text after "key:" or "-"
  std::string error;      // why the line is malformed; reported in line order, when reached
};

// Turns lines into dotted-key entries, checking the nesting and duplicate keys.
class BlockParser {
 public:
  explicit BlockParser(std::string_view source) : source_(source) {}

  absl::Status Run(std::string_view text, std::vector<std::pair<std::string, ConfigValue>>* out) {
    out_ = out;
    Split(text);
    size_t i = 0;
    return Mapping(&i, 0, "");
  }

 private:
  absl::Status Error(int line, const std::string& message) const {
    return absl::InvalidArgumentError(std::string(source_) + ":" + std::to_string(line) + ": " + message);
  }

  void Split(std::string_view text) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
    int number = 0;
    for (size_t pos = 0; pos <= text.size();) {
      size_t eol = text.find('\n', pos);
      if (eol == std::string_view::npos) eol = text.size();
      std::string_view raw = text.substr(pos, eol - pos);
      pos = eol + 1;
      ++number;
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      const size_t first = raw.find_first_not_of(" \t");
      if (first == std::string_view::npos || raw[first] == '#') continue;
      const size_t indent = raw.find_first_not_of(' ');
      const std::string_view content = raw.substr(indent);
      Line line{number, static_cast<int>(indent), false, {}, {}, {}};
      if (content[0] == '\t') {
        line.error = "tab in indentation (indent with spaces)";
      } else if (content == "---" || content == "..." || content.substr(0, 4) == "--- ") {
        line.error = "document markers are not supported";
      } else if (content[0] == '-' && (content.size() == 1 || IsSpace(content[1]))) {
        line.is_item = true;
        line.rest = content.substr(1);
      } else {
        size_t colon = 0;
        while (colon < content.size() && IsKeyChar(content[colon])) ++colon;
        line.key = content.substr(0, colon);
        if (colon == content.size() || content[colon] != ':' ||
            (colon + 1 < content.size() && !IsSpace(content[colon + 1])) || !ValidKeySegment(line.key)) {
          line.error = "expected 'key: value' or '- item' (keys are letters, digits, '_' and '-'), got '" +
                       std::string(content) + "'";
        } else {
          line.rest = content.substr(colon + 1);
        }
      }
      lines_.push_back(std::move(line));
    }
  }

  absl::Status Claim(const std::string& key, int line) {
    const auto [it, inserted] = seen_.emplace(key, line);
    if (inserted) return absl::OkStatus();
    return Error(line, "duplicate key '" + key + "' (first at line " + std::to_string(it->second) + ")");
  }

  absl::Status Value(const Line& line, const std::string& key, ParsedValue* value) const {
    const absl::Status status = ValueParser(line.rest).Parse(value);
    return status.ok() ? status : Error(line.number, key + ": " + std::string(status.message()));
  }

  // The mapping whose keys sit at `indent`, starting at lines_[*i].
  absl::Status Mapping(size_t* i, int indent, const std::string& prefix) {
    while (*i < lines_.size()) {
      const Line& line = lines_[*i];
      if (!line.error.empty()) return Error(line.number, line.error);
      if (line.indent < indent) return absl::OkStatus();  // the enclosing mapping checks the level
      if (line.indent > indent) {
        return Error(line.number, "inconsistent indentation: expected " + std::to_string(indent) +
                                      " spaces, got " + std::to_string(line.indent));
      }
      if (line.is_item) return Error(line.number, "list item without a key above it");
      const std::string key = prefix + std::string(line.key);
      FASTDISS_RETURN_IF_ERROR(Claim(key, line.number));
      ParsedValue value;
      FASTDISS_RETURN_IF_ERROR(Value(line, key, &value));
      ++*i;
      if (*i < lines_.size() && !lines_[*i].error.empty()) return Error(lines_[*i].number, lines_[*i].error);
      if (value.present) {
        out_->emplace_back(key, ToConfigValue(std::move(value), line.number));
      } else if (*i < lines_.size() && lines_[*i].is_item && lines_[*i].indent >= indent) {
        FASTDISS_RETURN_IF_ERROR(BlockList(i, key, &value));
        out_->emplace_back(key, ToConfigValue(std::move(value), line.number));
      } else if (*i < lines_.size() && lines_[*i].indent > indent) {
        FASTDISS_RETURN_IF_ERROR(Mapping(i, lines_[*i].indent, key + "."));
      } else {
        return Error(line.number, "'" + key + "' has no value (write \"\" for an empty string)");
      }
    }
    return absl::OkStatus();
  }

  // "- item" lines, all at the indentation of the first.
  absl::Status BlockList(size_t* i, const std::string& key, ParsedValue* list) {
    list->present = list->is_list = true;
    const int indent = lines_[*i].indent;
    for (; *i < lines_.size() && lines_[*i].is_item && lines_[*i].indent == indent; ++*i) {
      if (!lines_[*i].error.empty()) return Error(lines_[*i].number, lines_[*i].error);
      ParsedValue item;
      FASTDISS_RETURN_IF_ERROR(Value(lines_[*i], key, &item));
      if (!item.present) return Error(lines_[*i].number, key + ": empty list item");
      if (item.is_list) return Error(lines_[*i].number, key + ": nested lists are not supported");
      list->list.push_back(std::move(item.scalar));
    }
    return absl::OkStatus();
  }

  std::string_view source_;
  std::vector<Line> lines_;
  std::map<std::string, int> seen_;  // every key and section -> line, for duplicates
  std::vector<std::pair<std::string, ConfigValue>>* out_ = nullptr;
};

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

// Whether `s` must be quoted to read back as the same string (in a list or not).
bool NeedsQuotes(std::string_view s) {
  if (s.empty() || IsSpace(s.front()) || IsSpace(s.back()) || IsNull(s)) return true;
  if (std::string_view("&*!|>{}[]@`%?,#'\"").find(s[0]) != std::string_view::npos) return true;
  if (s[0] == '-' && (s.size() == 1 || IsSpace(s[1]))) return true;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f || std::string_view(",[]{}").find(s[i]) != std::string_view::npos) return true;
    if (c == ':' && (i + 1 == s.size() || IsSpace(s[i + 1]))) return true;
    if (c == '#' && IsSpace(s[i - 1])) return true;
  }
  return false;
}

std::string FormatScalar(std::string_view s) {
  if (!NeedsQuotes(s)) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out + "\"";
}

std::string FormatValue(const ConfigValue& value) {
  if (!value.is_list) return FormatScalar(value.scalar);
  std::string out = "[";
  for (size_t i = 0; i < value.list.size(); ++i) out += (i ? ", " : "") + FormatScalar(value.list[i]);
  return out + "]";
}

// Optimal string alignment distance (a transposition counts as one edit).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// Sections of ToYaml(), in first-appearance order.
struct YamlNode {
  std::string name;
  const ConfigValue* value = nullptr;
  std::vector<YamlNode> children;
};

void EmitYaml(const YamlNode& node, int depth, std::string* out) {
  for (const YamlNode& child : node.children) {
    out->append(2 * depth, ' ');
    *out += child.name + ":";
    if (child.value != nullptr) {
      *out += " " + FormatValue(*child.value) + "\n";
    } else {
      *out += "\n";
      EmitYaml(child, depth + 1, out);
    }
  }
}

}  // namespace

absl::StatusOr<ConfigTree> ConfigTree::Parse(std::string_view text, std::string_view source_name) {
  std::vector<std::pair<std::string, ConfigValue>> entries;
  FASTDISS_RETURN_IF_ERROR(BlockParser(source_name).Run(text, &entries));
  ConfigTree tree;
  tree.source_name_ = std::string(source_name);
  for (auto& [key, value] : entries) FASTDISS_RETURN_IF_ERROR(tree.Store(key, std::move(value), false));
  return tree;
}

absl::StatusOr<ConfigTree> ConfigTree::LoadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno == ENOENT) return absl::NotFoundError("config file '" + path + "' does not exist");
    return absl::FailedPreconditionError("cannot open config file '" + path + "': " + std::strerror(errno));
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
  if (eq == std::string_view::npos) return absl::InvalidArgumentError(context + "expected key=value");
  ParsedValue value;
  const absl::Status parsed = ValueParser(assignment.substr(eq + 1)).Parse(&value);
  if (!parsed.ok()) return absl::InvalidArgumentError(context + std::string(parsed.message()));
  if (!value.present) return absl::InvalidArgumentError(context + "empty value (write \"\" for an empty string)");
  std::string_view key = assignment.substr(0, eq);
  while (!key.empty() && IsSpace(key.back())) key.remove_suffix(1);
  while (!key.empty() && IsSpace(key.front())) key.remove_prefix(1);
  const absl::Status stored = Store(key, ToConfigValue(std::move(value), 0), true);
  return stored.ok() ? stored : absl::InvalidArgumentError(context + std::string(stored.message()));
}

absl::Status ConfigTree::Store(std::string_view key, ConfigValue value, bool replace) {
  if (!ValidDottedKey(key)) {
    return absl::InvalidArgumentError("invalid config key '" + std::string(key) +
                                "' (dot-separated names of letters, digits, '_' and '-')");
  }
  if (const auto it = index_.find(key); it != index_.end()) {
    if (!replace) return absl::InvalidArgumentError("duplicate config key '" + std::string(key) + "'");
    entries_[it->second].value = std::move(value);
    return absl::OkStatus();
  }
  const std::string section = std::string(key) + ".";
  if (const auto it = index_.lower_bound(section);
      it != index_.end() && it->first.compare(0, section.size(), section) == 0) {
    return absl::InvalidArgumentError("'" + std::string(key) + "' is a section (it holds '" + it->first +
                                "'), so it cannot take a value");
  }
  for (size_t dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.', dot + 1)) {
    if (index_.count(key.substr(0, dot)) > 0) {
      return absl::InvalidArgumentError("'" + std::string(key.substr(0, dot)) +
                                  "' is a value, so it cannot hold '" + std::string(key) + "'");
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
    return absl::InvalidArgumentError(std::string(key) + ": expected a list, got '" + value->scalar + "' (" +
                                Where(*value) + ")");
  }
  std::vector<T> parsed(value->list.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    T item{};
    if (!parse(value->list[i], &item)) {
      return absl::InvalidArgumentError(std::string(key) + "[" + std::to_string(i) + "]: expected " + expected +
                                  ", got '" + value->list[i] + "' (" + Where(*value) + ")");
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
  YamlNode root;
  for (const Entry& entry : entries_) {
    YamlNode* node = &root;
    for (size_t start = 0;;) {
      const size_t dot = entry.key.find('.', start);
      const std::string name = entry.key.substr(start, dot - start);
      if (dot == std::string::npos) {
        node->children.push_back({name, &entry.value, {}});
        break;
      }
      auto it = std::find_if(node->children.begin(), node->children.end(),
                             [&](const YamlNode& c) { return c.name == name && c.value == nullptr; });
      if (it == node->children.end()) it = node->children.insert(node->children.end(), {name, nullptr, {}});
      node = &*it;
      start = dot + 1;
    }
  }
  std::string out;
  EmitYaml(root, 0, &out);
  return out;
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
