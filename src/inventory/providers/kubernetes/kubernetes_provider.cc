#include "inventory/providers/kubernetes/kubernetes_provider.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "kube/quantity.h"

namespace gpurm {
namespace {

using nlohmann::json;

constexpr const char* kWellKnownResources[] = {
    "nvidia.com/gpu",       "amd.com/gpu",          "gpu.intel.com/i915", "gpu.intel.com/xe",
    "huawei.com/Ascend910", "huawei.com/Ascend310", "huawei.com/npu",
};

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// GPU Feature Discovery's mixed MIG strategy: one extended resource per MIG
// profile, "nvidia.com/mig-3g.40gb".
constexpr std::string_view kMigResourcePrefix = "nvidia.com/mig-";

bool IsMigResource(std::string_view resource) {
  return StartsWith(resource, kMigResourcePrefix) && resource.size() > kMigResourcePrefix.size();
}

std::string Label(const json& node, const std::string& key) {
  const json& labels = node["metadata"].value("labels", json::object());
  auto it = labels.find(key);
  return it != labels.end() && it->is_string() ? it->get<std::string>() : "";
}

// The first label whose key starts with `prefix` + "." (AMD's labeller
// writes "amd.com/gpu.product-name.<value>=<count>" on mixed nodes).
std::string FirstLabelSuffix(const json& node, const std::string& prefix) {
  const json& labels = node["metadata"].value("labels", json::object());
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    if (StartsWith(it.key(), prefix + ".")) return it.key().substr(prefix.size() + 1);
  }
  return "";
}

std::optional<double> Quantity(const json& map, const std::string& resource) {
  if (!map.is_object()) return std::nullopt;
  auto it = map.find(resource);
  if (it == map.end() || !it->is_string()) return std::nullopt;
  return kube::ParseQuantity(it->get<std::string>());
}

std::optional<int64_t> Integer(const std::string& text) {
  if (text.empty()) return std::nullopt;
  const std::optional<double> value = kube::ParseQuantity(text);
  if (!value || *value < 0) return std::nullopt;
  return static_cast<int64_t>(std::llround(*value));
}

std::string Replace(std::string text, char from, char to) {
  std::replace(text.begin(), text.end(), from, to);
  return text;
}

// Model name and memory (MiB, 0 = unknown) of the GPUs behind `resource`
// on `node`, from the vendor's labels.
struct LabelledModel {
  std::string name;
  int64_t memory_mib = 0;
  std::string note;  // Something the operator should know, or "".
};

LabelledModel ModelFromLabels(const json& node, const std::string& resource, int64_t count) {
  LabelledModel model;
  const std::string node_name = node["metadata"].value("name", "");
  if (IsMigResource(resource)) {
    // GFD (mixed strategy) labels each profile: "<resource>.product" is
    // "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", "<resource>.memory" its MiB.
    std::string product = Label(node, resource + ".product");
    if (product.empty()) {
      const std::string gpu = Label(node, "nvidia.com/gpu.product");
      product =
          (gpu.empty() ? "NVIDIA" : gpu) + "-MIG-" + resource.substr(kMigResourcePrefix.size());
    }
    model.name = Replace(product, '-', ' ');
    model.memory_mib = Integer(Label(node, resource + ".memory")).value_or(0);
  } else if (StartsWith(resource, "nvidia.com/")) {
    // GFD writes the product with '-' for spaces and adds "-SHARED" when the
    // GPUs are time-sliced.
    std::string product = Label(node, "nvidia.com/gpu.product");
    if (product.size() > 7 && product.ends_with("-SHARED")) product.resize(product.size() - 7);
    model.name = Replace(product, '-', ' ');
    model.memory_mib = Integer(Label(node, "nvidia.com/gpu.memory")).value_or(0);
  } else if (StartsWith(resource, "amd.com/")) {
    std::string product = Label(node, "amd.com/gpu.product-name");
    std::string vram = Label(node, "amd.com/gpu.vram");
    if (product.empty()) {
      product = FirstLabelSuffix(node, "amd.com/gpu.product-name");
      if (!product.empty()) {
        model.note = node_name + ": AMD GPUs of several models; all are taken as " + product;
      }
    }
    if (vram.empty()) vram = FirstLabelSuffix(node, "amd.com/gpu.vram");
    model.name = Replace(product, '_', ' ');
    // The labeller rounds VRAM to whole GiB ("64G").
    if (vram.size() > 1 && vram.back() == 'G') {
      model.memory_mib = Integer(vram.substr(0, vram.size() - 1)).value_or(0) * 1024;
    }
  } else if (StartsWith(resource, "gpu.intel.com/") || StartsWith(resource, "intel.com/")) {
    const std::string product = Label(node, "gpu.intel.com/product");
    if (!product.empty()) model.name = "Intel Data Center GPU " + Replace(product, '_', ' ');
    // memory.max is the bytes of all the node's GPUs.
    const std::optional<int64_t> bytes = Integer(Label(node, "gpu.intel.com/memory.max"));
    const int64_t devices =
        Integer(Label(node, "gpu.intel.com/device.count")).value_or(count > 0 ? count : 1);
    if (bytes && devices > 0) model.memory_mib = *bytes / devices / (1024 * 1024);
  } else if (StartsWith(resource, "huawei.com/")) {
    const std::string suffix = resource.substr(std::string_view("huawei.com/").size());
    if (StartsWith(suffix, "Ascend")) {
      model.name = suffix;
    } else if (const std::string accelerator = Label(node, "accelerator");
               StartsWith(accelerator, "huawei-")) {
      model.name = accelerator.substr(7);
    }
  }
  return model;
}

bool NodeReady(const json& node) {
  const json& conditions = node["status"].value("conditions", json::array());
  for (const json& condition : conditions) {
    if (condition.value("type", "") == "Ready") return condition.value("status", "") == "True";
  }
  return false;
}

std::string NodeAddress(const json& node) {
  std::string hostname;
  for (const json& address : node["status"].value("addresses", json::array())) {
    const std::string type = address.value("type", "");
    if (type == "InternalIP") return address.value("address", "");
    if (type == "Hostname") hostname = address.value("address", "");
  }
  return hostname;
}

// Amount of `resource` a pod holds on its node: the larger of its app
// containers' sum and its largest init container (Kubernetes' effective
// request). Extended resources have request == limit; a limit alone counts.
int64_t PodRequest(const json& pod, const std::string& resource) {
  const auto amount = [&resource](const json& container) -> double {
    const json& resources = container.value("resources", json::object());
    if (auto value = Quantity(resources.value("requests", json::object()), resource)) {
      return *value;
    }
    return Quantity(resources.value("limits", json::object()), resource).value_or(0);
  };
  const json& spec = pod["spec"];
  double sum = 0;
  for (const json& container : spec.value("containers", json::array())) sum += amount(container);
  double init = 0;
  for (const json& container : spec.value("initContainers", json::array())) {
    init = std::max(init, amount(container));
  }
  return static_cast<int64_t>(std::llround(std::max(sum, init)));
}

bool PodHoldsResources(const json& pod) {
  const std::string phase = pod["status"].value("phase", "");
  return !pod["spec"].value("nodeName", "").empty() && phase != "Succeeded" && phase != "Failed";
}

// What the reflectors keep of a pod: identity, node, phase, the gpurm label
// and container resources.
json TrimPod(const json& pod) {
  json trimmed;
  const json& metadata = pod["metadata"];
  trimmed["metadata"] = {{"name", metadata.value("name", "")},
                         {"namespace", metadata.value("namespace", "")},
                         {"uid", metadata.value("uid", "")},
                         {"resourceVersion", metadata.value("resourceVersion", "")}};
  const json& labels = metadata.value("labels", json::object());
  if (labels.contains(kAllocationLabel)) {
    trimmed["metadata"]["labels"] = {{kAllocationLabel, labels[kAllocationLabel]}};
  }
  const json& spec = pod.value("spec", json::object());
  trimmed["spec"]["nodeName"] = spec.value("nodeName", "");
  for (const char* list : {"containers", "initContainers"}) {
    json containers = json::array();
    for (const json& container : spec.value(list, json::array())) {
      containers.push_back({{"resources", container.value("resources", json::object())}});
    }
    trimmed["spec"][list] = std::move(containers);
  }
  trimmed["status"]["phase"] = pod.value("status", json::object()).value("phase", "");
  return trimmed;
}

json TrimNode(const json& node) {
  json trimmed;
  const json& metadata = node["metadata"];
  trimmed["metadata"] = {{"name", metadata.value("name", "")},
                         {"resourceVersion", metadata.value("resourceVersion", "")},
                         {"labels", metadata.value("labels", json::object())}};
  trimmed["spec"]["unschedulable"] =
      node.value("spec", json::object()).value("unschedulable", false);
  const json& status = node.value("status", json::object());
  for (const char* key : {"capacity", "allocatable", "conditions", "addresses"}) {
    if (status.contains(key)) trimmed["status"][key] = status[key];
  }
  if (!trimmed.contains("status")) trimmed["status"] = json::object();
  return trimmed;
}

}  // namespace

