#include "api/event_handlers.h"

#include <cmath>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "api/gpu_views.h"
#include "api/json_codec.h"
#include "api/responses.h"
#include "core/clock.h"
#include "monitor/event_hub.h"

namespace gpurm {
namespace {

using nlohmann::json;

json ReadingToJson(const GpuReading& reading) {
  return {{"utilization", reading.utilization_available ? json(reading.utilization) : json()},
          {"memory_used_gb", RoundGb(reading.memory_used_mib)},
          {"memory_total_gb", RoundGb(reading.memory_total_mib)},
          {"memory_used_ratio", std::round(reading.memory_used_ratio() * 10000.0) / 10000.0},
          {"temperature_c", OptionalNumberJson(reading.temperature_c)},
          {"power_w", OptionalNumberJson(reading.power_w)},
          {"healthy", reading.healthy},
          {"health_reason", reading.health_reason}};
}

json EventFieldsToJson(const GpuEvent& event);

json EventToJson(const GpuEvent& event) {
  json body = EventFieldsToJson(event);
  if (event.process) {
    const ProcessTransition& p = *event.process;
    auto class_or_null = [](const std::string& name) { return name.empty() ? json() : json(name); };
    body["process"] = {{"pid", p.pid},
                       {"command", p.command},
                       {"allocation_id", class_or_null(p.allocation_id)},
                       {"owner", class_or_null(p.owner)},
                       {"memory_used_gb", RoundGb(p.memory_used_mib)},
                       {"class", class_or_null(p.process_class)},
                       {"previous_class", class_or_null(p.previous_class)},
                       {"reason", p.reason}};
    if (event.type == GpuEventType::kEnforcement) body["process"]["action"] = p.action;
  }
  return body;
}

json EventFieldsToJson(const GpuEvent& event) {
  return {{"sequence", event.sequence},
          {"timestamp", FormatIso8601(event.unix_ms)},
          {"type", GpuEventTypeName(event.type)},
          {"node_name", event.node_name},
          {"gpu_index", event.gpu_index},
          {"uuid", event.gpu_uuid},
          {"name", event.model},
          {"changed", event.changed},
          {"current", ReadingToJson(event.current)},
          {"previous", event.previous ? ReadingToJson(*event.previous) : json()}};
}

// An SSE body fed by one event subscription. Start and Pull run on the
// connection's strand; Close may come from any thread (the subscription is
// thread-safe).
class EventStream final : public ResponseStream {
 public:
  EventStream(std::unique_ptr<EventSubscription> subscription, std::string node_filter)
      : subscription_(std::move(subscription)), node_filter_(std::move(node_filter)) {}

  void Start(std::function<void()> wake) override { subscription_->SetNotify(std::move(wake)); }

  std::string Pull(bool* done) override {
    std::string out = std::exchange(preamble_, "");
    // Bounded per pull so one busy stream does not hold its strand for long.
    EventBatch batch = subscription_->Poll(256);
    if (batch.dropped > 0) {
      out += "event: dropped\ndata: " + json{{"dropped", batch.dropped}}.dump() + "\n\n";
    }
    for (const auto& event : batch.events) {
      if (!node_filter_.empty() && event->node_name != node_filter_) continue;
      // Names come from drivers and files: never let one that is not UTF-8
      // throw here, on the I/O strand.
      out += "id: " + std::to_string(event->sequence) +
             "\nevent: " + GpuEventTypeName(event->type) +
             "\ndata: " + EventToJson(*event).dump(-1, ' ', false, json::error_handler_t::replace) +
             "\n\n";
    }
    *done = batch.closed;
    return out;
  }

  std::string KeepAlive() override { return ": keep-alive\n\n"; }

  void Close() override { subscription_->Cancel(); }

 private:
  const std::unique_ptr<EventSubscription> subscription_;
  const std::string node_filter_;
  // Sent first: the reconnection delay for EventSource clients, and a comment
  // so that clients see the stream open before the first event.
  std::string preamble_ = "retry: 5000\n: gpurm GPU events\n\n";
};

HttpResponse Events(EventHub* events, const HttpRequest& request) {
  if (events == nullptr) {
    return ErrorResponse(Unavailable("the event stream is not available in this server"));
  }
  std::string node;
  if (auto it = request.query.find("node"); it != request.query.end()) node = it->second;
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("X-Accel-Buffering", "no");  // Tell nginx not to buffer.
  response.stream = std::make_shared<EventStream>(events->Subscribe(), std::move(node));
  return response;
}

}  // namespace

void RegisterEventRoutes(const ApiContext& context, Router& router) {
  router.Add("GET", "/api/v1/gpu/events",
             [&context](const HttpRequest& request) { return Events(context.events, request); });
}

}  // namespace gpurm
