#include "simulator/variants.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "scheduler/framework.h"

namespace gpurm::sim {
namespace {

bool IsGpu(const TracePod& pod) { return pod.num_gpu > 0; }
bool IsSharing(const TracePod& pod) { return IsGpu(pod) && pod.GpuDemandMilli() < kMilliPerGpu; }
bool IsMultiGpu(const TracePod& pod) { return pod.num_gpu > 1; }

// Seeded draws: MixSeed's stream, as the simulator's.
class Draws {
 public:
  explicit Draws(uint64_t seed) : state_(MixSeed(seed ^ 0x7a51a7e5ULL)) {}
  size_t Below(size_t n) {
    state_ = MixSeed(state_);
    return static_cast<size_t>(state_ % n);
  }

 private:
  uint64_t state_;
};

// Makes the pods at `members` (indices into the base) appear `count` times
// in all: a subset without replacement when fewer, every one plus copies
// drawn with replacement when more.
void SetCount(const std::vector<size_t>& members, size_t count, std::vector<int>& copies,
              Draws& draws) {
  if (count <= members.size()) {
    std::vector<size_t> order = members;
    for (size_t i = 0; i < count; ++i)
      std::swap(order[i], order[i + draws.Below(order.size() - i)]);
    for (size_t m : members) copies[m] = 0;
    for (size_t i = 0; i < count; ++i) copies[order[i]] = 1;
    return;
  }
  for (size_t m : members) copies[m] = 1;
  for (size_t extra = members.size(); extra < count; ++extra)
    ++copies[members[draws.Below(members.size())]];
}

std::vector<TracePod> Emit(const std::vector<TracePod>& base, const std::vector<int>& copies) {
  std::vector<TracePod> out;
  size_t clone = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    for (int c = 0; c < copies[i]; ++c) {
      out.push_back(base[i]);
      if (c > 0) out.back().name += "-v" + std::to_string(clone++);
    }
  }
  return out;
}

}  // namespace

Result<VariantSpec> ParseVariant(const std::string& name) {
  static const std::pair<const char*, VariantSpec::Kind> kPrefixes[] = {
      {"cpu", VariantSpec::Kind::kCpu},
      {"gpushare", VariantSpec::Kind::kGpuShare},
      {"multigpu", VariantSpec::Kind::kMultiGpu},
      {"gpuspec", VariantSpec::Kind::kGpuSpec}};
  for (const auto& [prefix, kind] : kPrefixes) {
    const std::string p = prefix;
    if (name.rfind(p, 0) != 0) continue;
    const std::string digits = name.substr(p.size());
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      break;
    }
    const double value = std::atof(digits.c_str());
    // cpuNNN is in tenths of a percent (cpu050 = 5.0%), the others in percent.
    const double target = kind == VariantSpec::Kind::kCpu ? value / 1000.0 : value / 100.0;
    const bool cpu_ok = kind == VariantSpec::Kind::kCpu && digits.size() == 3 && target < 1.0;
    const bool other_ok = kind != VariantSpec::Kind::kCpu && target <= 1.0;
    if (!cpu_ok && !other_ok) break;
    return VariantSpec{kind, target, name};
  }
  return InvalidArgument("unknown variant \"" + name +
                             "\": expected cpuNNN (CPU-only pods, NNN tenths of a percent of "
                             "the pods, e.g. cpu050), gpushareNN, multigpuNN or gpuspecNN "
                             "(percent, e.g. gpushare60)",
                         "variant");
}

std::vector<std::string> PaperVariants() {
  return {"cpu050",     "cpu100",     "cpu200",      "cpu250",     "gpushare20", "gpushare40",
          "gpushare60", "gpushare80", "gpushare100", "gpuspec10",  "gpuspec20",  "gpuspec25",
          "gpuspec33",  "multigpu20", "multigpu30",  "multigpu40", "multigpu50"};
}

double MeasureVariantShare(const std::vector<TracePod>& pods, VariantSpec::Kind kind) {
  double part = 0;
  double whole = 0;
  for (const TracePod& pod : pods) {
    switch (kind) {
      case VariantSpec::Kind::kCpu:
        part += IsGpu(pod) ? 0 : 1;
        whole += 1;
        break;
      case VariantSpec::Kind::kGpuShare:
        part += IsSharing(pod) ? static_cast<double>(pod.GpuDemandMilli()) : 0;
        whole += static_cast<double>(pod.GpuDemandMilli());
        break;
      case VariantSpec::Kind::kMultiGpu:
        part += IsMultiGpu(pod) ? static_cast<double>(pod.GpuDemandMilli()) : 0;
        whole += static_cast<double>(pod.GpuDemandMilli());
        break;
      case VariantSpec::Kind::kGpuSpec:
        part += IsGpu(pod) && !pod.gpu_spec.empty() ? 1 : 0;
        whole += IsGpu(pod) ? 1 : 0;
        break;
    }
  }
  return whole > 0 ? part / whole : 0;
}