std::vector<std::string> GpuResourceNames(const std::map<std::string, std::string>& gpu_resource) {
  std::set<std::string> names(std::begin(kWellKnownResources), std::end(kWellKnownResources));
  for (const auto& [vendor, name] : gpu_resource) names.insert(name);
  return {names.begin(), names.end()};
}

DiscoveryReport BuildKubernetesInventory(const std::map<std::string, json>& nodes,
                                         const std::map<std::string, json>& pods,
                                         const KubernetesProviderOptions& options) {
  DiscoveryReport report;
  std::vector<std::string> resources = GpuResourceNames(options.gpu_resource);
  // MIG profiles the nodes offer (GFD's mixed strategy), as resources of their own.
  std::set<std::string> mig_resources;
  for (const auto& [name, object] : nodes) {
    const json capacity = object["status"].value("capacity", json::object());
    if (!capacity.is_object()) continue;
    for (auto it = capacity.begin(); it != capacity.end(); ++it) {
      if (IsMigResource(it.key())) mig_resources.insert(it.key());
    }
  }
  resources.insert(resources.end(), mig_resources.begin(), mig_resources.end());

  // Per node and resource: the amount held by pods outside gpurm, and who.
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, std::vector<std::string>>> held;
  for (const auto& [key, pod] : pods) {
    if (!PodHoldsResources(pod)) continue;
    if (pod["metadata"].value("labels", json::object()).contains(kAllocationLabel)) continue;
    const std::string node_name = pod["spec"].value("nodeName", "");
    for (const std::string& resource : resources) {
      const int64_t amount = PodRequest(pod, resource);
      if (amount <= 0) continue;
      auto& entry = held[{node_name, resource}];
      entry.first += amount;
      entry.second.push_back(key);
    }
  }

  int total_gpus = 0;
  int total_mig_devices = 0;
  for (const auto& [name, object] : nodes) {
    Node node;
    node.name = object["metadata"].value("name", name);
    node.device_plugin_assigns_gpus = true;
    node.address = NodeAddress(object);
    const bool cordoned = object["spec"].value("unschedulable", false);
    const bool ready = NodeReady(object);
    node.schedulable = !cordoned && ready;
    const json& status = object["status"];
    for (const std::string& resource : resources) {
      const std::optional<double> capacity_value =
          Quantity(status.value("capacity", json::object()), resource);
      if (!capacity_value || *capacity_value < 1) continue;
      const int64_t capacity = static_cast<int64_t>(std::floor(*capacity_value));
      const int64_t allocatable = std::clamp<int64_t>(
          static_cast<int64_t>(std::floor(
              Quantity(status.value("allocatable", json::object()), resource).value_or(0))),
          0, capacity);
      LabelledModel labelled = ModelFromLabels(object, resource, capacity);
      if (!labelled.note.empty()) report.notes.push_back(labelled.note);
      const std::string model_name = labelled.name.empty() ? resource : labelled.name;
      const GpuModel model = ParseGpuModel(model_name, options.memory_specs);
      int64_t memory_mib = labelled.memory_mib;
      if (memory_mib <= 0 && model.memory_gb) memory_mib = MibFromGb(*model.memory_gb);
      if (memory_mib <= 0) {
        report.notes.push_back(node.name + ": memory of " + resource + " (" + model_name +
                               ") unknown: no memory label and no gpu_memory_specs entry; "
                               "requests with memory_gb > 0 will not match it");
      }
      const auto held_entry = held.find({node.name, resource});
      const int64_t held_count = held_entry == held.end() ? 0 : held_entry->second.first;
      std::string held_by;
      if (held_entry != held.end()) {
        for (const std::string& pod : held_entry->second.second) {
          held_by += (held_by.empty() ? "" : ", ") + pod;
        }
      }
      const bool mig = IsMigResource(resource);
      for (int64_t i = 0; i < capacity; ++i) {
        Gpu gpu;
        gpu.index = static_cast<int>(node.gpus.size());
        gpu.uuid = "k8s:" + node.name + ":" + resource + ":" + std::to_string(i);
        gpu.model = model;
        gpu.memory_total_mib = memory_mib;
        if (mig) {
          // The device plugin does not say which GPU a MIG device is on: the
          // node's MIG devices share one unnamed parent.
          gpu.mig_profile = resource.substr(kMigResourcePrefix.size());
          gpu.mig_parent_uuid = "k8s:" + node.name + ":nvidia.com/gpu:mig";
          gpu.utilization_available = false;
        }
        if (i < held_count) {
          gpu.healthy = false;
          gpu.health_reason = "in use by pods scheduled outside gpurm: " + held_by;
        } else if (i >= allocatable) {
          gpu.healthy = false;
          gpu.health_reason = "the device plugin reports it unhealthy (capacity " +
                              std::to_string(capacity) + ", allocatable " +
                              std::to_string(allocatable) + ")";
        }
        node.gpus.push_back(std::move(gpu));
      }
      if (held_count > capacity) {
        report.notes.push_back(node.name + ": pods request " + std::to_string(held_count) + " " +
                               resource + " but the node has " + std::to_string(capacity));
      }
    }
    if (node.gpus.empty()) continue;  // Not a GPU node.
    if (!node.schedulable) {
      report.notes.push_back(node.name + ": not offered (" +
                             std::string(cordoned ? "cordoned" : "not Ready") + ")");
    }
    for (const Gpu& gpu : node.gpus) ++(gpu.is_mig_device() ? total_mig_devices : total_gpus);
    report.nodes.push_back(std::move(node));
  }
  report.notes.push_back("kubernetes: " + std::to_string(report.nodes.size()) +
                         " GPU node(s) with " + std::to_string(total_gpus) + " GPU(s)" +
                         (total_mig_devices > 0
                              ? " and " + std::to_string(total_mig_devices) + " MIG device(s)"
                              : "") +
                         " of " + std::to_string(nodes.size()) + " node(s)");
  return report;
}

