// The human (table) form of the daemon's answers: RenderStatus, RenderNodes,
// ... of commands.h. Pure functions of the JSON; missing members print "-".
#include <cmath>
#include <string>

#include "cli/commands.h"
#include "cli/json_view.h"
#include "cli/table.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

std::string Temperature(const json& value) {
  return value.is_number() ? std::to_string(std::lround(value.get<double>())) + " C" : "-";
}

// Grants as "n1:0,1 n2:0,1" (node order as given).
std::string GrantList(const json& grants) {
  std::vector<std::pair<std::string, std::string>> nodes;
  for (const json& grant : grants) {
    const std::string node = String(grant, "node_name");
    const std::string index = Text(Member(grant, "gpu_index"));
    auto it = nodes.begin();
    while (it != nodes.end() && it->first != node) ++it;
    if (it == nodes.end()) {
      nodes.emplace_back(node, index);
    } else {
      it->second += "," + index;
    }
  }
  std::string text;
  for (const auto& [node, indices] : nodes) {
    if (!text.empty()) text += ' ';
    text += node + ":" + indices;
  }
  return text.empty() ? "-" : text;
}

std::string ReasonLines(const json& body) {
  std::string text;
  for (const json& reason : Array(body, "reasons")) {
    const std::string node = String(reason, "node_name", "");
    text += "  " + (node.empty() ? "" : node + ": ") + String(reason, "reason") + "\n";
  }
  return text.empty() ? "" : "Reasons:\n" + text;
}

std::string WouldFitLines(const json& body) {
  const json& would_fit = Member(body, "would_fit");
  if (!would_fit.is_object()) return "";
  std::string types;
  const json& available = Member(would_fit, "gpu_types_available");
  if (available.is_object()) {
    for (const auto& [type, count] : available.items()) {
      if (!types.empty()) types += ", ";
      types += type + " x" + Text(count);
    }
  }
  // Zeros mean nothing of the requested type is free now, not "up to 0".
  const double max_gpus = NumberOr(Member(would_fit, "max_gpus_on_one_node"));
  const double max_gb = NumberOr(Member(would_fit, "max_memory_gb_per_gpu"));
  std::string text;
  if (max_gpus > 0) {
    text = "Would fit now: up to " + Text(Member(would_fit, "max_gpus_on_one_node")) +
           " GPU(s) on one node";
    if (max_gb > 0) text += ", up to " + FormatGb(max_gb) + " GB free per GPU";
  } else if (max_gb > 0) {
    text = "Would fit now: GPUs of this type with up to " + FormatGb(max_gb) + " GB free";
  } else {
    text = "Would fit now: no GPU of the requested type";
  }
  if (!types.empty()) text += "; free GPUs by type: " + types;
  text += "\n";
  const std::string suggestion = String(would_fit, "suggestion", "");
  if (!suggestion.empty()) text += "Suggestion: " + suggestion + "\n";
  return text;
}

}  // namespace

std::string RenderStatus(const json& body) {
  std::string text =
      "As of " + String(body, "timestamp") + ": " + Text(Member(body, "total_nodes")) +
      " node(s), " + Text(Member(body, "total_gpus")) + " GPU(s) (" +
      Text(Member(body, "available_gpus")) + " available, " + Text(Member(body, "allocated_gpus")) +
      " allocated), " + Text(Member(body, "active_allocations")) + " active allocation(s)\n";
  const json& utilization = Member(body, "utilization");
  text +=
      "GPU utilization:  " + PercentBar(NumberOr(Member(utilization, "gpu_utilization"))) + "\n";
  text +=
      "GPU memory usage: " + PercentBar(NumberOr(Member(utilization, "gpu_memory_usage"))) + "\n";
  Table table({"NODE", "TYPE", "AVAILABLE", "MEMORY/GPU", "UTILIZATION"});
  table.SetAlign(2, Table::Align::kRight);
  table.SetAlign(3, Table::Align::kRight);
  for (const json& node : Array(body, "available_nodes")) {
    table.AddRow(
        {String(node, "node_name"), String(node, "gpu_type"), Text(Member(node, "available_gpus")),
         FormatGb(NumberOr(Member(node, "memory_per_gpu"))) + " GB",
         // Null for MIG devices: NVML gives them no utilization.
         Member(node, "utilization").is_number() ? PercentBar(NumberOr(Member(node, "utilization")))
                                                 : "n/a (MIG)"});
  }
  text += "\n";
  text += table.row_count() == 0 ? "No node has a free GPU.\n" : table.Render();
  return text;
}

