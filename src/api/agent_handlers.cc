#include "api/agent_handlers.h"

#include "api/responses.h"
#include "codec/node_codec.h"
#include "monitor/process_accounting.h"

namespace gpurm {
namespace {

// Who each process is, as this machine's accounting found it; a process
// the latest pass has not seen yet says so.
void AttachIdentities(const ProcessAccountBook::Entry* accounts, Gpu& gpu) {
  const GpuAccount* account = accounts != nullptr ? accounts->Find(gpu.uuid) : nullptr;
  for (GpuProcess& process : gpu.processes) {
    GpuProcess::Identity& identity = process.identity.emplace();
    const ProcessAccount* found = nullptr;
    if (account != nullptr) {
      for (const ProcessAccount& candidate : account->processes) {
        if (candidate.pid == process.pid) found = &candidate;
      }
    }
    if (found == nullptr) {
      identity.unknown_reason = "the agent has not accounted this process yet";
      continue;
    }
    identity.command = found->command;
    identity.uid = found->uid;
    identity.allocation_id = found->allocation_id;
    identity.pod_uid = found->pod_uid;
    if (found->process_class == ProcessClass::kUnknown) identity.unknown_reason = found->reason;
  }
}

HttpResponse AgentSnapshot(const ApiContext& context) {
  const Inventory& inventory = context.manager->inventory();
  const std::shared_ptr<const InventorySnapshot> snapshot = inventory.Snapshot();
  if (!snapshot) return ErrorResponse(Unavailable("the inventory has not been sampled yet"));
  // One server, one node: a daemon with another shape (a controller, a
  // static inventory of many nodes) is no agent, and must not be pulled
  // into another controller's view as one node.
  if (inventory.provider_name() == "agents" || snapshot->nodes.size() != 1) {
    return ErrorResponse(
        Status(StatusCode::kFailedPrecondition,
               "this daemon is not an agent: its inventory (" + inventory.provider_name() +
                   ") has " + std::to_string(snapshot->nodes.size()) +
                   " nodes; an agent is a gpurm serve with local discovery on one server"));
  }
  AgentReport report;
  report.node = snapshot->nodes.front();
  report.taken_unix_ms = snapshot->taken_unix_ms;
  report.stale_gpus = inventory.StaleGpus();
  report.notes = inventory.Notes();
  const std::shared_ptr<const ProcessAccountBook::Entry> accounts =
      context.process_accounts != nullptr ? context.process_accounts->Latest() : nullptr;
  for (Gpu& gpu : report.node.gpus) AttachIdentities(accounts.get(), gpu);
  return JsonResponse(200, EncodeAgentReport(report));
}

}  // namespace

void RegisterAgentRoutes(const ApiContext& context, Router& router) {
  const ApiContext* ctx = &context;
  router.Add("GET", "/api/v1/gpu/agent/snapshot", Access::kAgent,
             [ctx](const HttpRequest&) { return AgentSnapshot(*ctx); });
}

}  // namespace gpurm
