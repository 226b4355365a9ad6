// The strict reading of YAML files that gpurm's users write by hand
// (gpu_config.yaml, static inventories), shared so that every file is held to
// the same rules and every mistake is reported the same way:
//   - every error is kInvalidArgument with field() = the dotted path
//     ("server.listen", "nodes[1].gpus[0].count") and the message
//     "<source>:<line>: <path>: <what>, got <what was there>";
//   - keys must be plain scalars, duplicates are refused (yaml-cpp keeps both,
//     and a silent "last one wins" hides typos), unknown keys are refused with
//     the closest known key as a suggestion;
//   - booleans are YAML 1.2's (true/false, True/False, TRUE/FALSE), numbers
//     must be finite and whole where an integer is expected.
// Nothing here throws; nothing keeps state, so all of it is thread-safe.
#ifndef GPURM_STRICT_YAML_READER_H_
#define GPURM_STRICT_YAML_READER_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace gpurm::strict_yaml {

// Where errors point: the source's name (a file path) and a 1-based line
// (yaml-cpp's marks are 0-based).
class Source {
 public:
  explicit Source(std::string_view name) : name_(name) {}

  // "<name>:<line>: ", or "<name>: " for a null mark.
  std::string Where(const YAML::Mark& mark) const;
  // kInvalidArgument "<where><path>: <what>" with field() = path; an empty
  // path is about the file as a whole.
  Status Error(const YAML::Mark& mark, const std::string& path, const std::string& what) const;

 private:
  std::string name_;
};

// What a value looked like, for "got ..." in messages: "nothing", "a list",
// "a mapping", or the scalar in quotes (cut after 60 characters).
std::string Describe(const YAML::Node& value);

// One `key: value` of a mapping with the key's position: errors point at the
// key, because the marks of null values and aliases point elsewhere.
struct Entry {
  std::string key;   // As written.
  std::string path;  // Dotted from the root: "server.listen".
  YAML::Mark mark;
  YAML::Node value;
};

// A mapping's entries in file order, under `path` ("" = the root). Keys not in
// `known` are errors, with a "did you mean" when one is close (case is
// ignored for the suggestion); an empty `known` accepts any key (mappings
// whose keys are data, such as GPU model names).
Result<std::vector<Entry>> Entries(const Source& source, const YAML::Node& map,
                                   const std::string& path, const std::vector<std::string>& known);

// The entries of a section that is a mapping; an empty section (every key
// commented out) has none.
Result<std::vector<Entry>> Section(const Source& source, const Entry& section,
                                   const std::vector<std::string>& known);

// A list; null (the key with nothing after it) is an empty list.
Result<YAML::Node> List(const Source& source, const Entry& entry);

// A scalar; with allow_empty, null and "" read as "".
Status ReadString(const Source& source, const Entry& entry, bool allow_empty, std::string* out);
Status ReadBool(const Source& source, const Entry& entry, bool* out);
// A whole number in [min, max]; `expected` completes "expected ..." (e.g.
// "an integer from 1 to 64").
Status ReadInt(const Source& source, const Entry& entry, int64_t min, int64_t max,
               const std::string& expected, int64_t* out);
Status ReadInt(const Source& source, const Entry& entry, int min, int max,
               const std::string& expected, int* out);
// A finite number accepted by `valid`; `expected` completes "expected ...".
Status ReadNumber(const Source& source, const Entry& entry, const std::string& expected,
                  const std::function<bool(double)>& valid, double* out);
Status ReadNumber(const Source& source, const Entry& entry, const std::string& expected,
                  const std::function<bool(double)>& valid, std::optional<double>* out);

// The known name closest to `unknown` (ignoring case) when it is close enough
// to be a likely typo, else "". Also used for values from a fixed set.
std::string Suggest(std::string_view unknown, const std::vector<std::string>& known);

}  // namespace gpurm::strict_yaml

#endif  // GPURM_STRICT_YAML_READER_H_