Result<std::vector<TracePod>> DeriveVariant(const std::vector<TracePod>& base,
                                            const VariantSpec& spec, uint64_t seed) {
  Draws draws(seed);
  std::vector<int> copies(base.size(), 1);
  std::vector<size_t> cpu, gpu, sharing, whole, multi, constrained, open;
  for (size_t i = 0; i < base.size(); ++i) {
    const TracePod& pod = base[i];
    if (!IsGpu(pod)) {
      cpu.push_back(i);
      continue;
    }
    gpu.push_back(i);
    (IsSharing(pod) ? sharing : whole).push_back(i);
    if (IsMultiGpu(pod)) multi.push_back(i);
    (pod.gpu_spec.empty() ? open : constrained).push_back(i);
  }
  auto lacking = [&](const std::string& what) {
    return InvalidArgument(spec.name + ": the base trace has no " + what + " to sample", "variant");
  };
  const double t = spec.target;
  switch (spec.kind) {
    case VariantSpec::Kind::kCpu: {
      const auto want =
          static_cast<size_t>(std::llround(t * static_cast<double>(gpu.size()) / (1.0 - t)));
      if (want > 0 && cpu.empty()) return lacking("CPU-only pods");
      SetCount(cpu, want, copies, draws);
      return Emit(base, copies);
    }
    case VariantSpec::Kind::kGpuShare: {
      if (gpu.empty()) return lacking("GPU pods");
      auto mean = [&](const std::vector<size_t>& members) {
        double sum = 0;
        for (size_t m : members) sum += static_cast<double>(base[m].GpuDemandMilli());
        return members.empty() ? 0.0 : sum / static_cast<double>(members.size());
      };
      const double s = mean(sharing);
      const double w = mean(whole);
      // n sharing pods of mean s and N - n others of mean w request t of
      // the demand: n s = t (n s + (N - n) w).
      const double n = static_cast<double>(gpu.size());
      size_t want = gpu.size();
      if (t < 1.0) {
        if (s <= 0) return lacking("GPU-sharing pods");
        want = static_cast<size_t>(std::llround(n * t * w / ((1.0 - t) * s + t * w)));
      }
      if (want > 0 && sharing.empty()) return lacking("GPU-sharing pods");
      if (want < gpu.size() && whole.empty()) return lacking("whole-GPU pods");
      SetCount(sharing, want, copies, draws);
      SetCount(whole, gpu.size() - want, copies, draws);
      return Emit(base, copies);
    }
    case VariantSpec::Kind::kMultiGpu: {
      double part = 0;
      double total = 0;
      for (const TracePod& pod : base) {
        total += static_cast<double>(pod.GpuDemandMilli());
        if (IsMultiGpu(pod)) part += static_cast<double>(pod.GpuDemandMilli());
      }
      if (multi.empty()) {
        if (t > 0) return lacking("multi-GPU pods");
        return base;
      }
      if (total > 0 && part / total < t) {
        if (t >= 1.0)
          return InvalidArgument(spec.name + ": multigpu100 would never end", "variant");
        while (part / total < t) {
          const size_t pick = multi[draws.Below(multi.size())];
          ++copies[pick];
          part += static_cast<double>(base[pick].GpuDemandMilli());
          total += static_cast<double>(base[pick].GpuDemandMilli());
        }
      } else {
        std::vector<size_t> order = multi;
        for (size_t i = 0; i < order.size() && part / total > t; ++i) {
          std::swap(order[i], order[i + draws.Below(order.size() - i)]);
          copies[order[i]] = 0;
          part -= static_cast<double>(base[order[i]].GpuDemandMilli());
          total -= static_cast<double>(base[order[i]].GpuDemandMilli());
        }
      }
      return Emit(base, copies);
    }
    case VariantSpec::Kind::kGpuSpec: {
      if (constrained.empty()) {
        return InvalidArgument(spec.name +
                                   ": the base trace has no gpu_spec; derive gpuspec variants "
                                   "from one that has (openb_pod_list_gpuspec33.csv)",
                               "variant");
      }
      std::vector<TracePod> out = base;
      const auto want = static_cast<size_t>(std::llround(t * static_cast<double>(gpu.size())));
      if (want <= constrained.size()) {
        std::vector<size_t> order = constrained;
        for (size_t i = 0; i < constrained.size() - want; ++i) {
          std::swap(order[i], order[i + draws.Below(order.size() - i)]);
          out[order[i]].gpu_spec.clear();
        }
      } else {
        std::vector<size_t> order = open;
        for (size_t i = 0; i < want - constrained.size() && i < order.size(); ++i) {
          std::swap(order[i], order[i + draws.Below(order.size() - i)]);
          out[order[i]].gpu_spec = base[constrained[draws.Below(constrained.size())]].gpu_spec;
        }
      }
      return out;
    }
  }
  return base;
}

}  // namespace gpurm::sim
