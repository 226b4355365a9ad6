#include "inventory/providers/static/static_provider.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

#include "strict_yaml/documents.h"
#include "strict_yaml/reader.h"

namespace gpurm {
namespace {

// One entry repeated more times than this is almost certainly a typo; refusing
// it keeps a stray "count: 100000000" from exhausting memory.
constexpr int64_t kMaxCount = 1024;

using strict_yaml::Describe;
using strict_yaml::Entries;
using strict_yaml::Entry;
using strict_yaml::List;
using strict_yaml::ReadBool;
using strict_yaml::ReadInt;
using strict_yaml::ReadNumber;
using strict_yaml::ReadString;
using Reporter = strict_yaml::Source;

bool IsRatio(double value) { return value >= 0 && value <= 1; }

// The keys GPU and MIG device entries share, read into the entry's count,
// uuid and Gpu, and the entries that later checks point at.
struct SharedDeviceKeys {
  int64_t* count;
  std::string* uuid;
  YAML::Mark* uuid_mark;
  const Entry* total = nullptr;   // memory_total_mb, when given.
  const Entry* used = nullptr;    // memory_used_mb, when given.
  const Entry* reason = nullptr;  // health_reason, when given.
};

// Reads `entry`, one of count, memory_total_mb, memory_used_mb, healthy,
// health_reason or uuid (the caller's Entries call admits no other).
Status ReadSharedDeviceKey(const Reporter& reporter, const Entry& entry, Gpu* gpu,
                           SharedDeviceKeys* keys) {
  if (entry.key == "count") {
    return ReadInt(reporter, entry, 1, kMaxCount,
                   "an integer from 1 to " + std::to_string(kMaxCount), keys->count);
  }
  if (entry.key == "memory_total_mb") {
    keys->total = &entry;
    return ReadInt(reporter, entry, 1, INT64_MAX, "a positive whole number of MiB",
                   &gpu->memory_total_mib);
  }
  if (entry.key == "memory_used_mb") {
    keys->used = &entry;
    return ReadInt(reporter, entry, 0, INT64_MAX, "a whole number of MiB >= 0",
                   &gpu->memory_used_mib);
  }
  if (entry.key == "healthy") return ReadBool(reporter, entry, &gpu->healthy);
  if (entry.key == "health_reason") {
    keys->reason = &entry;
    return ReadString(reporter, entry, /*allow_empty=*/true, &gpu->health_reason);
  }
  *keys->uuid_mark = entry.mark;  // uuid
  return ReadString(reporter, entry, /*allow_empty=*/false, keys->uuid);
}

// What a GPU or MIG device entry must agree with once read: no more memory
// in use than it has, a health_reason only when unhealthy (and a default
// one then). `what` names the device in messages.
Status CheckUseAndHealth(const Reporter& reporter, const SharedDeviceKeys& keys, const char* what,
                         Gpu* gpu) {
  if (keys.used != nullptr && gpu->memory_used_mib > gpu->memory_total_mib) {
    return reporter.Error(keys.used->mark, keys.used->path,
                          std::to_string(gpu->memory_used_mib) + " MiB is more than the " + what +
                              "'s " + std::to_string(gpu->memory_total_mib) +
                              " MiB (memory_total_mb)");
  }
  if (gpu->healthy && !gpu->health_reason.empty()) {
    return reporter.Error(keys.reason->mark, keys.reason->path,
                          "only meaningful with healthy: false");
  }
  if (!gpu->healthy && gpu->health_reason.empty()) {
    gpu->health_reason = "marked unhealthy in the inventory file";
  }
  return Status::Ok();
}

// One `mig_devices:` entry of a GPU before it is expanded by `count`.
struct MigEntry {
  Gpu gpu;  // Everything but index, uuid and parent.
  int64_t count = 1;
  std::string uuid;  // Explicit uuid, or empty.
  YAML::Mark uuid_mark;
  YAML::Mark mark;
  std::string path;
};

// One `gpus:` entry before it is expanded by `count`.
struct GpuEntry {
  Gpu gpu;  // Everything but index and uuid.
  int64_t count = 1;
  std::string uuid;  // Explicit uuid, or empty.
  YAML::Mark uuid_mark;
  YAML::Mark mark;
  std::string path;
  std::vector<MigEntry> mig_devices;  // With `mig_devices:` the GPU is in MIG mode.
};

// A MIG device of a GPU named `gpu_name`: `profile` ("3g.40gb") required.
Result<MigEntry> ParseMig(const Reporter& reporter, const YAML::Node& item, const std::string& path,
                          const std::string& gpu_name, const GpuMemorySpecs& specs) {
  MigEntry out;
  out.mark = item.Mark();
  out.path = path;
  if (!item.IsMap()) {
    return reporter.Error(
        item.Mark(), path,
        "expected a MIG device mapping with at least `profile`, got " + Describe(item));
  }
  Result<std::vector<Entry>> entries =
      Entries(reporter, item, path,
              {"profile", "count", "memory_total_mb", "memory_used_mb", "healthy", "health_reason",
               "uuid"});
  if (!entries.ok()) return entries.status();
  Gpu& gpu = out.gpu;
  const Entry* profile_entry = nullptr;
  SharedDeviceKeys shared{&out.count, &out.uuid, &out.uuid_mark};
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "profile") {
      profile_entry = &entry;
      status = ReadString(reporter, entry, /*allow_empty=*/false, &gpu.mig_profile);
    } else {
      status = ReadSharedDeviceKey(reporter, entry, &gpu, &shared);
    }
    if (!status.ok()) return status;
  }
  if (profile_entry == nullptr) {
    return reporter.Error(item.Mark(), path + ".profile",
                          "missing; every MIG device needs its profile, e.g. \"3g.40gb\"");
  }
  if (!out.uuid.empty() && out.count > 1) {
    return reporter.Error(out.uuid_mark, path + ".uuid",
                          "a uuid names one MIG device but count is " + std::to_string(out.count) +
                              "; drop the uuid or use one entry per device");
  }
  gpu.model = ParseGpuModel(gpu_name + " MIG " + gpu.mig_profile, specs);
  if (shared.total == nullptr) {
    if (!gpu.model.memory_gb) {
      return reporter.Error(profile_entry->mark, path + ".memory_total_mb",
                            "missing, and the memory of profile \"" + gpu.mig_profile +
                                "\" cannot be read from it; give memory_total_mb");
    }
    gpu.memory_total_mib = MibFromGb(*gpu.model.memory_gb);
  }
  if (Status checked = CheckUseAndHealth(reporter, shared, "device", &gpu); !checked.ok()) {
    return checked;
  }
  gpu.utilization_available = false;  // NVML gives MIG devices none.
  return out;
}