KubernetesProvider::KubernetesProvider(const kube::KubeClient* client,
                                       KubernetesProviderOptions options)
    : options_(std::move(options)) {
  kube::ReflectorOptions node_options;
  node_options.path = "/api/v1/nodes";
  node_options.watch_timeout_s = options_.watch_timeout_s;
  node_options.retry_delay_s = options_.retry_delay_s;
  node_options.transform = TrimNode;
  nodes_ = std::make_unique<kube::Reflector>(client, std::move(node_options));
  kube::ReflectorOptions pod_options;
  pod_options.path = "/api/v1/pods";
  // Finished pods hold nothing; the server sends DELETED when a pod leaves
  // this selection.
  pod_options.field_selector = "status.phase!=Succeeded,status.phase!=Failed";
  pod_options.watch_timeout_s = options_.watch_timeout_s;
  pod_options.retry_delay_s = options_.retry_delay_s;
  pod_options.transform = TrimPod;
  pods_ = std::make_unique<kube::Reflector>(client, std::move(pod_options));
  nodes_->Start();
  pods_->Start();
  if (!options_.node_agent_selector.empty()) {
    kube::ReflectorOptions agent_options;
    agent_options.path = "/api/v1/namespaces/" + options_.node_agent_namespace + "/pods";
    agent_options.label_selector = options_.node_agent_selector;
    agent_options.watch_timeout_s = options_.watch_timeout_s;
    agent_options.retry_delay_s = options_.retry_delay_s;
    node_agents_ = std::make_unique<kube::Reflector>(client, std::move(agent_options));
    node_agent_puller_ = std::make_unique<AgentPuller>(options_.node_agent_pull);
    node_agents_->Start();
  }
}

