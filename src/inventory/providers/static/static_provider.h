// StaticProvider: nodes and GPUs described in a YAML file. Used for demos,
// tests, the simulator, and machines whose GPUs gpurm cannot probe.
//
// Format (see examples/cluster-3node.yaml):
//   nodes:
//     - name: gpu-node-2
//       address: 10.0.0.12        # optional
//       schedulable: true         # optional
//       gpus:
//         - name: "NVIDIA A100-SXM4-80GB"   # driver name, parsed by ParseGpuModel
//           count: 4                        # optional, default 1: repeat this entry
//           nvlink_group: 0                 # optional
//           memory_total_mb: 81920          # optional, default from the model
//           memory_used_mb: 2048            # optional: used by processes outside gpurm
//           utilization: 0.35               # optional 0..1
//           memory_utilization: 0.1         # optional 0..1
//           temperature_c: 41               # optional
//           power_w: 250                    # optional
//           power_limit_w: 400              # optional
//           numa_node: 0                    # optional
//           healthy: true                   # optional
//           health_reason: ""               # optional
//           uuid: "GPU-..."                 # optional; only with count 1
//           mig_devices:                    # optional: the GPU is in MIG mode
//             - profile: "3g.40gb"          # required
//               count: 2                    # optional, default 1
//               memory_total_mb: 40320      # optional, default the profile's size
//               memory_used_mb: 0           # optional
//               healthy: true               # optional
//               health_reason: ""           # optional
//               uuid: "MIG-..."             # optional; only with counts 1
// GPU indices are assigned in order; uuids default to "<node>-gpu<index>".
// A GPU with `mig_devices` (even an empty list) is in MIG mode: never granted
// whole, no utilization; its MIG devices follow it with its index, type
// "<model> MIG <profile>" and uuids defaulting to "MIG-<node>-gpu<index>-<n>"
// (see examples/dgx-h100-mig.yaml).
#ifndef GPURM_INVENTORY_PROVIDERS_STATIC_STATIC_PROVIDER_H_
#define GPURM_INVENTORY_PROVIDERS_STATIC_STATIC_PROVIDER_H_

#include <string>
#include <string_view>
#include <vector>

#include "core/gpu_model.h"
#include "inventory/provider.h"

namespace gpurm {

// Parses inventory YAML. Errors name the line, the key and what was expected.
// A GPU whose memory is neither given nor known from its model is an error.
Result<std::vector<Node>> ParseStaticInventory(std::string_view yaml_text,
                                               std::string_view source_name,
                                               const GpuMemorySpecs& memory_specs);

class StaticProvider final : public InventoryProvider {
 public:
  // Re-reads `path` on every Discover, so edits show up without a restart.
  StaticProvider(std::string path, GpuMemorySpecs memory_specs);
  std::string name() const override { return "static"; }
  Result<DiscoveryReport> Discover() override;

 private:
  std::string path_;
  GpuMemorySpecs memory_specs_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_STATIC_STATIC_PROVIDER_H_
