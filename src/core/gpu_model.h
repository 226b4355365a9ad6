// GPU model parsing: turns names as drivers and Kubernetes report them
// ("Tesla V100-SXM2-32GB", "NVIDIA H100 80GB HBM3", "AMD Instinct MI250X",
// "Ascend910B", "T4", "RTX4090", ...) into a canonical model, vendor and
// memory size. Pure functions, no I/O, thread-safe.
#ifndef GPURM_CORE_GPU_MODEL_H_
#define GPURM_CORE_GPU_MODEL_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gpurm {

enum class Vendor { kUnknown, kNvidia, kAmd, kIntel, kHuawei };

// "nvidia", "amd", "intel", "huawei", "unknown".
const char* VendorName(Vendor vendor);
// Inverse of VendorName; also accepts "ascend" and "npu" for Huawei. nullopt if unknown.
std::optional<Vendor> ParseVendor(std::string_view name);

struct GpuModel {
  // The name exactly as it was given (never rewritten).
  std::string raw_name;
  // Canonical model family used for matching requests: "V100", "A100", "H100",
  // "T4", "RTX4090", "MI250X", "MAX1550", "ASCEND910B", ... Empty when the name
  // is not recognised: unknown names are kept, never guessed.
  std::string canonical;
  // Form factor or variant when the name tells it: "SXM2", "SXM4", "PCIE", "NVL",
  // "HBM3", ... Empty otherwise.
  std::string variant;
  Vendor vendor = Vendor::kUnknown;
  // Memory per device in GB (GiB, as vendors label cards: "80GB" = 80 GiB),
  // from the name itself, else the model's built-in or configured spec.
  // nullopt when unknown.
  std::optional<double> memory_gb;
  // Compute capability relevant to framework plans: bf16 support (Ampere+,
  // Hopper, MI200+, Intel Max, Ascend 910B).
  bool supports_bf16 = false;

  bool known() const { return !canonical.empty(); }

  bool operator==(const GpuModel&) const = default;
};

// Memory overrides in GB keyed by canonical model ("T4", "V100", "A100"...), as in
// gpu_config.yaml's gpu_memory_specs. An override applies only when the name
// itself does not state a memory size (an "A100-SXM4-40GB" stays 40 GB).
using GpuMemorySpecs = std::map<std::string, double>;

// Parses a device/product name. Never fails: unknown names come back with
// canonical empty and memory_gb nullopt (unless specs name the raw string).
GpuModel ParseGpuModel(std::string_view name, const GpuMemorySpecs& memory_specs = {});

// Canonicalises a model name as a user writes it in a request ("v100",
// "A100-80GB", "rtx 4090", "H100") to the canonical family used for matching.
// Returns the input upper-cased and stripped of separators when unknown, so an
// unknown type still matches an unknown device of the same raw spelling.
std::string CanonicalGpuType(std::string_view user_type);

// A gpu_type as a request writes it, read once and matched against devices.
// A bare family ("A100", "H100") matches every device of that family; words
// that name a variant narrow it to that variant only: a form factor
// ("A100-SXM4"), a SKU ("H100 NVL", "910B4"), a MIG profile, or a memory
// size ("A100-40GB" matches a 40 GB A100, never an 80 GB one). Distinct
// products are distinct families ("V100S" is not a "V100"). An unknown type
// matches devices whose raw name has the same spelling (CanonicalGpuType).
class GpuTypePattern {
 public:
  // Devices report a little less memory than their label ("16GB" T4: 15,360
  // MiB); a size in a request matches a device within this fraction of it.
  // Sizes that tell variants apart differ by far more (40/80, 16/32, 80/94).
  static constexpr double kLabelledSizeTolerance = 0.1;

  explicit GpuTypePattern(std::string_view requested);

  // Does a device of `model` that reports `device_memory_gb` of memory (0 or
  // less: unknown, then the model's memory counts) match?
  bool Matches(const GpuModel& model, double device_memory_gb) const;

  // The canonical family (CanonicalGpuType of the request).
  const std::string& family() const { return family_; }

 private:
  std::string family_;
  std::vector<std::string> variant_words_;  // All must be among the device's.
  std::optional<double> memory_gb_;         // The size word, when the request has one.
};

}  // namespace gpurm

#endif  // GPURM_CORE_GPU_MODEL_H_