std::string RenderNodes(const json& body) {
  Table table({"NODE", "GPU", "TYPE", "STATE", "MEMORY USED", "UTIL", "TEMP", "HEALTHY"});
  table.SetAlign(1, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  table.SetAlign(6, Table::Align::kRight);
  const json& nodes = Array(body, "nodes");
  for (const json& node : nodes) {
    const std::string name = String(node, "node_name");
    for (const json& gpu : Array(node, "gpus")) {
      const double total = NumberOr(Member(gpu, "memory_total_gb"));
      const double free = NumberOr(Member(gpu, "memory_free_gb"), total);
      const json& utilization = Member(gpu, "utilization");
      table.AddRow({name, Text(Member(gpu, "index")), String(gpu, "gpu_type", String(gpu, "name")),
                    String(gpu, "state"), MemoryBar(total - free, total),
                    utilization.is_number()
                        ? std::to_string(std::lround(utilization.get<double>() * 100.0)) + "%"
                        : "-",
                    Temperature(Member(gpu, "temperature_c")), Text(Member(gpu, "healthy"))});
    }
  }
  if (nodes.empty()) return "No node matches.\n";
  return table.Render() + std::to_string(nodes.size()) + " node(s)\n";
}

// "exclusive", "shared", or "exclusive, outside use 20.0 GB" (older
// daemons: the exclusive flag).
std::string AccessText(const json& grant) {
  const std::string access = String(grant, "access", "");
  if (access.empty()) return Member(grant, "exclusive") == false ? "shared" : "exclusive";
  if (access == "exclusive_with_outside_processes") {
    return "NOT exclusive: outside use " + FormatGb(NumberOr(Member(grant, "outside_use_gb"))) +
           " GB";
  }
  return access;
}

// One warning line per GPU that processes outside gpurm use.
std::string OutsideUseWarning(const json& grants) {
  std::string text;
  for (const json& grant : grants) {
    if (String(grant, "access", "") != "exclusive_with_outside_processes") continue;
    text += "Warning: " + String(grant, "node_name") + " GPU " + Text(Member(grant, "gpu_index")) +
            " is used by processes outside gpurm (" +
            FormatGb(NumberOr(Member(grant, "outside_use_gb"))) +
            " GB); no GPU free of them fits the request\n";
  }
  return text;
}

std::string RenderAllocated(const json& body) {
  const std::string id = String(body, "allocation_id");
  std::string text = "Allocated " + id + ": " + GrantList(Array(body, "gpus"));
  if (Member(body, "replayed") == true) text += " (replayed: same idempotency key)";
  text += "\n";
  Table table({"NODE", "GPU", "UUID", "MEMORY", "ACCESS"});
  table.SetAlign(1, Table::Align::kRight);
  table.SetAlign(3, Table::Align::kRight);
  for (const json& grant : Array(body, "gpus")) {
    table.AddRow({String(grant, "node_name"), Text(Member(grant, "gpu_index")),
                  String(grant, "gpu_uuid"), FormatGb(NumberOr(Member(grant, "memory_gb"))) + " GB",
                  AccessText(grant)});
  }
  text += table.Render();
  text += OutsideUseWarning(Array(body, "gpus"));
  const json& environment = Member(Member(body, "gpu_config"), "environment");
  if (environment.is_object() && !environment.empty()) {
    text += "Environment:";
    for (const auto& [name, value] : environment.items()) text += " " + name + "=" + Text(value);
    text += "\n";
  }
  const json& lease = Member(Member(body, "allocation"), "lease_expires_at");
  if (lease.is_string()) {
    text += "Lease expires at " + lease.get<std::string>() + "; renew with: gpurm heartbeat " + id +
            "\n";
  }
  return text;
}

std::string RenderValidation(const json& body) {
  std::string text = "Possible now:  " + Text(Member(body, "possible_now")) + "\n" +
                     "Possible ever: " + Text(Member(body, "possible_ever")) + "\n";
  const std::string message = String(body, "message", "");
  if (!message.empty()) text += message + "\n";
  const json& placement = Member(body, "placement");
  if (placement.is_object()) {
    text += "Would get: " + GrantList(Array(placement, "gpus")) + " (policy " +
            String(placement, "policy") + ")\n";
    text += OutsideUseWarning(Array(placement, "gpus"));
  }
  // What would fit instead only matters for a request that does not fit now.
  const bool fits_now = Member(body, "possible_now").is_boolean() && Member(body, "possible_now");
  return text + ReasonLines(body) + (fits_now ? "" : WouldFitLines(body));
}

std::string RenderAllocations(const json& body) {
  Table table({"ID", "OWNER", "STATE", "GPUS", "CREATED", "LEASE EXPIRES"});
  for (const json& allocation : Array(body, "allocations")) {
    table.AddRow({String(allocation, "allocation_id"), String(allocation, "owner"),
                  String(allocation, "state"), GrantList(Array(allocation, "gpus")),
                  String(allocation, "created_at"), String(allocation, "lease_expires_at")});
  }
  return table.row_count() == 0 ? "No allocations.\n" : table.Render();
}

std::string RenderReleased(const json& body) {
  const json& released = Member(body, "released");
  if (released.is_array()) {
    std::string ids;
    for (const json& id : released) ids += " " + Text(id);
    return released.empty() ? "Nothing released.\n" : "Released" + ids + "\n";
  }
  return "Released " + String(Member(body, "allocation"), "allocation_id") + "\n";
}

std::string RenderHeartbeat(const json& body) {
  const json& allocation = Member(body, "allocation");
  const json& lease = Member(allocation, "lease_expires_at");
  return "Renewed " + String(allocation, "allocation_id") + "; " +
         (lease.is_string() ? "lease expires at " + lease.get<std::string>()
                            : std::string("it has no lease")) +
         "\n";
}

std::string RenderPolicies(const json& body) {
  Table table({"POLICY", "DESCRIPTION"});
  const std::string default_policy = String(body, "default", "");
  for (const json& policy : Array(body, "policies")) {
    const std::string name = String(policy, "name");
    table.AddRow(
        {name == default_policy ? name + " (default)" : name, String(policy, "description")});
  }
  return table.row_count() == 0 ? "The daemon lists no placement policy.\n" : table.Render();
}

std::string RenderError(const json& body) {
  const json& error = Member(body, "error");
  std::string text = "Error: " + String(error, "code", "error") + ": " + String(error, "message");
  const std::string field = String(error, "field", "");
  if (!field.empty()) text += " (field: " + field + ")";
  return text + "\n" + ReasonLines(body) + WouldFitLines(body);
}

}  // namespace gpurm::cli
