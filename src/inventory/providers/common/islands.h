// Interconnect islands (NVLink, xGMI, HCCS): GPUs that reach each other over
// the vendor's fabric, directly or through switches, share a group id.
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_ISLANDS_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_ISLANDS_H_

#include <string>
#include <vector>

namespace gpurm {

// One GPU's view of the fabric: its own endpoint name (its PCI bus id) and the
// endpoints its active links reach (other GPUs' bus ids, or switches).
struct FabricLinks {
  std::string self;
  std::vector<std::string> peers;
};

// Returns, per GPU, the position of the first GPU of its island, or -1 when no
// other GPU is reachable. GPUs linked through a common switch endpoint are one
// island. Pure function.
std::vector<int> GroupIslands(const std::vector<FabricLinks>& gpus);

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_ISLANDS_H_
