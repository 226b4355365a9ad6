#include "integrations/frameworks/plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iterator>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "guard/guard_config.h"

namespace gpurm {
namespace {

using nlohmann::json;

// The model hint behind "batch_size_estimate": a mid-sized network (ResNet-50
// has ~25M parameters) with ~48 MiB of fp32 activations per sample at 224x224.
// Plans say so in "batch_size_basis" so users re-estimate with their own numbers.
constexpr int64_t kHintParameterCount = 25'000'000;
constexpr double kHintActivationMibPerSample = 48.0;

// Upper bound of EstimateBatchSize: keeps the result an int and sane when the
// per-sample memory is tiny.
constexpr int kMaxBatchSize = 1 << 16;

// What each vendor's software stack calls things. `torch_device` is the
// torch.device type (ROCm PyTorch reuses "cuda"; Intel is "xpu" since PyTorch
// 2.4; Ascend is "npu" through torch_npu). `torch_backend` is the name given to
// torch.distributed.init_process_group (ROCm PyTorch keeps the name "nccl" and
// runs RCCL underneath; "xccl" is oneCCL in PyTorch >= 2.8; "hccl" comes with
// torch_npu). `tf_device_type` is what tf.config.list_physical_devices takes
// (XPU through intel-extension-for-tensorflow, NPU through the CANN TF adapter).
struct VendorTraits {
  const char* torch_device;
  const char* torch_backend;
  const char* collective_library;
  const char* tf_device_type;
};

// An unknown vendor gets no device mapping at all: guessing one would point
// the framework at the wrong runtime. Plans then run on the CPU with a warning.
VendorTraits TraitsOf(Vendor vendor) {
  switch (vendor) {
    case Vendor::kNvidia:
      return {"cuda", "nccl", "nccl", "GPU"};
    case Vendor::kAmd:
      return {"cuda", "nccl", "rccl", "GPU"};
    case Vendor::kIntel:
      return {"xpu", "xccl", "oneccl", "XPU"};
    case Vendor::kHuawei:
      return {"npu", "hccl", "hccl", "NPU"};
    case Vendor::kUnknown:
      break;
  }
  return {"cpu", "gloo", "gloo", "CPU"};
}

// "0,1,3".
std::string JoinIndices(const std::vector<int>& indices) {
  std::string joined;
  for (size_t i = 0; i < indices.size(); ++i) {
    if (i > 0) joined += ',';
    joined += std::to_string(indices[i]);
  }
  return joined;
}

// "0,MIG-4f...".
std::string JoinIds(const std::vector<std::string>& ids) {
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) joined += ',';
    joined += ids[i];
  }
  return joined;
}

// The variables that make exactly `indices` (node-local indices in PCI bus
// order, as the inventory numbers GPUs) visible to the vendor runtime.
// `cuda_ids` are what CUDA_VISIBLE_DEVICES names for the same GPUs: the
// index, or a MIG device's "MIG-..." uuid (CUDA selects MIG devices by uuid
// only; the index would be the whole GPU's).
json VisibilityEnvironment(Vendor vendor, const std::vector<int>& indices,
                           const std::vector<std::string>& cuda_ids) {
  json env = json::object();
  switch (vendor) {
    case Vendor::kNvidia:
      // CUDA numbers devices fastest-first unless told otherwise; NVML (and so
      // gpurm) numbers them by PCI bus. Without this the job would run on GPUs
      // other than the ones reserved for it.
      env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID";
      env["CUDA_VISIBLE_DEVICES"] = JoinIds(cuda_ids);
      break;
    case Vendor::kAmd: {
      // ROCr applies ROCR_VISIBLE_DEVICES first, then HIP_VISIBLE_DEVICES picks
      // among the devices ROCr left, renumbered from 0. So ROCr gets the
      // physical indices and HIP all of what remains; repeating the physical
      // indices in HIP_VISIBLE_DEVICES would select the wrong devices or none.
      std::vector<int> renumbered(indices.size());
      for (size_t i = 0; i < renumbered.size(); ++i) renumbered[i] = static_cast<int>(i);
      env["ROCR_VISIBLE_DEVICES"] = JoinIndices(indices);
      env["HIP_VISIBLE_DEVICES"] = JoinIndices(renumbered);
      break;
    }
    case Vendor::kIntel:
      // Level Zero's default FLAT hierarchy exposes each tile of a multi-tile
      // card (Max 1550: 2 tiles) as its own device, so mask indices would name
      // tiles. COMPOSITE makes one device per card, matching gpurm's GPUs and
      // their memory. PCI ordering plays the role of CUDA_DEVICE_ORDER.
      env["ZE_FLAT_DEVICE_HIERARCHY"] = "COMPOSITE";
      env["ZE_ENABLE_PCI_ID_DEVICE_ORDER"] = "1";
      env["ZE_AFFINITY_MASK"] = JoinIndices(indices);
      break;
    case Vendor::kHuawei:
      env["ASCEND_RT_VISIBLE_DEVICES"] = JoinIndices(indices);
      break;
    case Vendor::kUnknown:
      break;
  }
  return env;
}