void KubernetesProvider::MergeNodeAgents(DiscoveryReport* report) {
  const kube::ReflectorView agents = node_agents_->View();
  if (!agents.synced) {
    report->notes.push_back("kubernetes: cannot list the node agents (" +
                            options_.node_agent_selector + ") yet" +
                            (agents.last_error.ok() ? "" : ": " + agents.last_error.message()));
    return;
  }
  const std::vector<NodeAgentPod> pods = NodeAgentPods(*agents.objects, options_.node_agent_scheme);
  std::vector<std::string> urls;
  urls.reserve(pods.size());
  for (const NodeAgentPod& pod : pods) urls.push_back(pod.url);
  std::vector<AgentPull> pulls = node_agent_puller_->Pull(urls);
  std::set<std::string> answered;
  for (size_t i = 0; i < pods.size(); ++i) {
    if (MergeNodeAgentAnswer({pods[i].pod, pods[i].node_name, std::move(pulls[i])}, report)) {
      answered.insert(pods[i].node_name);
    }
  }
  report->notes.push_back("kubernetes: live data from node agents on " +
                          std::to_string(answered.size()) + " of " +
                          std::to_string(report->nodes.size()) + " GPU node(s)");
}

Result<DiscoveryReport> KubernetesProvider::Discover() {
  const kube::ReflectorView nodes = nodes_->View();
  const kube::ReflectorView pods = pods_->View();
  for (const auto* view : {&nodes, &pods}) {
    if (!view->synced) {
      const std::string what = view == &nodes ? "nodes" : "pods";
      return Unavailable("kubernetes: cannot list " + what + " yet" +
                         (view->last_error.ok() ? "" : ": " + view->last_error.message()));
    }
  }
  DiscoveryReport report = BuildKubernetesInventory(*nodes.objects, *pods.objects, options_);
  if (node_agents_ != nullptr) MergeNodeAgents(&report);
  for (const auto* view : {&nodes, &pods}) {
    if (!view->last_error.ok()) {
      report.notes.push_back("kubernetes: watch failing, inventory may be stale: " +
                             view->last_error.message());
    }
  }
  return report;
}