Result<GpuEntry> ParseGpu(const Reporter& reporter, const YAML::Node& item, const std::string& path,
                          const GpuMemorySpecs& specs) {
  GpuEntry out;
  out.mark = item.Mark();
  out.path = path;
  if (!item.IsMap()) {
    return reporter.Error(item.Mark(), path,
                          "expected a GPU mapping with at least `name`, got " + Describe(item));
  }
  Result<std::vector<Entry>> entries =
      Entries(reporter, item, path,
              {"name", "count", "nvlink_group", "memory_total_mb", "memory_used_mb", "utilization",
               "memory_utilization", "temperature_c", "power_w", "power_limit_w", "numa_node",
               "healthy", "health_reason", "uuid", "mig_devices"});
  if (!entries.ok()) return entries.status();

  Gpu& gpu = out.gpu;
  std::string name;
  const Entry* mig_entry = nullptr;
  const Entry* name_entry = nullptr;
  SharedDeviceKeys shared{&out.count, &out.uuid, &out.uuid_mark};
  const auto non_negative = [](double v) { return v >= 0; };
  const auto positive = [](double v) { return v > 0; };
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "name") {
      name_entry = &entry;
      status = ReadString(reporter, entry, /*allow_empty=*/false, &name);
    } else if (entry.key == "nvlink_group") {
      status = ReadInt(reporter, entry, 0, INT_MAX, "an integer >= 0 (omit it for none)",
                       &gpu.nvlink_group);
    } else if (entry.key == "utilization") {
      status = ReadNumber(reporter, entry, "a ratio from 0 to 1", IsRatio, &gpu.utilization);
    } else if (entry.key == "memory_utilization") {
      status = ReadNumber(reporter, entry, "a ratio from 0 to 1", IsRatio, &gpu.memory_utilization);
    } else if (entry.key == "temperature_c") {
      status = ReadNumber(
          reporter, entry, "a temperature in degrees Celsius", [](double) { return true; },
          &gpu.temperature_c);
    } else if (entry.key == "power_w") {
      status = ReadNumber(reporter, entry, "a number of watts >= 0", non_negative, &gpu.power_w);
    } else if (entry.key == "power_limit_w") {
      status =
          ReadNumber(reporter, entry, "a positive number of watts", positive, &gpu.power_limit_w);
    } else if (entry.key == "numa_node") {
      status = ReadInt(reporter, entry, 0, INT_MAX, "an integer >= 0 (omit it for none)",
                       &gpu.numa_node);
    } else if (entry.key == "mig_devices") {
      mig_entry = &entry;
    } else {
      status = ReadSharedDeviceKey(reporter, entry, &gpu, &shared);
    }
    if (!status.ok()) return status;
  }

  if (name_entry == nullptr) {
    return reporter.Error(item.Mark(), path + ".name", "missing; every GPU needs its driver name");
  }
  if (mig_entry != nullptr) {
    // MIG mode: the GPU is granted only as these devices, and has no utilization.
    Result<YAML::Node> migs = List(reporter, *mig_entry);
    if (!migs.ok()) return migs.status();
    for (size_t i = 0; i < migs->size(); ++i) {
      Result<MigEntry> mig = ParseMig(reporter, (*migs)[i],
                                      mig_entry->path + "[" + std::to_string(i) + "]", name, specs);
      if (!mig.ok()) return mig.status();
      if (!mig->uuid.empty() && out.count > 1) {
        return reporter.Error(
            mig->uuid_mark, mig->path + ".uuid",
            "a uuid names one MIG device but the GPU's count is " + std::to_string(out.count));
      }
      out.mig_devices.push_back(std::move(*mig));
    }
    gpu.mig_enabled = true;
    gpu.utilization_available = false;
  }
  if (!out.uuid.empty() && out.count > 1) {
    return reporter.Error(out.uuid_mark, path + ".uuid",
                          "a uuid names one GPU but count is " + std::to_string(out.count) +
                              "; drop the uuid or use one entry per GPU");
  }
  gpu.model = ParseGpuModel(name, specs);
  if (shared.total == nullptr) {
    if (!gpu.model.memory_gb) {
      return reporter.Error(name_entry->mark, path + ".memory_total_mb",
                            "missing, and the memory of \"" + name +
                                "\" is not known from its name or gpu_memory_specs; give "
                                "memory_total_mb");
    }
    gpu.memory_total_mib = MibFromGb(*gpu.model.memory_gb);
  }
  if (Status checked = CheckUseAndHealth(reporter, shared, "GPU", &gpu); !checked.ok()) {
    return checked;
  }
  return out;
}

