// The GPU series of /metrics under the names, units and labels of NVIDIA's
// dcgm-exporter, for dashboards and alerts written for it (NVIDIA's "NVIDIA
// DCGM Exporter Dashboard", Grafana 12239, among them). Written next to
// gpurm's own series when the config switch server.dcgm_compatible_metrics
// is on.
//
// Families (gauges, as dcgm-exporter exports them), one sample per NVIDIA
// GPU that has the value:
//   DCGM_FI_DEV_GPU_UTIL            utilization, in %
//   DCGM_FI_DEV_FB_USED             memory used, in MiB
//   DCGM_FI_DEV_FB_FREE             memory free, in MiB
//   DCGM_FI_DEV_GPU_TEMP            temperature, in degrees C
//   DCGM_FI_DEV_POWER_USAGE         power draw, in W
//   DCGM_FI_DEV_SM_CLOCK            SM clock, in MHz
//   DCGM_FI_DEV_XID_ERRORS          the latest XID, 0 = none since the daemon started
//   DCGM_FI_PROF_GR_ENGINE_ACTIVE   busy ratio 0..1: NVML's utilization, the
//                                   nearest gpurm has to DCGM's profiling counter
// Labels: gpu (index), UUID, device ("nvidia<index>"), modelName (the name
// the driver reports), Hostname (the node), and pci_bus_id where known.
// DCGM's profiling series gpurm cannot measure (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE
// and the like) are left out rather than made up.
#ifndef GPURM_API_DCGM_METRICS_H_
#define GPURM_API_DCGM_METRICS_H_

#include "monitor/prometheus_text.h"
#include "scheduler/cluster_state.h"

namespace gpurm {

void WriteDcgmCompatibleMetrics(const ClusterState& state, PrometheusText& out);

}  // namespace gpurm

#endif  // GPURM_API_DCGM_METRICS_H_
