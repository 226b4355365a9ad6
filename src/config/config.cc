#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <system_error>
#include <vector>

#include "core/placement_policies.h"
#include "strict_yaml/documents.h"
#include "strict_yaml/reader.h"

namespace gpurm {
namespace {

using strict_yaml::Describe;
using strict_yaml::Entries;
using strict_yaml::Entry;
using strict_yaml::List;
using strict_yaml::ReadBool;
using strict_yaml::ReadInt;
using strict_yaml::ReadNumber;
using strict_yaml::ReadString;
using strict_yaml::Section;
using Parser = strict_yaml::Source;

Status ReadThreads(const Parser& parser, const Entry& entry, int* out) {
  int64_t parsed = 0;
  Status status = ReadInt(parser, entry, 1, 64, "an integer from 1 to 64", &parsed);
  if (status.ok()) *out = static_cast<int>(parsed);
  return status;
}

// Entries override the defaults; defaults the file does not name are kept.
Status ReadGpuResource(const Parser& parser, const Entry& section,
                       std::map<std::string, std::string>* out) {
  Result<std::vector<Entry>> entries = Section(parser, section, {});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    std::string name;
    Status status = ReadString(parser, entry, /*allow_empty=*/false, &name);
    if (!status.ok()) return status;
    (*out)[entry.key] = name;
  }
  return Status::Ok();
}

// Keys are canonicalised ("v100" -> "V100") so they match ParseGpuModel's
// canonical names; two spellings of one model in one file are an error.
// Entries override the defaults; defaults the file does not name are kept.
Status ReadMemorySpecs(const Parser& parser, const Entry& section, GpuMemorySpecs* out) {
  Result<std::vector<Entry>> entries = Section(parser, section, {});
  if (!entries.ok()) return entries.status();
  std::map<std::string, const Entry*> seen;
  for (const Entry& entry : *entries) {
    const std::string model = CanonicalGpuType(entry.key);
    if (model.empty()) return parser.Error(entry.mark, entry.path, "expected a GPU model name");
    const auto [previous, inserted] = seen.emplace(model, &entry);
    if (!inserted) {
      return parser.Error(entry.mark, entry.path,
                          "same model as '" + previous->second->key + "' (line " +
                              std::to_string(previous->second->mark.line + 1) + ")");
    }
    double gb = 0;
    Status status = ReadNumber(
        parser, entry, "a positive number of GB", [](double v) { return v > 0; }, &gb);
    if (!status.ok()) return status;
    (*out)[model] = gb;
  }
  return Status::Ok();
}

Status ReadLogLevel(const Parser& parser, const Entry& entry, std::string* out) {
  static constexpr std::array<std::string_view, 7> kLevels = {
      "TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OFF"};
  if (entry.value.IsScalar()) {
    std::string level = entry.value.Scalar();
    std::transform(level.begin(), level.end(), level.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (level == "WARN") level = "WARNING";
    if (std::find(kLevels.begin(), kLevels.end(), level) != kLevels.end()) {
      *out = level;
      return Status::Ok();
    }
  }
  return parser.Error(entry.mark, entry.path,
                      "expected one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL, OFF, got " +
                          Describe(entry.value));
}

bool IsHostName(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string_view inner = host.substr(1, host.size() - 2);
    return !inner.empty() && inner.find(':') != std::string_view::npos &&
           std::all_of(inner.begin(), inner.end(),
                       [](unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; });
  }
  return !host.empty() && std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_';
  });
}

// HOST:PORT with HOST a name, an IPv4 address or a bracketed IPv6 address.
bool IsListenAddress(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view port = listen.substr(colon + 1);
  int port_number = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec != std::errc() || ptr != port.data() + port.size()) return false;
  return port_number >= 1 && port_number <= 65535 && IsHostName(listen.substr(0, colon));
}

