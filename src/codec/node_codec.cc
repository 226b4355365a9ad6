#include "codec/node_codec.h"

#include <cmath>
#include <limits>
#include <set>

#include "codec/json_fields.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr size_t kMaxStringBytes = 4096;
constexpr int64_t kMaxMib = int64_t{1} << 40;  // A petabyte of GPU memory: beyond any device.
constexpr size_t kMaxGpusPerNode = 1024;
constexpr size_t kMaxProcessesPerGpu = 4096;
constexpr size_t kMaxNotes = 256;

// Reads the keys of one JSON object into values, remembering which keys it
// read so that any other key is reported by Finish. Every error names the
// field as `prefix + key`; after the first error the other reads do
// nothing, and Finish returns it. Absent keys leave the value as it is.
class ObjectFields {
 public:
  ObjectFields(const json& object, std::string prefix)
      : object_(object), prefix_(std::move(prefix)) {}

  void String(const char* key, std::string* out, bool required = false) {
    const json* value = Find(key);
    if (value == nullptr) {
      if (required) Fail(InvalidArgument("is required", Name(key)));
      return;
    }
    if (!value->is_string()) return Fail(WrongType(Name(key), "a string", *value));
    const auto& text = value->get_ref<const std::string&>();
    if (text.size() > kMaxStringBytes) return Fail(TooLong(Name(key)));
    if (required && text.empty()) return Fail(InvalidArgument("must not be empty", Name(key)));
    *out = text;
  }
  void Bool(const char* key, bool* out) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_boolean()) return Fail(WrongType(Name(key), "a boolean", *value));
    *out = value->get<bool>();
  }
  template <typename Int>
  void Integer(const char* key, int64_t min, int64_t max, Int* out, bool required = false) {
    const json* value = Find(key);
    if (value == nullptr) {
      if (required) Fail(InvalidArgument("is required", Name(key)));
      return;
    }
    Result<int64_t> read = ReadInteger(Name(key), *value, min, max);
    if (!read.ok()) return Fail(read.status());
    *out = static_cast<Int>(*read);
  }
  void OptionalInteger(const char* key, int64_t min, int64_t max, std::optional<int64_t>* out) {
    const json* value = Find(key);
    if (value == nullptr || value->is_null()) return;
    Result<int64_t> read = ReadInteger(Name(key), *value, min, max);
    if (!read.ok()) return Fail(read.status());
    *out = *read;
  }
  void Number(const char* key, double min, double max, double* out) {
    const json* value = Find(key);
    if (value != nullptr) ReadNumber(key, *value, min, max, out);
  }
  void OptionalNumber(const char* key, double min, double max, std::optional<double>* out) {
    const json* value = Find(key);
    if (value == nullptr || value->is_null()) return;
    double read = 0;
    if (ReadNumber(key, *value, min, max, &read)) *out = read;
  }
  void Strings(const char* key, size_t max_items, std::vector<std::string>* out) {
    Array(key, max_items, [out](const json& item, const std::string& field) {
      if (!item.is_string()) return WrongType(field, "a string", item);
      if (item.get_ref<const std::string&>().size() > kMaxStringBytes) return TooLong(field);
      out->push_back(item.get<std::string>());
      return Status::Ok();
    });
  }
  // An array of objects, each handed to `decode` with its field prefix
  // ("gpus[2].").
  template <typename Decode>
  void Objects(const char* key, size_t max_items, Decode decode) {
    Array(key, max_items, [&decode](const json& item, const std::string& field) {
      if (!item.is_object()) return WrongType(field, "an object", item);
      return decode(item, field + ".");
    });
  }
  // A required object, handed to `decode` with its field prefix ("node.").
  template <typename Decode>
  void Object(const char* key, Decode decode) {
    const json* value = Find(key);
    if (value == nullptr) {
      Fail(InvalidArgument("is required", Name(key)));
      return;
    }
    if (!value->is_object()) return Fail(WrongType(Name(key), "an object", *value));
    Fail(decode(*value, Name(key) + "."));
  }
  // The first error of the reads, else kInvalidArgument naming the first
  // key none of them read, else OK.
  Status Finish() const {
    if (!first_error_.ok()) return first_error_;
    for (const auto& [key, value] : object_.items()) {
      if (read_.count(key) == 0) return InvalidArgument("unknown field", prefix_ + key);
    }
    return Status::Ok();
  }

 private:
  static Status TooLong(const std::string& field) {
    return InvalidArgument("longer than " + std::to_string(kMaxStringBytes) + " bytes", field);
  }
  // Marks `key` read; nullptr when it is absent or an earlier read failed.
  const json* Find(const char* key) {
    read_.insert(key);
    if (!first_error_.ok()) return nullptr;
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  // Keeps the first error.
  void Fail(const Status& status) {
    if (first_error_.ok() && !status.ok()) first_error_ = status;
  }
  bool ReadNumber(const char* key, const json& value, double min, double max, double* out) {
    if (!value.is_number()) {
      Fail(WrongType(Name(key), "a number", value));
      return false;
    }
    const double read = value.get<double>();
    if (!std::isfinite(read) || read < min || read > max) {
      Fail(InvalidArgument("must be between " + json(min).dump() + " and " + json(max).dump() +
                               ", got " + value.dump(),
                           Name(key)));
      return false;
    }
    *out = read;
    return true;
  }
  // Each item with its field name ("gpus[2]"), stopping at the first error.
  template <typename Item>
  void Array(const char* key, size_t max_items, Item item) {
    const json* value = Find(key);
    if (value == nullptr) return;
    if (!value->is_array()) return Fail(WrongType(Name(key), "an array", *value));
    if (value->size() > max_items) {
      return Fail(
          InvalidArgument("more than " + std::to_string(max_items) + " entries", Name(key)));
    }
    for (size_t i = 0; i < value->size() && first_error_.ok(); ++i) {
      Fail(item((*value)[i], Name(key) + "[" + std::to_string(i) + "]"));
    }
  }
  std::string Name(const char* key) const { return prefix_ + key; }

  const json& object_;
  const std::string prefix_;
  std::set<std::string> read_;
  Status first_error_ = Status::Ok();
};