// Where a uuid was first used, to report both places of a duplicate.
struct UuidOwner {
  std::string node;
  int index = 0;
  int line = 0;
};

Result<Node> ParseNode(const Reporter& reporter, const YAML::Node& item, const std::string& path,
                       const GpuMemorySpecs& specs, std::map<std::string, UuidOwner>* uuids) {
  if (!item.IsMap()) {
    return reporter.Error(item.Mark(), path,
                          "expected a node mapping with at least `name`, got " + Describe(item));
  }
  Result<std::vector<Entry>> entries =
      Entries(reporter, item, path, {"name", "address", "schedulable", "gpus"});
  if (!entries.ok()) return entries.status();
  Node node;
  const Entry* gpus_entry = nullptr;
  bool has_name = false;
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "name") {
      has_name = true;
      status = ReadString(reporter, entry, /*allow_empty=*/false, &node.name);
    } else if (entry.key == "address") {
      status = ReadString(reporter, entry, /*allow_empty=*/true, &node.address);
    } else if (entry.key == "schedulable") {
      status = ReadBool(reporter, entry, &node.schedulable);
    } else {  // gpus
      gpus_entry = &entry;
    }
    if (!status.ok()) return status;
  }
  if (!has_name)
    return reporter.Error(item.Mark(), path + ".name", "missing; every node needs a name");
  if (gpus_entry == nullptr) return node;

  Result<YAML::Node> gpus = List(reporter, *gpus_entry);
  if (!gpus.ok()) return gpus.status();
  int next_index = 0;  // GPUs only: a MIG device carries its GPU's index.
  const auto claim = [&](const Gpu& gpu, const YAML::Mark& mark,
                         const std::string& field) -> Status {
    const auto [owner, inserted] =
        uuids->emplace(gpu.uuid, UuidOwner{node.name, gpu.index, mark.line + 1});
    if (inserted) return Status::Ok();
    return reporter.Error(mark, field,
                          "duplicate uuid '" + gpu.uuid + "' (already GPU " +
                              std::to_string(owner->second.index) + " of node '" +
                              owner->second.node + "', line " + std::to_string(owner->second.line) +
                              ")");
  };
  for (size_t i = 0; i < gpus->size(); ++i) {
    Result<GpuEntry> parsed =
        ParseGpu(reporter, (*gpus)[i], path + ".gpus[" + std::to_string(i) + "]", specs);
    if (!parsed.ok()) return parsed.status();
    const YAML::Mark uuid_mark = parsed->uuid.empty() ? parsed->mark : parsed->uuid_mark;
    for (int64_t copy = 0; copy < parsed->count; ++copy) {
      Gpu gpu = parsed->gpu;
      gpu.index = next_index++;
      gpu.uuid =
          parsed->uuid.empty() ? node.name + "-gpu" + std::to_string(gpu.index) : parsed->uuid;
      if (Status status = claim(gpu, uuid_mark, parsed->path + ".uuid"); !status.ok()) {
        return status;
      }
      const Gpu& parent = node.gpus.emplace_back(std::move(gpu));
      const int parent_index = parent.index;
      const std::string parent_uuid = parent.uuid;
      // Its MIG devices follow it, with its index; default uuids
      // "MIG-<node>-gpu<index>-<n>" (CUDA takes MIG devices by uuid).
      int n = 0;
      for (const MigEntry& entry : parsed->mig_devices) {
        const YAML::Mark mig_mark = entry.uuid.empty() ? entry.mark : entry.uuid_mark;
        for (int64_t mig_copy = 0; mig_copy < entry.count; ++mig_copy, ++n) {
          Gpu mig = entry.gpu;
          mig.index = parent_index;
          mig.uuid = entry.uuid.empty() ? "MIG-" + node.name + "-gpu" +
                                              std::to_string(parent_index) + "-" + std::to_string(n)
                                        : entry.uuid;
          mig.mig_parent_uuid = parent_uuid;
          mig.numa_node = parsed->gpu.numa_node;
          if (Status status = claim(mig, mig_mark, entry.path + ".uuid"); !status.ok()) {
            return status;
          }
          node.gpus.push_back(std::move(mig));
        }
      }
    }
  }
  return node;
}

