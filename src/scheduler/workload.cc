#include "scheduler/workload.h"

#include <utility>

namespace gpurm {

void WorkloadMix::Record(const GpuRequest& request, const HostResources& host) {
  if (request.gpu_count <= 0) return;
  GpuPart part;
  part.milli = request.gpu_milli > 0 && request.gpu_milli < kMilliPerGpu ? request.gpu_milli : 0;
  part.shared = request.shared || part.milli > 0;
  part.gpu_count = request.gpu_count;
  part.need_mib = MibFromGb(request.memory_gb);
  part.gpu_type = request.gpu_type;
  PartKey part_key{part.gpu_count, part.milli, part.shared, part.need_mib, part.gpu_type};
  auto [part_it, new_part] = part_index_.emplace(std::move(part_key), parts_.size());
  if (new_part) parts_.push_back(std::move(part));
  auto [shape_it, new_shape] = shape_index_.emplace(
      std::make_tuple(part_it->second, host.cpu_milli, host.memory_mib), shapes_.size());
  if (new_shape) shapes_.push_back(Shape{part_it->second, host, 0});
  shapes_[shape_it->second].count += 1;
  total_ += 1;
}

}  // namespace gpurm
