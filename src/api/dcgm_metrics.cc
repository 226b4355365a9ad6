#include "api/dcgm_metrics.h"

#include <optional>
#include <string>

namespace gpurm {
namespace {

using GpuValue = std::optional<double> (*)(const Gpu&);

struct DcgmFamily {
  const char* name;
  const char* help;  // dcgm-exporter's help text (default-counters.csv), units included.
  GpuValue value;
};

MetricLabels DcgmLabels(const Node& node, const Gpu& gpu) {
  MetricLabels labels = {{"gpu", std::to_string(gpu.index)},
                         {"UUID", gpu.uuid},
                         {"device", "nvidia" + std::to_string(gpu.index)},
                         {"modelName", gpu.model.raw_name},
                         {"Hostname", node.name}};
  if (!gpu.pci_bus_id.empty()) labels.emplace_back("pci_bus_id", gpu.pci_bus_id);
  return labels;
}

std::optional<double> OrNothing(const std::optional<int64_t>& value) {
  if (!value) return std::nullopt;
  return static_cast<double>(*value);
}

constexpr DcgmFamily kFamilies[] = {
    {"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).",
     [](const Gpu& g) -> std::optional<double> { return g.utilization * 100.0; }},
    {"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).",
     [](const Gpu& g) -> std::optional<double> { return static_cast<double>(g.memory_used_mib); }},
    {"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
     [](const Gpu& g) -> std::optional<double> {
       const int64_t free_mib = g.memory_total_mib - g.memory_used_mib;
       return static_cast<double>(free_mib > 0 ? free_mib : 0);
     }},
    {"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).",
     [](const Gpu& g) { return g.temperature_c; }},
    {"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", [](const Gpu& g) { return g.power_w; }},
    {"DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).",
     [](const Gpu& g) { return OrNothing(g.sm_clock_mhz); }},
    {"DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.",
     [](const Gpu& g) -> std::optional<double> { return static_cast<double>(g.last_xid); }},
    {"DCGM_FI_PROF_GR_ENGINE_ACTIVE",
     "Ratio of time the graphics engine is active (gpurm: the GPU's busy ratio as NVML "
     "reports it).",
     [](const Gpu& g) -> std::optional<double> { return g.utilization; }},
};

}  // namespace

void WriteDcgmCompatibleMetrics(const ClusterState& state, PrometheusText& out) {
  for (const DcgmFamily& family : kFamilies) {
    out.Family(family.name, "gauge", family.help);
    for (const NodeAvailability& node : state.nodes()) {
      for (const GpuAvailability& availability : node.gpus) {
        const Gpu& gpu = *availability.gpu;
        // dcgm-exporter reports NVIDIA GPUs only; "nvidia<index>" devices of
        // another vendor would mislead.
        if (gpu.model.vendor != Vendor::kNvidia) continue;
        if (const std::optional<double> value = family.value(gpu)) {
          out.Sample(family.name, DcgmLabels(*node.node, gpu), *value);
        }
      }
    }
  }
}

}  // namespace gpurm