// Hides every GPU from CUDA and HIP runtimes (HIP also honours the CUDA
// variable), so a CPU job does not grab memory on GPUs other jobs hold.
json CpuEnvironment() { return json{{"CUDA_VISIBLE_DEVICES", ""}, {"HIP_VISIBLE_DEVICES", ""}}; }

// Collective-library settings for distributed jobs, deliberately few: NCCL (and
// RCCL, which reads the same variables) print warnings instead of staying
// silent on fallbacks such as losing P2P or InfiniBand. NCCL_P2P_LEVEL is left
// alone: NCCL picks the transport from the detected topology (NVLink when the
// GPUs share an island, else the PCIe path), and forcing a level only removes
// paths it would have used. Interface names (NCCL_SOCKET_IFNAME) are
// site-specific and are not guessed.
json CollectiveEnvironment(Vendor vendor) {
  json env = json::object();
  if (vendor == Vendor::kNvidia || vendor == Vendor::kAmd) env["NCCL_DEBUG"] = "WARN";
  return env;
}

// How the GPUs of one node talk to each other: over the vendor's GPU link when
// they all share one link island, else over PCIe.
const char* Interconnect(Vendor vendor, const std::vector<const PlannedGpu*>& gpus) {
  const int group = gpus.front()->gpu.nvlink_group;
  const bool one_island =
      group >= 0 && std::all_of(gpus.begin(), gpus.end(), [group](const PlannedGpu* planned) {
        return planned->gpu.nvlink_group == group;
      });
  if (!one_island) return "pcie";
  switch (vendor) {
    case Vendor::kNvidia:
      return "nvlink";
    case Vendor::kAmd:
      return "xgmi";
    case Vendor::kIntel:
      return "xe_link";
    case Vendor::kHuawei:
      return "hccs";
    case Vendor::kUnknown:
      break;
  }
  return "gpu_link";
}

struct NodeGroup {
  std::string name;
  std::string address;  // The node's address, else its name.
  Vendor vendor = Vendor::kUnknown;
  std::vector<const PlannedGpu*> gpus;

  std::vector<int> Indices() const {
    std::vector<int> indices;
    for (const PlannedGpu* planned : gpus) indices.push_back(planned->gpu.index);
    return indices;
  }
  std::vector<std::string> CudaIds() const {
    std::vector<std::string> ids;
    for (const PlannedGpu* planned : gpus) {
      // Kubernetes' MIG units have no device uuid (the device plugin picks
      // the device and sets the container's visible devices).
      const bool by_uuid = planned->gpu.is_mig_device() && planned->gpu.uuid.rfind("MIG-", 0) == 0;
      ids.push_back(by_uuid ? planned->gpu.uuid : std::to_string(planned->gpu.index));
    }
    return ids;
  }
};

struct Precision {
  bool enabled = false;
  const char* dtype = "float32";
  bool loss_scaling = false;
};

// Everything the three plans derive from the input, computed once.
struct Common {
  bool cpu = true;
  Vendor vendor = Vendor::kUnknown;
  VendorTraits traits = TraitsOf(Vendor::kUnknown);
  std::vector<NodeGroup> nodes;
  int world_size = 0;
  double fraction = 0.9;
  int64_t granted_mib = 0;       // Smallest grant over the GPUs.
  int64_t memory_limit_mib = 0;  // Smallest floor(fraction x grant) over the GPUs.
  double per_process_fraction = 0.0;
  Precision precision;
  bool distributed = false;
  int batch_size = 0;
  json warnings = json::array();
};

