#include "kube/connection.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace gpurm::kube {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Unavailable("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// The entry of a kubeconfig list ("clusters", "users", "contexts") whose
// name is `name`, or an undefined node.
YAML::Node Named(const YAML::Node& root, const char* list, const std::string& name) {
  const YAML::Node entries = root[list];
  if (!entries || !entries.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const YAML::Node& entry : entries) {
    if (entry["name"] && entry["name"].as<std::string>() == name) return entry;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string StringField(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap() || !map[key] || !map[key].IsScalar()) return "";
  return map[key].as<std::string>();
}

std::string Resolve(const std::filesystem::path& base, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (base / path).string();
}

}  // namespace

Result<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int value;
    if (c >= 'A' && c <= 'Z') {
      value = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      value = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      value = c - '0' + 52;
    } else if (c == '+') {
      value = 62;
    } else if (c == '/') {
      value = 63;
    } else if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') {
      continue;
    } else {
      return InvalidArgument("not base64: unexpected character '" + std::string(1, c) + "'");
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

Result<Connection> InClusterConnection(const InClusterPaths& paths) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0' || *port == '\0') {
    return Unavailable(
        "not running in a Kubernetes pod (KUBERNETES_SERVICE_HOST/_PORT unset); set "
        "kubernetes.kubeconfig in gpu_config.yaml");
  }
  Connection connection;
  std::string host_text = host;
  if (host_text.find(':') != std::string::npos) host_text = "[" + host_text + "]";  // IPv6.
  connection.server = "https://" + host_text + ":" + port;
  if (!std::filesystem::exists(paths.token_file)) {
    return Unavailable("service account token " + paths.token_file +
                       " is missing (automountServiceAccountToken: false?)");
  }
  connection.token_file = paths.token_file;
  connection.ca_file = paths.ca_file;
  if (Result<std::string> ns = ReadFile(paths.namespace_file); ns.ok() && !Trim(*ns).empty()) {
    connection.default_namespace = Trim(*ns);
  }
  return connection;
}

Result<Connection> LoadKubeconfig(const std::string& path, std::string_view context) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return InvalidArgument("kubeconfig: " + text.status().message());
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  try {
    const YAML::Node root = YAML::Load(*text);
    if (!root.IsMap()) return InvalidArgument("kubeconfig " + path + ": not a mapping");
    const std::string context_name =
        context.empty() ? StringField(root, "current-context") : std::string(context);
    if (context_name.empty()) {
      return InvalidArgument("kubeconfig " + path + ": no current-context and none given");
    }
    const YAML::Node context_entry = Named(root, "contexts", context_name);
    if (!context_entry) {
      return InvalidArgument("kubeconfig " + path + ": no context named \"" + context_name + "\"");
    }
    const YAML::Node ctx = context_entry["context"];
    const std::string cluster_name = StringField(ctx, "cluster");
    const std::string user_name = StringField(ctx, "user");
    const YAML::Node cluster_entry = Named(root, "clusters", cluster_name);
    if (!cluster_entry) {
      return InvalidArgument("kubeconfig " + path + ": context \"" + context_name +
                             "\" names unknown cluster \"" + cluster_name + "\"");
    }
    const YAML::Node cluster = cluster_entry["cluster"];
    Connection connection;
    connection.server = StringField(cluster, "server");
    while (!connection.server.empty() && connection.server.back() == '/') {
      connection.server.pop_back();
    }
    if (connection.server.empty()) {
      return InvalidArgument("kubeconfig " + path + ": cluster \"" + cluster_name +
                             "\" has no server");
    }
    connection.ca_file = Resolve(base, StringField(cluster, "certificate-authority"));
    if (const std::string data = StringField(cluster, "certificate-authority-data");
        !data.empty()) {
      Result<std::string> pem = DecodeBase64(data);
      if (!pem.ok())
        return InvalidArgument("kubeconfig certificate-authority-data: " + pem.status().message());
      connection.ca_pem = *pem;
    }
    connection.insecure_skip_tls_verify =
        StringField(cluster, "insecure-skip-tls-verify") == "true";
    if (const std::string ns = StringField(ctx, "namespace"); !ns.empty()) {
      connection.default_namespace = ns;
    }
    if (!user_name.empty()) {
      const YAML::Node user_entry = Named(root, "users", user_name);
      if (!user_entry) {
        return InvalidArgument("kubeconfig " + path + ": context \"" + context_name +
                               "\" names unknown user \"" + user_name + "\"");
      }
      const YAML::Node user = user_entry["user"];
      for (const char* plugin : {"exec", "auth-provider"}) {
        if (user && user.IsMap() && user[plugin]) {
          return InvalidArgument("kubeconfig " + path + ": user \"" + user_name + "\" uses " +
                                 plugin +
                                 " credentials, which gpurm does not run; use a token, a "
                                 "tokenFile or a client certificate");
        }
      }
      connection.token = StringField(user, "token");
      connection.token_file = Resolve(base, StringField(user, "tokenFile"));
      connection.client_cert_file = Resolve(base, StringField(user, "client-certificate"));
      connection.client_key_file = Resolve(base, StringField(user, "client-key"));
      for (auto [key, out] : {std::pair{"client-certificate-data", &connection.client_cert_pem},
                              std::pair{"client-key-data", &connection.client_key_pem}}) {
        if (const std::string data = StringField(user, key); !data.empty()) {
          Result<std::string> pem = DecodeBase64(data);
          if (!pem.ok()) {
            return InvalidArgument(std::string("kubeconfig ") + key + ": " +
                                   pem.status().message());
          }
          *out = *pem;
        }
      }
    }
    return connection;
  } catch (const std::exception& e) {
    return InvalidArgument("kubeconfig " + path + ": " + e.what());
  }
}

}  // namespace gpurm::kube