// server.tls: the files must be named together (a certificate without its
// key cannot serve); whether they load is checked at start-up, naming the path.
Status ReadTls(const Parser& parser, const Entry& section, TlsConfig* tls) {
  Result<std::vector<Entry>> entries =
      Section(parser, section, {"cert_file", "key_file", "client_ca_file"});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    std::string* out = entry.key == "cert_file"  ? &tls->cert_file
                       : entry.key == "key_file" ? &tls->key_file
                                                 : &tls->client_ca_file;
    Status status = ReadString(parser, entry, /*allow_empty=*/true, out);
    if (!status.ok()) return status;
  }
  if (tls->cert_file.empty() != tls->key_file.empty()) {
    const char* missing = tls->cert_file.empty() ? "cert_file" : "key_file";
    return parser.Error(section.mark, section.path + "." + missing,
                        "required when " +
                            std::string(tls->cert_file.empty() ? "key_file" : "cert_file") +
                            " is set");
  }
  if (!tls->client_ca_file.empty() && tls->cert_file.empty()) {
    return parser.Error(section.mark, section.path + ".cert_file",
                        "required when client_ca_file is set (client certificates need TLS)");
  }
  return Status::Ok();
}

// server.auth: whether the token file loads is checked at start-up, naming
// the path and line.
Status ReadAuth(const Parser& parser, const Entry& section, AuthConfig* auth) {
  Result<std::vector<Entry>> entries =
      Section(parser, section, {"tokens_file", "allow_unauthenticated", "audit_log"});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "tokens_file") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &auth->tokens_file);
    } else if (entry.key == "allow_unauthenticated") {
      status = ReadBool(parser, entry, &auth->allow_unauthenticated);
    } else {  // audit_log
      status = ReadString(parser, entry, /*allow_empty=*/true, &auth->audit_log);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

// server.enforcement: each class's action, from the choices it allows.
Status ReadEnforcement(const Parser& parser, const Entry& section, EnforcementPolicy* policy) {
  Result<std::vector<Entry>> entries =
      Section(parser, section, {"over_grant", "foreign_process", "ended_allocation", "grace_s"});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    if (entry.key == "grace_s") {
      Status status = ReadNumber(
          parser, entry, "a number of seconds >= 0", [](double v) { return v >= 0; },
          &policy->grace_s);
      if (!status.ok()) return status;
      continue;
    }
    // Ignoring over-grant or ended-allocation processes is not offered: those
    // are gpurm's own jobs misbehaving, always worth a line.
    const bool may_ignore = entry.key == "foreign_process";
    EnforcementAction* out = entry.key == "over_grant"        ? &policy->over_grant
                             : entry.key == "foreign_process" ? &policy->foreign_process
                                                              : &policy->ended_allocation;
    const std::string expected = may_ignore ? "ignore, warn or terminate" : "warn or terminate";
    const std::optional<EnforcementAction> action =
        entry.value.IsScalar() ? ParseEnforcementAction(entry.value.Scalar()) : std::nullopt;
    if (!action || (*action == EnforcementAction::kIgnore && !may_ignore)) {
      return parser.Error(entry.mark, entry.path,
                          "expected " + expected + ", got " + Describe(entry.value));
    }
    *out = *action;
  }
  return Status::Ok();
}

// A year: longer leases are not leases.
constexpr int64_t kLongestLeaseTtlS = 365 * 86'400;

// The keys of ServerConfig's "hostile clients" group.
const std::vector<std::string> kHostileClientKeys = {"allowed_hosts",
                                                     "first_request_timeout_s",
                                                     "reserved_connections",
                                                     "max_streams_per_client",
                                                     "stream_send_timeout_s",
                                                     "min_slice_mib",
                                                     "max_priority_without_admin",
                                                     "max_queued_per_owner",
                                                     "max_queued_gpu_hours_per_owner",
                                                     "queue_head_hold_s"};

Status ReadHostList(const Parser& parser, const Entry& entry, std::vector<std::string>* out) {
  if (entry.value.IsNull()) return Status::Ok();
  if (!entry.value.IsSequence()) {
    return parser.Error(entry.mark, entry.path,
                        "expected a list of host names, got " + Describe(entry.value));
  }
  for (const YAML::Node& item : entry.value) {
    if (!item.IsScalar() || item.Scalar().empty() ||
        item.Scalar().find_first_of(" /:@") != std::string::npos) {
      return parser.Error(
          item.Mark(), entry.path,
          "expected a host name (no port, scheme or path) or \"*\", got " + Describe(item));
    }
    out->push_back(item.Scalar());
  }
  return Status::Ok();
}