// Nodes in order of first appearance in the grant list.
std::vector<NodeGroup> GroupByNode(const std::vector<PlannedGpu>& gpus) {
  std::vector<NodeGroup> nodes;
  for (const PlannedGpu& planned : gpus) {
    auto it = std::find_if(nodes.begin(), nodes.end(),
                           [&](const NodeGroup& node) { return node.name == planned.node_name; });
    if (it == nodes.end()) {
      NodeGroup node;
      node.name = planned.node_name;
      node.address = planned.node_address.empty() ? planned.node_name : planned.node_address;
      node.vendor = planned.gpu.model.vendor;
      nodes.push_back(std::move(node));
      it = std::prev(nodes.end());
    }
    it->gpus.push_back(&planned);
  }
  return nodes;
}

Common Derive(const PlanInput& input) {
  Common common;
  const GpuRequest& request = input.request;
  common.fraction = std::isnan(request.gpu_memory_fraction)
                        ? 0.0
                        : std::clamp(request.gpu_memory_fraction, 0.0, 1.0);
  common.cpu = input.gpus.empty();
  if (common.cpu) return common;

  common.vendor = input.gpus.front().gpu.model.vendor;
  common.traits = TraitsOf(common.vendor);
  common.nodes = GroupByNode(input.gpus);
  common.world_size = static_cast<int>(input.gpus.size());
  if (common.vendor == Vendor::kUnknown) {
    common.warnings.push_back(
        "the vendor of the allocated GPUs is unknown: no visible-device variables are set and "
        "the framework plans run on the CPU");
  }

  common.granted_mib = std::numeric_limits<int64_t>::max();
  common.memory_limit_mib = std::numeric_limits<int64_t>::max();
  common.per_process_fraction = 1.0;
  bool all_bf16 = true;
  for (const PlannedGpu& planned : input.gpus) {
    const int64_t limit = static_cast<int64_t>(
        std::floor(common.fraction * static_cast<double>(planned.granted_mib)));
    common.granted_mib = std::min(common.granted_mib, planned.granted_mib);
    common.memory_limit_mib = std::min(common.memory_limit_mib, limit);
    // torch caps by a fraction of the device's total memory: a slice of a
    // shared GPU must cap to the slice, not to the whole device.
    const int64_t total = planned.gpu.memory_total_mib;
    const double share = total > 0
                             ? common.fraction * static_cast<double>(planned.granted_mib) / total
                             : common.fraction;
    common.per_process_fraction = std::min(common.per_process_fraction, share);
    all_bf16 = all_bf16 && planned.gpu.model.supports_bf16;
  }

  if (request.mixed_precision && common.vendor != Vendor::kUnknown) {
    common.precision.enabled = true;
    // fp16's narrow exponent range underflows small gradients; bf16 keeps
    // fp32's range, so only fp16 needs loss scaling.
    common.precision.dtype = all_bf16 ? "bfloat16" : "float16";
    common.precision.loss_scaling = !all_bf16;
  }
  common.distributed = request.distributed_training || common.world_size > 1;
  common.batch_size = EstimateBatchSize(common.memory_limit_mib, kHintParameterCount,
                                        kHintActivationMibPerSample, common.precision.enabled);
  return common;
}

json PrecisionJson(const Precision& precision) {
  return json{{"enabled", precision.enabled},
              {"dtype", precision.dtype},
              {"loss_scaling", precision.loss_scaling}};
}

// The node's visible-device variables, plus the collective settings when the
// job is distributed.
// The node's grant per GPU in MiB, in visible-device order.
std::vector<int64_t> GrantedMib(const NodeGroup& node) {
  std::vector<int64_t> granted;
  for (const PlannedGpu* planned : node.gpus) granted.push_back(planned->granted_mib);
  return granted;
}

json NodeEnvironment(const Common& common, const NodeGroup& node) {
  json env = VisibilityEnvironment(node.vendor, node.Indices(), node.CudaIds());
  if (common.distributed) env.update(CollectiveEnvironment(node.vendor));
  if (node.vendor == Vendor::kNvidia) {
    // The CUDA guard (src/guard) holds the job's processes to these grants
    // on the devices they see, device 0 first.
    std::string limits;
    for (const int64_t mib : GrantedMib(node)) {
      limits += (limits.empty() ? "" : ",") + std::to_string(mib);
    }
    env[GPURM_ENV_CUDA_MEMORY_LIMITS_MB] = limits;
  }
  return env;
}

