#include "api/auth.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace gpurm {
namespace {

using nlohmann::json;

// Printable ASCII other than space, '"' and '%' as is; the rest %XX.
std::string Escape(const std::string& value) {
  if (value.empty()) return "-";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c > 0x20 && c < 0x7f && c != '"' && c != '%') {
      out.push_back(static_cast<char>(c));
    } else {
      char buffer[4];
      std::snprintf(buffer, sizeof(buffer), "%%%02X", c);
      out += buffer;
    }
  }
  return out;
}

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

std::string RequestOwner(const HttpRequest& request, const std::string& body_owner) {
  std::string claimed = request.Header("x-gpurm-owner");
  if (claimed.empty()) claimed = body_owner;
  if (request.principal) {
    const bool on_behalf = request.principal->role == Role::kAdmin && !claimed.empty();
    return on_behalf ? claimed : request.principal->name;
  }
  return claimed.empty() ? "anonymous" : claimed;
}

Status MayActOn(const HttpRequest& request, const std::string& owner, const std::string& what) {
  if (!request.principal || request.principal->role == Role::kAdmin ||
      request.principal->name == owner) {
    return Status::Ok();
  }
  return Status(StatusCode::kPermissionDenied, what + " belongs to \"" + owner + "\", not \"" +
                                                   request.principal->name +
                                                   "\"; only its owner or an admin may change it");
}

std::string AuditLine(const HttpRequest& request, const HttpResponse& response) {
  std::string allocation_id;
  std::string queue_id;
  std::string owner;
  if (auto it = request.path_params.find("id"); it != request.path_params.end()) {
    (request.path.find("/queue/") != std::string::npos ? queue_id : allocation_id) = it->second;
  }
  // The answer names what was made or ended: {"allocation_id"}, or
  // {"allocation": {"allocation_id", "owner"}}, or a queue entry
  // {"queue_id", "owner"} (in "entry" when cancelled).
  const json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    const json none;
    const json& allocation = body.contains("allocation") ? body["allocation"] : none;
    const json& entry = body.contains("entry") ? body["entry"] : body;
    for (const json* source : {&body, &allocation, &entry}) {
      if (allocation_id.empty()) allocation_id = StringAt(*source, "allocation_id");
      if (queue_id.empty()) queue_id = StringAt(*source, "queue_id");
      if (owner.empty()) owner = StringAt(*source, "owner");
    }
  }
  std::string line = "identity=" + Escape(request.principal ? request.principal->name : "");
  line += " role=" + std::string(request.principal ? RoleName(request.principal->role) : "-");
  line += " from=" + Escape(request.remote_address);
  line += " method=" + Escape(request.method) + " path=" + Escape(request.path);
  line += " status=" + std::to_string(response.status);
  if (!allocation_id.empty()) line += " allocation=" + Escape(allocation_id);
  if (!queue_id.empty()) line += " queue=" + Escape(queue_id);
  if (!owner.empty()) line += " owner=" + Escape(owner);
  if (!request.principal) {
    // Without access control the claimed owner is all there is to go on.
    const std::string claimed = request.Header("x-gpurm-owner");
    if (!claimed.empty()) line += " claimed_owner=" + Escape(claimed);
  }
  return line;
}

}  // namespace gpurm
