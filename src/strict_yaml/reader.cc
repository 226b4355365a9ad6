#include "strict_yaml/reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <system_error>

namespace gpurm::strict_yaml {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The whole scalar parsed by std::from_chars, or nothing.
template <typename T>
std::optional<T> ParseScalar(const YAML::Node& value) {
  if (!value.IsScalar()) return std::nullopt;
  const std::string& text = value.Scalar();
  T parsed{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, parsed);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return parsed;
}

}  // namespace

std::string Source::Where(const YAML::Mark& mark) const {
  if (mark.is_null()) return name_ + ": ";
  return name_ + ":" + std::to_string(mark.line + 1) + ": ";
}

Status Source::Error(const YAML::Mark& mark, const std::string& path,
                     const std::string& what) const {
  return InvalidArgument(Where(mark) + (path.empty() ? "" : path + ": ") + what, path);
}

std::string Describe(const YAML::Node& value) {
  switch (value.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      break;
  }
  std::string text = value.Scalar();
  constexpr size_t kMaxShown = 60;
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "...";
  return "\"" + text + "\"";
}

std::string Suggest(std::string_view unknown, const std::vector<std::string>& known) {
  const std::string lowered = Lower(unknown);
  std::string best;
  size_t best_distance = 0;
  for (const std::string& candidate : known) {
    const size_t distance = EditDistance(lowered, Lower(candidate));
    if (best.empty() || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  const size_t allowed = std::max<size_t>(2, best.size() / 3);
  return !best.empty() && best_distance <= allowed ? best : "";
}

Result<std::vector<Entry>> Entries(const Source& source, const YAML::Node& map,
                                   const std::string& path, const std::vector<std::string>& known) {
  const std::string prefix = path.empty() ? "" : path + ".";
  std::vector<Entry> entries;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node key = it->first;  // A copy: `it->first` lives in a temporary.
    if (!key.IsScalar()) {
      return source.Error(key.Mark(), path, "keys must be plain names, got " + Describe(key));
    }
    Entry entry{key.Scalar(), prefix + key.Scalar(), key.Mark(), it->second};
    for (const Entry& earlier : entries) {
      if (earlier.key == entry.key) {
        return source.Error(
            entry.mark, entry.path,
            "duplicate key (first given at line " + std::to_string(earlier.mark.line + 1) + ")");
      }
    }
    if (!known.empty() && std::find(known.begin(), known.end(), entry.key) == known.end()) {
      std::string message = source.Where(entry.mark) + "unknown key '" + entry.path + "'";
      const std::string suggestion = Suggest(entry.key, known);
      if (!suggestion.empty()) message += "; did you mean '" + prefix + suggestion + "'?";
      return InvalidArgument(message, entry.path);
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

Result<std::vector<Entry>> Section(const Source& source, const Entry& section,
                                   const std::vector<std::string>& known) {
  if (section.value.IsNull()) return std::vector<Entry>{};
  if (!section.value.IsMap()) {
    return source.Error(section.mark, section.path,
                        "expected a mapping of keys, got " + Describe(section.value));
  }
  return Entries(source, section.value, section.path, known);
}

Result<YAML::Node> List(const Source& source, const Entry& entry) {
  if (entry.value.IsNull()) return YAML::Node(YAML::NodeType::Sequence);
  if (!entry.value.IsSequence()) {
    return source.Error(entry.mark, entry.path, "expected a list, got " + Describe(entry.value));
  }
  return entry.value;
}

Status ReadString(const Source& source, const Entry& entry, bool allow_empty, std::string* out) {
  if (allow_empty && entry.value.IsNull()) {
    out->clear();
    return Status::Ok();
  }
  if (!entry.value.IsScalar() || (!allow_empty && entry.value.Scalar().empty())) {
    return source.Error(
        entry.mark, entry.path,
        std::string(allow_empty ? "expected a string" : "expected a non-empty string") + ", got " +
            Describe(entry.value));
  }
  *out = entry.value.Scalar();
  return Status::Ok();
}

Status ReadBool(const Source& source, const Entry& entry, bool* out) {
  const std::string text = entry.value.IsScalar() ? entry.value.Scalar() : "";
  if (text == "true" || text == "True" || text == "TRUE") {
    *out = true;
    return Status::Ok();
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    *out = false;
    return Status::Ok();
  }
  return source.Error(entry.mark, entry.path,
                      "expected true or false, got " + Describe(entry.value));
}

Status ReadInt(const Source& source, const Entry& entry, int64_t min, int64_t max,
               const std::string& expected, int64_t* out) {
  const std::optional<int64_t> parsed = ParseScalar<int64_t>(entry.value);
  if (!parsed || *parsed < min || *parsed > max) {
    return source.Error(entry.mark, entry.path,
                        "expected " + expected + ", got " + Describe(entry.value));
  }
  *out = *parsed;
  return Status::Ok();
}

Status ReadInt(const Source& source, const Entry& entry, int min, int max,
               const std::string& expected, int* out) {
  int64_t parsed = 0;
  Status status = ReadInt(source, entry, int64_t{min}, int64_t{max}, expected, &parsed);
  if (status.ok()) *out = static_cast<int>(parsed);
  return status;
}

Status ReadNumber(const Source& source, const Entry& entry, const std::string& expected,
                  const std::function<bool(double)>& valid, double* out) {
  const std::optional<double> parsed = ParseScalar<double>(entry.value);
  if (!parsed || !std::isfinite(*parsed) || !valid(*parsed)) {
    return source.Error(entry.mark, entry.path,
                        "expected " + expected + ", got " + Describe(entry.value));
  }
  *out = *parsed;
  return Status::Ok();
}

Status ReadNumber(const Source& source, const Entry& entry, const std::string& expected,
                  const std::function<bool(double)>& valid, std::optional<double>* out) {
  double parsed = 0;
  Status status = ReadNumber(source, entry, expected, valid, &parsed);
  if (status.ok()) *out = parsed;
  return status;
}

}  // namespace gpurm::strict_yaml