bool KubernetesProvider::WaitUntil(const std::function<bool(const DiscoveryReport&)>& predicate,
                                   std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const kube::ReflectorView nodes = nodes_->View();
    const kube::ReflectorView pods = pods_->View();
    if (nodes.synced && pods.synced &&
        predicate(BuildKubernetesInventory(*nodes.objects, *pods.objects, options_))) {
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    // Wake on the next change of either collection (or shortly after).
    nodes_->WaitFor([&](const kube::ReflectorView& v) { return v.objects != nodes.objects; },
                    std::chrono::milliseconds(50));
  }
}

std::vector<NodeAgentPod> NodeAgentPods(const std::map<std::string, json>& pods,
                                        const std::string& scheme) {
  std::vector<NodeAgentPod> agents;
  for (const auto& [key, pod] : pods) {
    const json& status = pod.value("status", json::object());
    if (status.value("phase", "") != "Running") continue;
    bool ready = false;
    for (const json& condition : status.value("conditions", json::array())) {
      if (condition.value("type", "") == "Ready") ready = condition.value("status", "") == "True";
    }
    const std::string ip = status.value("podIP", "");
    const json& spec = pod.value("spec", json::object());
    const std::string node_name = spec.value("nodeName", "");
    int64_t port = 0;
    for (const json& container : spec.value("containers", json::array())) {
      for (const json& container_port : container.value("ports", json::array())) {
        if (container_port.value("name", "") == "http") {
          port = container_port.value("containerPort", int64_t{0});
        }
      }
    }
    if (!ready || ip.empty() || node_name.empty() || port <= 0 || port > 65535) continue;
    std::string url = scheme + "://";
    if (ip.find(':') != std::string::npos) {  // IPv6
      url.append("[").append(ip).append("]");
    } else {
      url.append(ip);
    }
    url.append(":").append(std::to_string(port));
    agents.push_back({key, node_name, std::move(url)});
  }
  return agents;
}

