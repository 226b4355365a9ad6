// Kubernetes resource quantities ("8", "500m", "16Gi", "1e3"), as they
// appear in status.allocatable and container resources.
#ifndef GPURM_KUBE_QUANTITY_H_
#define GPURM_KUBE_QUANTITY_H_

#include <optional>
#include <string_view>

namespace gpurm::kube {

// The value of a quantity, or nullopt when `text` is not one. Suffixes:
// decimal m k M G T P E, binary Ki Mi Gi Ti Pi Ei, or an exponent (e3, E-2).
std::optional<double> ParseQuantity(std::string_view text);

}  // namespace gpurm::kube

#endif  // GPURM_KUBE_QUANTITY_H_