json FirstNodeEnvironment(const Common& common) {
  return common.cpu ? CpuEnvironment() : NodeEnvironment(common, common.nodes.front());
}

json VisibleDevices(const Common& common) {
  return common.cpu ? json::array() : json(common.nodes.front().Indices());
}

json OptionalMib(const Common& common, int64_t mib) {
  return common.cpu ? json(nullptr) : json(mib);
}

json BatchSizeEstimate(const Common& common) {
  return common.cpu ? json(nullptr) : json(common.batch_size);
}

json BatchSizeBasis(const Common& common) {
  return json{
      {"per", "gpu"},
      {"parameter_count", kHintParameterCount},
      {"activation_mib_per_sample", kHintActivationMibPerSample},
      {"mixed_precision", common.precision.enabled},
      {"memory_limit_mb", OptionalMib(common, common.memory_limit_mib)},
      {"description",
       common.cpu ? "no GPU memory limit applies on the CPU: no estimate"
                  : "default model hint (25M parameters, 48 MiB of activations per sample, Adam); "
                    "re-estimate with your model's numbers"}};
}

// What to try when training runs out of GPU memory, most effective first.
// `accumulation_how` says how the framework accumulates gradients.
json OomAdvice(const Common& common, const char* accumulation_how) {
  json advice = json::array();
  if (common.cpu) {
    advice.push_back(
        "no GPU was available: this plan runs on the CPU; reduce the batch size if "
        "host memory runs out");
    return advice;
  }
  advice.push_back("reduce the batch size (estimate for the default model hint: " +
                   std::to_string(common.batch_size) + " per GPU under a " +
                   std::to_string(common.memory_limit_mib) + " MiB limit)");
  if (!common.precision.enabled) {
    advice.push_back(
        "enable mixed precision (request mixed_precision=true): 16-bit activations take half "
        "the memory");
  }
  advice.push_back(std::string("use gradient accumulation: k steps of batch B/k keep the "
                               "effective batch B at a fraction of the activation memory (") +
                   accumulation_how + ")");
  advice.push_back("request more memory per GPU (memory_gb) or a GPU type with more memory");
  return advice;
}

// The framework-neutral distributed settings shared by gpu_config and the
// PyTorch plan.
json DistributedJson(const Common& common, int master_port) {
  if (common.cpu) {
    return json{{"enabled", false},
                {"backend", "gloo"},
                {"collective_library", "gloo"},
                {"world_size", 1},
                {"nnodes", 1},
                {"nproc_per_node", 1},
                {"master_addr", "127.0.0.1"},
                {"master_port", master_port},
                {"environment", json::object()}};
  }
  const NodeGroup& first = common.nodes.front();
  return json{
      {"enabled", common.distributed},
      {"backend", common.traits.torch_backend},
      {"collective_library", common.traits.collective_library},
      {"world_size", common.world_size},
      {"nnodes", static_cast<int>(common.nodes.size())},
      {"nproc_per_node", static_cast<int>(first.gpus.size())},
      {"master_addr", first.address},
      {"master_port", master_port},
      {"environment", common.distributed ? CollectiveEnvironment(common.vendor) : json::object()}};
}

// torchrun's command line for one node. A single node uses --standalone: the
// rendezvous binds a free local port, so concurrent jobs on one machine never
// collide. Several nodes use the static rendezvous: gpurm has already placed
// every node (all-or-nothing), so elastic membership buys nothing, while
// static gives deterministic ranks (rank 0 on node_rank 0, at master_addr) and
// uses exactly master_addr:master_port. Nodes may differ in nproc_per_node;
// torchrun derives global ranks from every node's local count.
json TorchrunArgs(const Common& common, size_t node_rank, int master_port) {
  const NodeGroup& node = common.nodes[node_rank];
  const std::string nproc = "--nproc_per_node=" + std::to_string(node.gpus.size());
  if (common.nodes.size() == 1) return json{"--standalone", "--nnodes=1", nproc};
  return json{"--nnodes=" + std::to_string(common.nodes.size()), nproc,
              "--node_rank=" + std::to_string(node_rank),
              "--master_addr=" + common.nodes.front().address,
              "--master_port=" + std::to_string(master_port)};
}

}  // namespace