// One key of kHostileClientKeys.
Status ReadHostileClientKey(const Parser& parser, const Entry& entry, ServerConfig* server) {
  const auto positive = [](double v) { return v > 0; };
  if (entry.key == "allowed_hosts") return ReadHostList(parser, entry, &server->allowed_hosts);
  if (entry.key == "first_request_timeout_s") {
    return ReadNumber(parser, entry, "a positive number of seconds", positive,
                      &server->first_request_timeout_s);
  }
  if (entry.key == "reserved_connections") {
    return ReadInt(parser, entry, 0, 1'000, "an integer from 0 to 1000",
                   &server->reserved_connections);
  }
  if (entry.key == "max_streams_per_client") {
    return ReadInt(parser, entry, 0, 1'000'000, "an integer from 0 (no cap) to 1000000",
                   &server->max_streams_per_client);
  }
  if (entry.key == "stream_send_timeout_s") {
    return ReadNumber(parser, entry, "a positive number of seconds", positive,
                      &server->stream_send_timeout_s);
  }
  if (entry.key == "min_slice_mib") {
    return ReadInt(parser, entry, 1, 1 << 20, "a number of MiB from 1 to 1048576",
                   &server->min_slice_mib);
  }
  if (entry.key == "max_priority_without_admin") {
    return ReadInt(parser, entry, -1000, 1000, "a priority from -1000 to 1000",
                   &server->max_priority_without_admin);
  }
  if (entry.key == "max_queued_per_owner") {
    return ReadInt(parser, entry, 0, 1'000'000, "an integer from 0 (no cap) to 1000000",
                   &server->max_queued_per_owner);
  }
  if (entry.key == "max_queued_gpu_hours_per_owner") {
    return ReadNumber(
        parser, entry, "a number of GPU-hours >= 0 (0 = no cap)", [](double v) { return v >= 0; },
        &server->max_queued_gpu_hours_per_owner);
  }
  return ReadNumber(parser, entry, "a positive number of seconds", positive,  // queue_head_hold_s
                    &server->queue_head_hold_s);
}