json OptionalJson(const std::optional<double>& value) { return value ? json(*value) : json(); }
json OptionalJson(const std::optional<int64_t>& value) { return value ? json(*value) : json(); }

json EncodeProcess(const GpuProcess& process) {
  json out{{"pid", process.pid}, {"memory_used_mib", process.memory_used_mib}};
  if (process.identity) {
    out["command"] = process.identity->command;
    out["uid"] = process.identity->uid;
    out["allocation_id"] = process.identity->allocation_id;
    // Only when set: controllers older than the field refuse unknown keys.
    if (!process.identity->pod_uid.empty()) out["pod_uid"] = process.identity->pod_uid;
    out["unknown_reason"] = process.identity->unknown_reason;
  }
  return out;
}

json EncodeGpu(const Gpu& gpu) {
  json processes = json::array();
  for (const GpuProcess& process : gpu.processes) processes.push_back(EncodeProcess(process));
  return {{"index", gpu.index},
          {"uuid", gpu.uuid},
          {"pci_bus_id", gpu.pci_bus_id},
          {"name", gpu.model.raw_name},
          {"memory_total_mib", gpu.memory_total_mib},
          {"memory_used_mib", gpu.memory_used_mib},
          {"utilization", gpu.utilization},
          {"memory_utilization", gpu.memory_utilization},
          {"utilization_available", gpu.utilization_available},
          {"temperature_c", OptionalJson(gpu.temperature_c)},
          {"power_w", OptionalJson(gpu.power_w)},
          {"power_limit_w", OptionalJson(gpu.power_limit_w)},
          {"healthy", gpu.healthy},
          {"health_reason", gpu.health_reason},
          {"nvlink_group", gpu.nvlink_group},
          {"numa_node", gpu.numa_node},
          {"sm_clock_mhz", OptionalJson(gpu.sm_clock_mhz)},
          {"ecc_double_bit_errors", OptionalJson(gpu.ecc_double_bit_errors)},
          {"last_xid", gpu.last_xid},
          {"mig_enabled", gpu.mig_enabled},
          {"mig_parent_uuid", gpu.mig_parent_uuid},
          {"mig_profile", gpu.mig_profile},
          {"processes", std::move(processes)}};
}

Status DecodeProcess(const json& object, const std::string& prefix, GpuProcess* process) {
  ObjectFields fields(object, prefix);
  GpuProcess::Identity identity;
  const bool has_identity = object.contains("command") || object.contains("uid") ||
                            object.contains("allocation_id") || object.contains("pod_uid") ||
                            object.contains("unknown_reason");
  fields.Integer("pid", 1, std::numeric_limits<int32_t>::max(), &process->pid, true);
  fields.Integer("memory_used_mib", 0, kMaxMib, &process->memory_used_mib);
  fields.String("command", &identity.command);
  fields.Integer("uid", -1, std::numeric_limits<uint32_t>::max(), &identity.uid);
  fields.String("allocation_id", &identity.allocation_id);
  fields.String("pod_uid", &identity.pod_uid);
  fields.String("unknown_reason", &identity.unknown_reason);
  if (Status status = fields.Finish(); !status.ok()) return status;
  if (has_identity) process->identity = std::move(identity);
  return Status::Ok();
}