Result<std::vector<Node>> ParseRoot(const Reporter& reporter, const YamlDocuments& docs,
                                    const GpuMemorySpecs& specs) {
  if (docs.count > 1) {
    return InvalidArgument(reporter.Where(docs.second_start) +
                           "expected one YAML document, found more");
  }
  if (docs.count == 0 || !docs.first.IsMap()) {
    const YAML::Mark mark = docs.count == 0 ? YAML::Mark() : docs.first.Mark();
    return InvalidArgument(reporter.Where(mark) + "expected a mapping with a `nodes` list, got " +
                               (docs.count == 0 ? "an empty file" : Describe(docs.first)),
                           "nodes");
  }
  Result<std::vector<Entry>> entries = Entries(reporter, docs.first, "", {"nodes"});
  if (!entries.ok()) return entries.status();
  if (entries->empty()) {
    return InvalidArgument(reporter.Where(docs.first.Mark()) + "missing key 'nodes'", "nodes");
  }
  Result<YAML::Node> items = List(reporter, entries->front());
  if (!items.ok()) return items.status();

  std::vector<Node> nodes;
  std::map<std::string, int> node_lines;
  std::map<std::string, UuidOwner> uuids;
  for (size_t i = 0; i < items->size(); ++i) {
    const YAML::Node item = (*items)[i];
    const std::string path = "nodes[" + std::to_string(i) + "]";
    Result<Node> node = ParseNode(reporter, item, path, specs, &uuids);
    if (!node.ok()) return node.status();
    const auto [first, inserted] = node_lines.emplace(node->name, item.Mark().line + 1);
    if (!inserted) {
      return reporter.Error(item["name"].Mark(), path + ".name",
                            "duplicate node name '" + node->name + "' (first at line " +
                                std::to_string(first->second) + ")");
    }
    nodes.push_back(std::move(*node));
  }
  return nodes;
}

}  // namespace

Result<std::vector<Node>> ParseStaticInventory(std::string_view yaml_text,
                                               std::string_view source_name,
                                               const GpuMemorySpecs& memory_specs) {
  const Reporter reporter(source_name);
  try {
    return ParseRoot(reporter, LoadYamlDocuments(yaml_text), memory_specs);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(reporter.Where(e.mark) + "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(reporter.Where(YAML::Mark::null_mark()) + "cannot parse: " + e.what());
  }
}

StaticProvider::StaticProvider(std::string path, GpuMemorySpecs memory_specs)
    : path_(std::move(path)), memory_specs_(std::move(memory_specs)) {}

Result<DiscoveryReport> StaticProvider::Discover() {
  std::error_code ec;
  if (std::filesystem::is_directory(path_, ec)) {
    return Unavailable("cannot read inventory file '" + path_ + "': it is a directory");
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return Unavailable("cannot read inventory file '" + path_ +
                       "': " + std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Unavailable("cannot read inventory file '" + path_ + "': read error");

  Result<std::vector<Node>> nodes = ParseStaticInventory(text.str(), path_, memory_specs_);
  if (!nodes.ok()) return nodes.status();
  DiscoveryReport report;
  size_t gpu_count = 0;
  size_t mig_count = 0;
  for (const Node& node : *nodes) {
    for (const Gpu& gpu : node.gpus) ++(gpu.is_mig_device() ? mig_count : gpu_count);
  }
  report.notes.push_back(
      "static: " + std::to_string(nodes->size()) + " node(s), " + std::to_string(gpu_count) +
      " GPU(s)" + (mig_count > 0 ? ", " + std::to_string(mig_count) + " MIG device(s)" : "") +
      " from " + path_);
  report.nodes = std::move(*nodes);
  return report;
}

}  // namespace gpurm