Status ReadServer(const Parser& parser, const Entry& section, ServerConfig* server) {
  std::vector<std::string> known = {"listen",
                                    "data_dir",
                                    "log_dir",
                                    "inventory",
                                    "policy",
                                    "max_body_bytes",
                                    "io_threads",
                                    "worker_threads",
                                    "request_timeout_s",
                                    "lease_check_interval_s",
                                    "monitor_history_s",
                                    "monitor_sample_timeout_s",
                                    "max_header_bytes",
                                    "header_timeout_s",
                                    "idle_timeout_s",
                                    "max_connections",
                                    "max_connections_per_client",
                                    "rate_limit_rps",
                                    "rate_limit_burst",
                                    "tls",
                                    "auth",
                                    "max_allocations_per_owner",
                                    "default_lease_ttl_s",
                                    "max_lease_ttl_s",
                                    "dcgm_compatible_metrics",
                                    "enforcement"};
  known.insert(known.end(), kHostileClientKeys.begin(), kHostileClientKeys.end());
  Result<std::vector<Entry>> entries = Section(parser, section, known);
  if (!entries.ok()) return entries.status();
  const auto positive = [](double v) { return v > 0; };
  const auto non_negative = [](double v) { return v >= 0; };
  const Entry* default_lease_entry = nullptr;  // For the error of a default beyond the maximum.
  for (const Entry& entry : *entries) {
    Status status;
    if (std::find(kHostileClientKeys.begin(), kHostileClientKeys.end(), entry.key) !=
        kHostileClientKeys.end()) {
      status = ReadHostileClientKey(parser, entry, server);
    } else if (entry.key == "tls") {
      status = ReadTls(parser, entry, &server->tls);
    } else if (entry.key == "auth") {
      status = ReadAuth(parser, entry, &server->auth);
    } else if (entry.key == "default_lease_ttl_s") {
      status = ReadInt(parser, entry, 0, kLongestLeaseTtlS,
                       "a whole number of seconds from 0 (no lease) to 31536000",
                       &server->default_lease_ttl_s);
      default_lease_entry = &entry;
    } else if (entry.key == "max_lease_ttl_s") {
      status = ReadInt(parser, entry, 0, kLongestLeaseTtlS,
                       "a whole number of seconds from 0 (no maximum) to 31536000",
                       &server->max_lease_ttl_s);
    } else if (entry.key == "dcgm_compatible_metrics") {
      status = ReadBool(parser, entry, &server->dcgm_compatible_metrics);
    } else if (entry.key == "enforcement") {
      status = ReadEnforcement(parser, entry, &server->enforcement);
    } else if (entry.key == "max_allocations_per_owner") {
      status = ReadInt(parser, entry, 0, 1'000'000, "an integer from 0 (no cap) to 1000000",
                       &server->max_allocations_per_owner);
    } else if (entry.key == "max_header_bytes") {
      status = ReadInt(parser, entry, 1024, 1 << 20, "a number of bytes from 1024 to 1048576",
                       &server->max_header_bytes);
    } else if (entry.key == "header_timeout_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &server->header_timeout_s);
    } else if (entry.key == "idle_timeout_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &server->idle_timeout_s);
    } else if (entry.key == "max_connections") {
      status = ReadInt(parser, entry, 1, 1'000'000, "an integer from 1 to 1000000",
                       &server->max_connections);
    } else if (entry.key == "max_connections_per_client") {
      int64_t cap = 0;
      status = ReadInt(parser, entry, 0, 1'000'000, "an integer from 0 (no cap) to 1000000", &cap);
      server->max_connections_per_client = cap;
    } else if (entry.key == "rate_limit_rps") {
      status = ReadNumber(parser, entry, "a number of requests per second >= 0 (0 = no limit)",
                          non_negative, &server->rate_limit_rps);
    } else if (entry.key == "rate_limit_burst") {
      status = ReadNumber(parser, entry, "a number of requests >= 0", non_negative,
                          &server->rate_limit_burst);
    } else if (entry.key == "listen") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &server->listen);
      if (status.ok() && !IsListenAddress(server->listen)) {
        status = parser.Error(
            entry.mark, entry.path,
            "expected HOST:PORT with a port from 1 to 65535, got " + Describe(entry.value));
      }
    } else if (entry.key == "data_dir") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &server->data_dir);
    } else if (entry.key == "log_dir") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &server->log_dir);
    } else if (entry.key == "inventory") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &server->inventory);
    } else if (entry.key == "policy") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &server->policy);
      if (status.ok() && FindPlacementPolicyInfo(server->policy) == nullptr) {
        status = parser.Error(
            entry.mark, entry.path,
            "expected one of " + PlacementPolicyNameList() + ", got " + Describe(entry.value));
      }
    } else if (entry.key == "max_body_bytes") {
      status = ReadInt(parser, entry, 1, INT64_MAX, "a positive number of bytes",
                       &server->max_body_bytes);
    } else if (entry.key == "io_threads") {
      status = ReadThreads(parser, entry, &server->io_threads);
    } else if (entry.key == "worker_threads") {
      status = ReadThreads(parser, entry, &server->worker_threads);
    } else if (entry.key == "request_timeout_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &server->request_timeout_s);
    } else if (entry.key == "lease_check_interval_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &server->lease_check_interval_s);
    } else if (entry.key == "monitor_history_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &server->monitor_history_s);
    } else {  // monitor_sample_timeout_s
      // The deadline is kept in whole milliseconds: below one, every GPU
      // would be stale on every pass.
      status = ReadNumber(
          parser, entry, "a number of seconds >= 0.001", [](double v) { return v >= 0.001; },
          &server->monitor_sample_timeout_s);
    }
    if (!status.ok()) return status;
  }
  // Every allocation's lease is within the maximum, the default's too.
  const bool unbounded_default = server->default_lease_ttl_s == 0;
  if (server->max_lease_ttl_s > 0 &&
      (unbounded_default || server->default_lease_ttl_s > server->max_lease_ttl_s)) {
    const Entry& at = default_lease_entry != nullptr ? *default_lease_entry : section;
    return parser.Error(
        at.mark, section.path + ".default_lease_ttl_s",
        std::string(unbounded_default ? "0 (no lease) needs max_lease_ttl_s: 0 (it is "
                                      : "must be at most max_lease_ttl_s (") +
            std::to_string(server->max_lease_ttl_s) + ")");
  }
  return Status::Ok();
}