bool MergeNodeAgentAnswer(NodeAgentAnswer answer, DiscoveryReport* report) {
  const std::string who =
      "node agent " + answer.pod + " (" + answer.pull.url + ") on " + answer.node_name;
  if (!answer.pull.problem.empty()) {
    report->notes.push_back(who + ": " + answer.pull.problem + "; no live data for the node");
    return false;
  }
  AgentReport& agent = answer.pull.report;
  if (agent.node.name != answer.node_name) {
    report->notes.push_back(who + ": reports node '" + agent.node.name +
                            "'; no live data for the node");
    return false;
  }
  auto node = std::find_if(report->nodes.begin(), report->nodes.end(),
                           [&](const Node& n) { return n.name == answer.node_name; });
  if (node == report->nodes.end()) {
    report->notes.push_back(who + ": the API server lists no GPUs on that node");
    return false;
  }
  // Whole GPUs on both sides, in index order: the device plugin numbers a
  // node's devices as the driver does.
  std::vector<Gpu*> cluster_gpus;
  for (Gpu& gpu : node->gpus) {
    if (!gpu.is_mig_device()) cluster_gpus.push_back(&gpu);
  }
  std::vector<const Gpu*> live_gpus;
  for (const Gpu& gpu : agent.node.gpus) {
    if (!gpu.is_mig_device()) live_gpus.push_back(&gpu);
  }
  std::stable_sort(live_gpus.begin(), live_gpus.end(),
                   [](const Gpu* a, const Gpu* b) { return a->index < b->index; });
  if (live_gpus.size() != cluster_gpus.size()) {
    report->notes.push_back(who + ": reports " + std::to_string(live_gpus.size()) +
                            " GPU(s), the API server " + std::to_string(cluster_gpus.size()) +
                            "; live data for the first " +
                            std::to_string(std::min(live_gpus.size(), cluster_gpus.size())));
  }
  const std::set<std::string> stale(agent.stale_gpus.begin(), agent.stale_gpus.end());
  for (size_t i = 0; i < std::min(live_gpus.size(), cluster_gpus.size()); ++i) {
    Gpu& gpu = *cluster_gpus[i];
    const Gpu& live = *live_gpus[i];
    if (gpu.memory_total_mib <= 0) {  // No label and no spec: the device knows.
      gpu.memory_total_mib = live.memory_total_mib;
      gpu.model = live.model;
    }
    gpu.pci_bus_id = live.pci_bus_id;
    gpu.memory_used_mib = std::min(live.memory_used_mib, gpu.memory_total_mib);
    gpu.utilization = live.utilization;
    gpu.memory_utilization = live.memory_utilization;
    gpu.utilization_available = live.utilization_available;
    gpu.temperature_c = live.temperature_c;
    gpu.power_w = live.power_w;
    gpu.power_limit_w = live.power_limit_w;
    gpu.nvlink_group = live.nvlink_group;
    gpu.numa_node = live.numa_node;
    gpu.sm_clock_mhz = live.sm_clock_mhz;
    gpu.ecc_double_bit_errors = live.ecc_double_bit_errors;
    gpu.last_xid = live.last_xid;
    gpu.processes = live.processes;
    if (gpu.healthy && !live.healthy) {
      gpu.healthy = false;
      gpu.health_reason = "node agent: " + live.health_reason;
    }
    if (stale.count(live.uuid) != 0) report->stale_gpus.push_back(gpu.uuid);
  }
  for (const std::string& note : agent.notes) {
    std::string line = who;
    line.append(": ").append(note);
    report->notes.push_back(std::move(line));
  }
  return true;
}

std::optional<std::string> AllocationOfPod(const std::map<std::string, json>& pods,
                                           const std::string& pod_uid) {
  for (const auto& [key, pod] : pods) {
    const json& metadata = pod.value("metadata", json::object());
    if (metadata.value("uid", "") != pod_uid) continue;
    const std::string allocation =
        metadata.value("labels", json::object()).value(kAllocationLabel, "");
    if (allocation.empty()) return std::nullopt;
    return allocation;
  }
  return std::nullopt;
}

std::optional<std::string> KubernetesProvider::AllocationOfPod(const std::string& pod_uid) const {
  const kube::ReflectorView pods = pods_->View();
  if (!pods.objects) return std::nullopt;
  return gpurm::AllocationOfPod(*pods.objects, pod_uid);
}

}  // namespace gpurm
