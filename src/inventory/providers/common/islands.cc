#include "inventory/providers/common/islands.h"

#include <map>
#include <numeric>

namespace gpurm {

std::vector<int> GroupIslands(const std::vector<FabricLinks>& gpus) {
  // Union-find over endpoints; GPUs are endpoints 0..n-1, others follow.
  std::map<std::string, size_t> ids;
  for (size_t i = 0; i < gpus.size(); ++i) ids.emplace(gpus[i].self, i);
  std::vector<size_t> parent(gpus.size());
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto endpoint = [&](const std::string& name) {
    auto [it, inserted] = ids.emplace(name, parent.size());
    if (inserted) parent.push_back(parent.size());
    return it->second;
  };
  auto find = [&](size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  for (size_t i = 0; i < gpus.size(); ++i) {
    for (const std::string& peer : gpus[i].peers) {
      const size_t a = find(i);
      const size_t b = find(endpoint(peer));
      // The smaller id becomes the root, so a GPU (ids < n) roots its island.
      if (a < b) parent[b] = a;
      if (b < a) parent[a] = b;
    }
  }
  std::vector<int> first(gpus.size(), -1);
  std::vector<int> size(gpus.size(), 0);
  for (size_t i = 0; i < gpus.size(); ++i) ++size[find(i)];
  for (size_t i = 0; i < gpus.size(); ++i) {
    const size_t root = find(i);
    if (size[root] > 1) first[i] = static_cast<int>(root);
  }
  return first;
}

}  // namespace gpurm