Status ReadKubernetes(const Parser& parser, const Entry& section, KubernetesConfig* kubernetes) {
  Result<std::vector<Entry>> entries =
      Section(parser, section,
              {"enabled", "kubeconfig", "context", "namespace", "lease_name", "lease_duration_s",
               "renew_deadline_s", "retry_period_s", "node_agent_selector", "node_agent_scheme"});
  if (!entries.ok()) return entries.status();
  const auto positive = [](double v) { return v > 0; };
  const Entry* renew_entry = nullptr;
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "enabled") {
      const std::string text = entry.value.IsScalar() ? entry.value.Scalar() : "";
      if (text == "true" || text == "false") {
        kubernetes->enabled = text == "true";
      } else {
        status = parser.Error(entry.mark, entry.path,
                              "expected true or false, got " + Describe(entry.value));
      }
    } else if (entry.key == "kubeconfig") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &kubernetes->kubeconfig);
    } else if (entry.key == "context") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &kubernetes->context);
    } else if (entry.key == "namespace") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &kubernetes->namespace_name);
    } else if (entry.key == "lease_name") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &kubernetes->lease_name);
    } else if (entry.key == "lease_duration_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &kubernetes->lease_duration_s);
    } else if (entry.key == "renew_deadline_s") {
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &kubernetes->renew_deadline_s);
      renew_entry = &entry;
    } else if (entry.key == "node_agent_selector") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &kubernetes->node_agent_selector);
      if (status.ok() &&
          kubernetes->node_agent_selector.find_first_of(" \t") != std::string::npos) {
        status = parser.Error(entry.mark, entry.path,
                              "expected a label selector without spaces, such as "
                              "app.kubernetes.io/component=node-monitor");
      }
    } else if (entry.key == "node_agent_scheme") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &kubernetes->node_agent_scheme);
      if (status.ok() && kubernetes->node_agent_scheme != "http" &&
          kubernetes->node_agent_scheme != "https") {
        status = parser.Error(entry.mark, entry.path,
                              "expected http or https, got " + kubernetes->node_agent_scheme);
      }
    } else {  // retry_period_s
      status = ReadNumber(parser, entry, "a positive number of seconds", positive,
                          &kubernetes->retry_period_s);
    }
    if (!status.ok()) return status;
  }
  // A leader must give up before another replica may take the Lease.
  if (kubernetes->renew_deadline_s >= kubernetes->lease_duration_s) {
    const Entry& at = renew_entry != nullptr ? *renew_entry : section;
    return parser.Error(at.mark, section.path + ".renew_deadline_s",
                        "must be less than lease_duration_s (" +
                            std::to_string(kubernetes->lease_duration_s) + ")");
  }
  return Status::Ok();
}

Status ReadAgent(const Parser& parser, const YAML::Node& item, const std::string& path,
                 AgentConfig* agent) {
  if (!item.IsMap()) {
    return parser.Error(item.Mark(), path,
                        "expected a mapping with name and url, got " + Describe(item));
  }
  Result<std::vector<Entry>> entries = Entries(parser, item, path, {"name", "url"});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    std::string* out = entry.key == "name" ? &agent->name : &agent->url;
    if (Status status = ReadString(parser, entry, /*allow_empty=*/false, out); !status.ok()) {
      return status;
    }
    if (entry.key == "url" && agent->url.rfind("http://", 0) != 0 &&
        agent->url.rfind("https://", 0) != 0) {
      return parser.Error(entry.mark, entry.path,
                          "expected an http:// or https:// URL, got " + Describe(entry.value));
    }
  }
  if (agent->name.empty()) {
    return parser.Error(item.Mark(), path + ".name", "missing; every agent needs a node name");
  }
  if (agent->url.empty()) {
    return parser.Error(item.Mark(), path + ".url", "missing; every agent needs a url");
  }
  return Status::Ok();
}