int EstimateBatchSize(int64_t memory_limit_mib, int64_t parameter_count, double per_sample_mib,
                      bool mixed_precision) {
  if (memory_limit_mib <= 0 || parameter_count < 0 || !std::isfinite(per_sample_mib) ||
      per_sample_mib <= 0.0) {
    return 0;
  }
  // Training state per parameter: fp32 weights (4 bytes) + gradients (4) + Adam's
  // two moments (8) = 16 bytes. Automatic mixed precision (torch.autocast, Keras
  // mixed policies) keeps all of these in fp32, so it does not shrink them; it
  // halves the activations, which are stored in 16 bits.
  const double state_mib = static_cast<double>(parameter_count) * 16.0 / (1024.0 * 1024.0);
  const double remaining_mib = static_cast<double>(memory_limit_mib) - state_mib;
  if (remaining_mib < 0.0) return 0;  // The weights alone do not fit.
  const double sample_mib = mixed_precision ? per_sample_mib / 2.0 : per_sample_mib;
  const double samples = std::min(remaining_mib / sample_mib, static_cast<double>(kMaxBatchSize));
  int batch = 1;  // The model fits: report at least one sample.
  while (batch * 2 <= samples) batch *= 2;
  return batch;
}

nlohmann::json BuildGpuConfig(const PlanInput& input) {
  const Common common = Derive(input);
  json nodes = json::array();
  for (const NodeGroup& node : common.nodes) {
    json uuids = json::array();
    for (const PlannedGpu* planned : node.gpus) uuids.push_back(planned->gpu.uuid);
    nodes.push_back({{"node_name", node.name},
                     {"address", node.address},
                     {"gpu_indices", node.Indices()},
                     {"gpu_uuids", std::move(uuids)},
                     {"granted_memory_mb", GrantedMib(node)},
                     {"interconnect", Interconnect(node.vendor, node.gpus)},
                     {"environment", NodeEnvironment(common, node)}});
  }
  json gpu_type = nullptr;
  if (!common.cpu) {
    gpu_type = GpuTypeLabel(input.gpus.front().gpu);  // "A100 MIG 3g.40gb" for a MIG device.
  }
  return json{
      {"device", common.cpu ? "cpu" : "gpu"},
      {"vendor", common.cpu ? json(nullptr) : json(VendorName(common.vendor))},
      {"gpu_type", std::move(gpu_type)},
      {"gpu_count", common.world_size},
      {"nodes", std::move(nodes)},
      {"environment", FirstNodeEnvironment(common)},
      {"memory_gb_per_gpu", common.cpu ? json(nullptr) : json(GbFromMib(common.granted_mib))},
      {"memory_limit_mb", OptionalMib(common, common.memory_limit_mib)},
      {"gpu_memory_fraction", common.fraction},
      {"mixed_precision", PrecisionJson(common.precision)},
      {"distributed", DistributedJson(common, input.master_port)},
      {"batch_size_estimate", BatchSizeEstimate(common)},
      {"batch_size_basis", BatchSizeBasis(common)},
      {"warnings", common.warnings}};
}

