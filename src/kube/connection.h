// How to reach and authenticate to a Kubernetes API server: from the pod's
// service account (in-cluster) or from a kubeconfig file. Pure loading, no
// network I/O.
#ifndef GPURM_KUBE_CONNECTION_H_
#define GPURM_KUBE_CONNECTION_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace gpurm::kube {

// Everything a request needs. PEM fields hold the certificate text itself;
// file fields name files read by libcurl on each new connection.
struct Connection {
  std::string server;  // "https://10.0.0.1:443" (no trailing slash).
  std::string ca_file;
  std::string ca_pem;
  bool insecure_skip_tls_verify = false;
  // Bearer token, either fixed or read from `token_file` before every request
  // (projected service-account tokens are rotated by the kubelet).
  std::string token;
  std::string token_file;
  std::string client_cert_file;
  std::string client_cert_pem;
  std::string client_key_file;
  std::string client_key_pem;
  // The namespace the kubeconfig context or the service account names;
  // "default" when neither does.
  std::string default_namespace = "default";
};

// Where the in-cluster credentials live; tests point these elsewhere.
struct InClusterPaths {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

// The pod's service account: $KUBERNETES_SERVICE_HOST/_PORT and the mounted
// token and CA. kUnavailable when not running in a pod.
Result<Connection> InClusterConnection(const InClusterPaths& paths = {});

// A kubeconfig file (the `kubectl` format): the cluster and user of
// `context`, or of current-context when empty. Supports server,
// certificate-authority(-data), insecure-skip-tls-verify, token, tokenFile,
// client-certificate(-data) and client-key(-data); exec and auth-provider
// plugins are refused with kInvalidArgument naming them. Relative paths are
// relative to the kubeconfig's directory, as kubectl resolves them.
Result<Connection> LoadKubeconfig(const std::string& path, std::string_view context = "");

// Standard base64 (padding optional, whitespace ignored); kInvalidArgument
// on other characters.
Result<std::string> DecodeBase64(std::string_view text);

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_CONNECTION_H_