Status DecodeGpu(const json& object, const std::string& prefix, const GpuMemorySpecs& specs,
                 Gpu* gpu) {
  ObjectFields fields(object, prefix);
  std::string name;
  fields.Integer("index", 0, 1 << 20, &gpu->index);
  fields.String("uuid", &gpu->uuid, true);
  fields.String("pci_bus_id", &gpu->pci_bus_id);
  fields.String("name", &name, true);
  fields.Integer("memory_total_mib", 0, kMaxMib, &gpu->memory_total_mib);
  fields.Integer("memory_used_mib", 0, kMaxMib, &gpu->memory_used_mib);
  fields.Number("utilization", 0, 1, &gpu->utilization);
  fields.Number("memory_utilization", 0, 1, &gpu->memory_utilization);
  fields.Bool("utilization_available", &gpu->utilization_available);
  fields.OptionalNumber("temperature_c", -273.15, 1000, &gpu->temperature_c);
  fields.OptionalNumber("power_w", 0, 1e6, &gpu->power_w);
  fields.OptionalNumber("power_limit_w", 0, 1e6, &gpu->power_limit_w);
  fields.Bool("healthy", &gpu->healthy);
  fields.String("health_reason", &gpu->health_reason);
  fields.Integer("nvlink_group", -1, 1 << 20, &gpu->nvlink_group);
  fields.Integer("numa_node", -1, 1 << 20, &gpu->numa_node);
  fields.OptionalInteger("sm_clock_mhz", 0, 1 << 20, &gpu->sm_clock_mhz);
  fields.OptionalInteger("ecc_double_bit_errors", 0, std::numeric_limits<int64_t>::max(),
                         &gpu->ecc_double_bit_errors);
  fields.Integer("last_xid", 0, std::numeric_limits<int64_t>::max(), &gpu->last_xid);
  fields.Bool("mig_enabled", &gpu->mig_enabled);
  fields.String("mig_parent_uuid", &gpu->mig_parent_uuid);
  fields.String("mig_profile", &gpu->mig_profile);
  fields.Objects("processes", kMaxProcessesPerGpu,
                 [gpu](const json& item, const std::string& item_prefix) {
                   return DecodeProcess(item, item_prefix, &gpu->processes.emplace_back());
                 });
  if (Status status = fields.Finish(); !status.ok()) return status;
  if (gpu->memory_used_mib > gpu->memory_total_mib) {
    return InvalidArgument("is more than memory_total_mib", prefix + "memory_used_mib");
  }
  gpu->model = ParseGpuModel(name, specs);
  return Status::Ok();
}

Status DecodeNode(const json& object, const std::string& prefix, const GpuMemorySpecs& specs,
                  Node* node) {
  ObjectFields fields(object, prefix);
  fields.String("name", &node->name, true);
  fields.String("address", &node->address);
  fields.Bool("schedulable", &node->schedulable);
  fields.Objects("gpus", kMaxGpusPerNode,
                 [node, &specs](const json& item, const std::string& item_prefix) {
                   return DecodeGpu(item, item_prefix, specs, &node->gpus.emplace_back());
                 });
  if (Status status = fields.Finish(); !status.ok()) return status;
  std::set<std::string> uuids;
  for (size_t i = 0; i < node->gpus.size(); ++i) {
    if (!uuids.insert(node->gpus[i].uuid).second) {
      return InvalidArgument("the same uuid as another GPU of the node",
                             prefix + "gpus[" + std::to_string(i) + "].uuid");
    }
  }
  return Status::Ok();
}

}  // namespace

json EncodeAgentReport(const AgentReport& report) {
  json gpus = json::array();
  for (const Gpu& gpu : report.node.gpus) gpus.push_back(EncodeGpu(gpu));
  return {{"agent_protocol", kAgentProtocolVersion},
          {"node",
           {{"name", report.node.name},
            {"address", report.node.address},
            {"schedulable", report.node.schedulable},
            {"gpus", std::move(gpus)}}},
          {"taken_unix_ms", report.taken_unix_ms},
          {"stale_gpus", report.stale_gpus},
          {"notes", report.notes}};
}

Result<AgentReport> DecodeAgentReport(const json& document, const GpuMemorySpecs& memory_specs) {
  if (!document.is_object()) return WrongType("body", "an object", document);
  // The version first: another version's fields are not this one's.
  Result<int64_t> version =
      document.contains("agent_protocol")
          ? ReadInteger("agent_protocol", document["agent_protocol"], 0, 1 << 20)
          : Result<int64_t>(InvalidArgument("is required", "agent_protocol"));
  if (!version.ok()) return version.status();
  if (*version != kAgentProtocolVersion) {
    return InvalidArgument("agent protocol " + std::to_string(*version) + " is not " +
                               std::to_string(kAgentProtocolVersion) +
                               " (the controller and the agent run different gpurm versions?)",
                           "agent_protocol");
  }
  ObjectFields fields(document, "");
  AgentReport report;
  int64_t read_version = 0;
  fields.Integer("agent_protocol", 0, 1 << 20, &read_version);
  fields.Object("node", [&](const json& node, const std::string& prefix) {
    return DecodeNode(node, prefix, memory_specs, &report.node);
  });
  fields.Integer("taken_unix_ms", 0, std::numeric_limits<int64_t>::max(), &report.taken_unix_ms);
  fields.Strings("stale_gpus", kMaxGpusPerNode, &report.stale_gpus);
  fields.Strings("notes", kMaxNotes, &report.notes);
  if (Status status = fields.Finish(); !status.ok()) return status;
  return report;
}

}  // namespace gpurm