Status ReadController(const Parser& parser, const Entry& section, ControllerConfig* controller) {
  Result<std::vector<Entry>> entries =
      Section(parser, section, {"agents", "token_file", "ca_file", "request_timeout_s"});
  if (!entries.ok()) return entries.status();
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "agents") {
      Result<YAML::Node> items = List(parser, entry);
      if (!items.ok()) return items.status();
      std::map<std::string, std::string> paths_by_name;
      for (size_t i = 0; i < items->size(); ++i) {
        const std::string path = entry.path + "[" + std::to_string(i) + "]";
        AgentConfig& agent = controller->agents.emplace_back();
        status = ReadAgent(parser, (*items)[i], path, &agent);
        if (!status.ok()) return status;
        const auto [first, inserted] = paths_by_name.emplace(agent.name, path);
        if (!inserted) {
          return parser.Error((*items)[i].Mark(), path + ".name",
                              "node '" + agent.name + "' is already " + first->second);
        }
      }
    } else if (entry.key == "token_file") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &controller->token_file);
    } else if (entry.key == "ca_file") {
      status = ReadString(parser, entry, /*allow_empty=*/true, &controller->ca_file);
    } else {  // request_timeout_s
      status = ReadNumber(
          parser, entry, "a positive number of seconds", [](double v) { return v > 0; },
          &controller->request_timeout_s);
    }
    if (!status.ok()) return status;
  }
  return Status::Ok();
}

Status ReadTopLevel(const Parser& parser, const YAML::Node& root, Config* config) {
  Result<std::vector<Entry>> entries = Entries(
      parser, root, "",
      {"gpu_resource", "default_gpu_resource_name", "gpu_memory_specs", "monitor_update_interval",
       "resource_change_threshold", "log_level", "server", "kubernetes", "controller"});
  if (!entries.ok()) return entries.status();
  const Entry* controller_entry = nullptr;
  for (const Entry& entry : *entries) {
    Status status;
    if (entry.key == "gpu_resource") {
      status = ReadGpuResource(parser, entry, &config->gpu_resource);
    } else if (entry.key == "default_gpu_resource_name") {
      status = ReadString(parser, entry, /*allow_empty=*/false, &config->default_gpu_resource_name);
    } else if (entry.key == "gpu_memory_specs") {
      status = ReadMemorySpecs(parser, entry, &config->gpu_memory_specs);
    } else if (entry.key == "monitor_update_interval") {
      status = ReadNumber(
          parser, entry, "a positive number of seconds", [](double v) { return v > 0; },
          &config->monitor_update_interval);
    } else if (entry.key == "resource_change_threshold") {
      status = ReadNumber(
          parser, entry, "a fraction from 0 to 1", [](double v) { return v >= 0 && v <= 1; },
          &config->resource_change_threshold);
    } else if (entry.key == "log_level") {
      status = ReadLogLevel(parser, entry, &config->log_level);
    } else if (entry.key == "server") {
      status = ReadServer(parser, entry, &config->server);
    } else if (entry.key == "kubernetes") {
      status = ReadKubernetes(parser, entry, &config->kubernetes);
    } else {  // controller
      status = ReadController(parser, entry, &config->controller);
      controller_entry = &entry;
    }
    if (!status.ok()) return status;
  }
  // One inventory source: the agents, a static file, or the cluster.
  if (controller_entry != nullptr && !config->controller.agents.empty()) {
    if (!config->server.inventory.empty()) {
      return parser.Error(controller_entry->mark, "controller.agents",
                          "cannot be used with server.inventory (one inventory source: the "
                          "agents or the static file)");
    }
    if (config->kubernetes.enabled) {
      return parser.Error(controller_entry->mark, "controller.agents",
                          "cannot be used with kubernetes.enabled (in Kubernetes mode the "
                          "inventory comes from the cluster)");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(std::string_view yaml_text, std::string_view source_name) {
  const Parser parser(source_name);
  try {
    const YamlDocuments documents = LoadYamlDocuments(yaml_text);
    Config config;
    if (documents.count == 0) return config;  // Empty or comments only: all defaults.
    if (documents.count > 1) {
      return InvalidArgument(parser.Where(documents.second_start) +
                             "expected one YAML document, found more");
    }
    const YAML::Node& root = documents.first;
    if (root.IsNull()) return config;
    if (!root.IsMap()) {
      return InvalidArgument(parser.Where(root.Mark()) +
                             "expected a mapping of configuration keys, got " + Describe(root));
    }
    Status status = ReadTopLevel(parser, root, &config);
    if (!status.ok()) return status;
    return config;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(parser.Where(e.mark) + "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(parser.Where(YAML::Mark::null_mark()) + "cannot parse: " + e.what());
  }
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument("cannot read config file '" + path + "': it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InvalidArgument("cannot read config file '" + path +
                           "': " + std::generic_category().message(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return InvalidArgument("cannot read config file '" + path + "': read error");
  return ParseConfig(text.str(), path);
}

}  // namespace gpurm
