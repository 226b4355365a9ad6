#include "cli/queue_command.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/json_view.h"
#include "cli/table.h"

namespace gpurm::cli {
namespace {

using nlohmann::json;

// "2 x T4", "1 x any GPU (0.47 GPU)".
std::string DescribeRequest(const json& request) {
  if (!request.is_object()) return "-";
  const std::string type = String(request, "gpu_type", "");
  std::string text = String(request, "gpu_count", "?") + " x " + (type.empty() ? "any GPU" : type);
  const int milli = request.value("gpu_milli", 0);
  if (milli > 0 && milli < 1000) {
    text += " (" + std::to_string(milli / 1000.0).substr(0, 4) + " GPU)";
  }
  if (request.value("distributed_training", false)) text += ", distributed";
  return text;
}

// Cuts long text to `width` code points (a reason can be a paragraph).
std::string Shorten(const std::string& text, size_t width) {
  if (DisplayWidth(text) <= width) return text;
  return text.substr(0, width - 3) + "...";
}

struct QueueFlags {
  bool all = false;
  std::string id;
};

int Send(const QueueGlobals& globals, const char* method, const std::string& path,
         std::string (*render)(const json&), std::ostream& out, std::ostream& err) {
  HttpClientOptions options;
  options.base_url = globals.url;
  const double seconds = std::min(globals.timeout_s, 86'400.0);
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
  const HttpClient client(std::move(options));
  Result<HttpResponse> response =
      std::string(method) == "DELETE" ? client.Delete(path) : client.Get(path);
  if (!response.ok()) {
    err << "gpurm: " << response.status().message() << "\n";
    return kExitUnavailable;
  }
  if (!response->body.is_object()) {
    err << "gpurm: unexpected answer from " << client.base_url() << " (HTTP " << response->status
        << "): " << response->raw_body.substr(0, 200) << "\n";
    return kExitUnavailable;
  }
  const int code = ExitCodeForHttpStatus(response->status);
  if (globals.output == "json") {
    out << response->body.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else if (code == kExitOk) {
    out << render(response->body);
  } else {
    const json& error = response->body.value("error", json::object());
    err << "Error: " << String(error, "code", "error") << ": " << String(error, "message", "")
        << "\n";
  }
  return code;
}

std::string RenderCancelled(const json& body) {
  const json& entry = body.value("entry", json::object());
  return std::string(body.value("cancelled", false) ? "Cancelled " : "Not waiting any more: ") +
         String(entry, "queue_id") + " (" + String(entry, "state") + ")\n";
}

}  // namespace

std::string RenderQueue(const json& queue) {
  const json& entries = queue.value("queue", json::array());
  if (!entries.is_array() || entries.empty()) return "No requests are waiting.\n";
  Table table({"POS", "QUEUE ID", "STATE", "OWNER", "PRIORITY", "REQUEST", "EXPIRES", "WHY"});
  table.SetAlign(0, Table::Align::kRight);
  table.SetAlign(4, Table::Align::kRight);
  for (const json& entry : entries) {
    const int position = entry.value("position", 0);
    const std::string state = String(entry, "state");
    table.AddRow({position > 0 ? std::to_string(position) : "-", String(entry, "queue_id"), state,
                  String(entry, "owner"), String(entry, "priority"),
                  DescribeRequest(entry.value("request", json())),
                  state == "waiting" ? String(entry, "expires_at") : String(entry, "ended_at"),
                  state == "granted" ? "granted as " + String(entry, "allocation_id")
                                     : Shorten(String(entry, "message", ""), 60)});
  }
  return table.Render() + std::to_string(queue.value("waiting", 0)) + " waiting\n";
}

std::string RenderQueueEntry(const json& entry) {
  std::string text = "Queue entry " + String(entry, "queue_id") + ": " + String(entry, "state");
  if (entry.value("position", 0) > 0) text += " (position " + String(entry, "position") + ")";
  text += "\nRequest:  " + DescribeRequest(entry.value("request", json())) + ", priority " +
          String(entry, "priority") + ", owner " + String(entry, "owner") + "\n";
  text += "Enqueued: " + String(entry, "enqueued_at") + "; expires " + String(entry, "expires_at") +
          "\n";
  if (!String(entry, "message", "").empty()) text += "Why:      " + String(entry, "message") + "\n";
  const json& allocation = entry.value("allocation", json());
  if (allocation.is_object()) {
    text += "Allocation " + String(allocation, "allocation_id") + " on " +
            String(allocation, "node_name") + ": GPUs";
    for (const json& gpu : allocation.value("gpus", json::array())) {
      text += " " + String(gpu, "node_name") + "/" + String(gpu, "gpu_index");
    }
    text += "\n";
  }
  return text;
}

void RegisterQueueCommand(CLI::App& app, int* exit_code,
                          const std::function<QueueGlobals()>& globals, std::ostream& out,
                          std::ostream& err) {
  auto flags = std::make_shared<QueueFlags>();
  CLI::App* queue = app.add_subcommand("queue", "Requests waiting for GPUs (\"wait\": true)");
  queue->fallthrough();
  queue->add_flag("--all", flags->all, "Include recently granted, expired and cancelled ones");
  CLI::App* show = queue->add_subcommand("show", "One waiting or recently finished request");
  show->fallthrough();
  show->add_option("id", flags->id, "Queue ID")->required();
  CLI::App* cancel = queue->add_subcommand("cancel", "Stop waiting");
  cancel->fallthrough();
  cancel->add_option("id", flags->id, "Queue ID")->required();

  const std::string base = "/api/v1/gpu/queue";
  queue->callback([=, &out, &err] {
    if (show->parsed() || cancel->parsed()) return;
    *exit_code =
        Send(globals(), "GET", base + (flags->all ? "?all=true" : ""), &RenderQueue, out, err);
  });
  show->callback([=, &out, &err] {
    *exit_code = Send(globals(), "GET", base + "/" + flags->id, &RenderQueueEntry, out, err);
  });
  cancel->callback([=, &out, &err] {
    *exit_code = Send(globals(), "DELETE", base + "/" + flags->id, &RenderCancelled, out, err);
  });
}

}  // namespace gpurm::cli