nlohmann::json BuildTensorFlowPlan(const PlanInput& input) {
  const Common common = Derive(input);
  const bool on_device = !common.cpu && common.vendor != Vendor::kUnknown;
  const bool multi_worker = common.nodes.size() > 1;

  // One TF worker per node; each worker drives all of its node's GPUs.
  json workers = json::array();
  for (const NodeGroup& node : common.nodes) {
    workers.push_back(node.address + ":" + std::to_string(input.master_port));
  }
  json tf_configs = json::array();
  json nodes = json::array();
  for (size_t i = 0; i < common.nodes.size(); ++i) {
    const NodeGroup& node = common.nodes[i];
    json env = NodeEnvironment(common, node);
    if (multi_worker) {
      json tf_config = {{"cluster", {{"worker", workers}}},
                        {"task", {{"type", "worker"}, {"index", static_cast<int>(i)}}}};
      env["TF_CONFIG"] = tf_config.dump(-1, ' ', false, json::error_handler_t::replace);
      tf_configs.push_back(std::move(tf_config));
    }
    nodes.push_back({{"node_name", node.name},
                     {"visible_devices", node.Indices()},
                     {"environment", std::move(env)}});
  }

  const char* strategy = "default";
  if (on_device) {
    strategy = multi_worker            ? "MultiWorkerMirroredStrategy"
               : common.world_size > 1 ? "MirroredStrategy"
                                       : "OneDeviceStrategy";
  }
  const char* policy = "float32";
  if (common.precision.enabled) {
    policy = common.precision.loss_scaling ? "mixed_float16" : "mixed_bfloat16";
  }
  // MultiWorkerMirroredStrategy's CommunicationImplementation: NCCL (RCCL on
  // tensorflow-rocm) where the vendor has it, else TF chooses.
  const char* communication =
      common.vendor == Vendor::kNvidia || common.vendor == Vendor::kAmd ? "NCCL" : "AUTO";

  std::string device_type = on_device ? common.traits.tf_device_type : "CPU";
  std::string device = device_type;
  std::transform(device.begin(), device.end(), device.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return json{
      {"device", device},
      {"physical_device_type", device_type},
      {"visible_devices", VisibleDevices(common)},
      {"environment", nodes.empty() ? FirstNodeEnvironment(common) : nodes[0]["environment"]},
      {"nodes", std::move(nodes)},
      {"memory_limit_mb", OptionalMib(common, common.memory_limit_mib)},
      // A logical-device memory limit and memory growth are mutually exclusive
      // in TF; the hard limit is what enforces the reservation.
      {"memory_growth", false},
      {"mixed_precision_policy", policy},
      {"loss_scaling", common.precision.loss_scaling},
      {"strategy", strategy},
      {"communication", on_device && common.world_size > 1 ? json(communication) : json(nullptr)},
      {"tf_config", multi_worker ? std::move(tf_configs) : json(nullptr)},
      {"batch_size_estimate", BatchSizeEstimate(common)},
      {"batch_size_basis", BatchSizeBasis(common)},
      {"oom_advice",
       OomAdvice(common, "apply the summed gradients every k steps in a custom training loop")},
      {"warnings", common.warnings}};
}

nlohmann::json BuildPyTorchPlan(const PlanInput& input) {
  const Common common = Derive(input);
  const bool on_device = !common.cpu && common.vendor != Vendor::kUnknown;

  json nodes = json::array();
  for (size_t i = 0; i < common.nodes.size(); ++i) {
    const NodeGroup& node = common.nodes[i];
    nodes.push_back({{"node_name", node.name},
                     {"node_rank", static_cast<int>(i)},
                     {"nproc_per_node", static_cast<int>(node.gpus.size())},
                     {"visible_devices", node.Indices()},
                     {"environment", NodeEnvironment(common, node)},
                     {"torchrun_args", TorchrunArgs(common, i, input.master_port)}});
  }

  json distributed = DistributedJson(common, input.master_port);
  distributed["torchrun_args"] = nodes.empty() ? json::array() : nodes[0]["torchrun_args"];
  distributed["wrapper"] = common.distributed ? json("DistributedDataParallel") : json(nullptr);

  return json{
      {"device", on_device ? common.traits.torch_device : "cpu"},
      {"visible_devices", VisibleDevices(common)},
      {"environment", nodes.empty() ? FirstNodeEnvironment(common) : nodes[0]["environment"]},
      {"nodes", std::move(nodes)},
      // For torch.<device>.set_per_process_memory_fraction(f, device): a
      // fraction of the device's total memory.
      {"per_process_memory_fraction",
       on_device ? json(common.per_process_fraction) : json(nullptr)},
      {"memory_limit_mb", OptionalMib(common, common.memory_limit_mib)},
      {"amp",
       {{"enabled", common.precision.enabled},
        {"dtype", common.precision.dtype},
        {"grad_scaler", common.precision.loss_scaling}}},
      {"distributed", std::move(distributed)},
      {"batch_size_estimate", BatchSizeEstimate(common)},
      {"batch_size_basis", BatchSizeBasis(common)},
      {"oom_advice",
       OomAdvice(common, "call optimizer.step() and zero_grad() every k backward passes")},
      {"warnings", common.warnings}};
}

}  // namespace gpurm
