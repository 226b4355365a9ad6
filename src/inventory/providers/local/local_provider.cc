#include "inventory/providers/local/local_provider.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "inventory/providers/common/sysfs.h"

namespace gpurm {
namespace {

// Replaces `libraries` with the one path an environment variable names.
void OverrideFromEnvironment(const char* variable, std::vector<std::string>* libraries) {
  const char* value = std::getenv(variable);
  if (value != nullptr && value[0] != '\0') *libraries = {value};
}

// "2 s", "0.5 s".
std::string Seconds(int64_t ms) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g s", static_cast<double>(ms) / 1000.0);
  return buffer;
}

// Takes a back end a call is stuck in (see ~LocalProvider) and never
// destroys it. Held from a static, so leak checkers see it as intended.
void Abandon(std::unique_ptr<VendorBackend> backend) {
  static std::mutex mutex;
  static auto* abandoned = new std::vector<std::unique_ptr<VendorBackend>>();
  std::lock_guard<std::mutex> lock(mutex);
  abandoned->push_back(std::move(backend));
}

// Back ends list MIG devices after all GPUs; the node lists each under its
// GPU (GPU 4, its MIG devices, GPU 5, ...), and a MIG device of an unhealthy
// GPU is unhealthy too (an XID, an ECC error or a lost GPU takes all of its
// MIG devices with it). `first` is where this vendor's GPUs start.
void ListMigDevicesUnderTheirGpu(std::vector<Gpu>* gpus, size_t first) {
  std::stable_sort(gpus->begin() + static_cast<std::ptrdiff_t>(first), gpus->end(),
                   [](const Gpu& a, const Gpu& b) {
                     if (a.index != b.index) return a.index < b.index;
                     return !a.is_mig_device() && b.is_mig_device();
                   });
  const Gpu* parent = nullptr;
  for (size_t i = first; i < gpus->size(); ++i) {
    Gpu& gpu = (*gpus)[i];
    if (!gpu.is_mig_device()) {
      parent = &gpu;
      continue;
    }
    if (parent == nullptr || parent->uuid != gpu.mig_parent_uuid || parent->healthy) continue;
    const std::string reason =
        "its GPU " + std::to_string(parent->index) + " is unhealthy: " + parent->health_reason;
    gpu.health_reason = gpu.healthy ? reason : gpu.health_reason + "; " + reason;
    gpu.healthy = false;
  }
}

}  // namespace

LocalProviderOptions LocalProviderOptions::FromEnvironment() {
  LocalProviderOptions options;
  OverrideFromEnvironment("GPURM_NVML_LIBRARY", &options.nvml_libraries);
  OverrideFromEnvironment("GPURM_ROCM_SMI_LIBRARY", &options.rocm_smi_libraries);
  OverrideFromEnvironment("GPURM_LEVEL_ZERO_LIBRARY", &options.level_zero_libraries);
  OverrideFromEnvironment("GPURM_DCMI_LIBRARY", &options.dcmi_libraries);
  if (const char* root = std::getenv("GPURM_SYSFS_ROOT"); root != nullptr && root[0] != '\0') {
    options.sysfs_root = root;
  }
  return options;
}

LocalProvider::LocalProvider(std::string node_name, GpuMemorySpecs memory_specs,
                             LocalProviderOptions options)
    : node_name_(std::move(node_name)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &system_clock_) {
  const BackendContext context{node_name_, std::move(memory_specs)};
  vendors_.resize(4);
  vendors_[0].backend = MakeNvmlBackend(options_.nvml_libraries, context);
  vendors_[1].backend = MakeAmdBackend(options_.rocm_smi_libraries, context);
  vendors_[2].backend = MakeIntelBackend(options_.level_zero_libraries, context);
  vendors_[3].backend = MakeAscendBackend(options_.dcmi_libraries, context);
}

// Calls still running get the sampling timeout to finish. One stuck beyond
// that must not hang the daemon's shutdown (a GPU off the bus can hold an
// NVML call for minutes, and nothing can cancel it): that vendor's busy
// workers are detached and its back end is deliberately never destroyed
// (Abandon), library loaded and device state intact, so the call can still
// return into valid code and memory; the job then writes only the Reading it
// co-owns and its thread exits. Destroying the back end when the call
// returns instead would unload the library from a detached thread, perhaps
// while the process exits. The leak is one back end per vendor with a stuck
// call, once, when the provider goes (at daemon shutdown).
LocalProvider::~LocalProvider() {
  const auto deadline = std::chrono::steady_clock::now() + options_.sample_timeout;
  for (Vendor& vendor : vendors_) {
    if (vendor.workers == nullptr || vendor.workers->WaitIdle(deadline)) continue;
    vendor.workers.reset();
    Abandon(std::move(vendor.backend));
  }
}

void LocalProvider::DiscoverVendors() {
  // PCI is listed only while some vendor still has to be discovered: a
  // settled refresh is one Sample and one Health call per GPU.
  const bool discovering =
      std::any_of(vendors_.begin(), vendors_.end(), [](const Vendor& v) { return !v.discovered; });
  if (!discovering) return;
  const sysfs::PciListing pci = sysfs::ListPciAccelerators(options_.sysfs_root);
  pci_note_.clear();
  if (pci.error) {
    pci_note_ = "cannot list " + pci.devices_dir.string() + ": " + pci.error.message() +
                " (vendor libraries were asked anyway)";
  }
  for (Vendor& vendor : vendors_) {
    if (vendor.discovered) continue;
    // Discovery replaces the back end's device state: not while a sampling
    // call of the previous discovery's GPUs is still running.
    if (vendor.workers != nullptr) {
      if (!vendor.workers->WaitIdle(std::chrono::steady_clock::now())) continue;
      retired_cpu_seconds_ += vendor.workers->cpu_seconds();
      vendor.workers.reset();
    }
    VendorScan scan = vendor.backend->Discover(pci);
    vendor.notes = std::move(scan.notes);
    vendor.discovered = scan.settled;
    vendor.readings.clear();
    for (Gpu& gpu : scan.gpus) {
      if (gpu.numa_node < 0 && !gpu.pci_bus_id.empty()) {
        if (const auto numa = sysfs::ReadInt(pci.devices_dir / gpu.pci_bus_id / "numa_node");
            numa && *numa >= 0) {
          gpu.numa_node = static_cast<int>(*numa);
        }
      }
      auto reading = std::make_shared<Reading>();
      reading->gpu = std::move(gpu);
      vendor.readings.push_back(std::move(reading));
    }
    if (!vendor.readings.empty()) {
      vendor.workers = std::make_unique<SamplingPool>(vendor.readings.size());
    }
  }
}

std::vector<std::vector<bool>> LocalProvider::PostSamples(int64_t now_unix_ms,
                                                          std::vector<std::string>* notes) {
  std::vector<std::vector<bool>> posted(vendors_.size());
  for (size_t v = 0; v < vendors_.size(); ++v) {
    Vendor& vendor = vendors_[v];
    posted[v].resize(vendor.readings.size());
    if (vendor.readings.empty()) continue;
    vendor.backend->PollEvents(notes);
    VendorBackend* backend = vendor.backend.get();
    for (size_t i = 0; i < vendor.readings.size(); ++i) {
      std::shared_ptr<Reading> reading = vendor.readings[i];
      // The job owns what it touches but the back end (see ~LocalProvider),
      // and samples a copy: Discover may read the last values meanwhile.
      posted[v][i] = vendor.workers->Post(i, [backend, reading, i, now_unix_ms] {
        Gpu gpu;
        {
          std::lock_guard<std::mutex> lock(reading->mutex);
          gpu = reading->gpu;
        }
        std::vector<std::string> job_notes;
        backend->Sample(i, &gpu, &job_notes);
        backend->Health(i, &gpu, &job_notes);
        std::lock_guard<std::mutex> lock(reading->mutex);
        reading->gpu = std::move(gpu);
        reading->notes = std::move(job_notes);
        reading->sampled_unix_ms = now_unix_ms;
      });
      if (posted[v][i]) {
        std::lock_guard<std::mutex> lock(reading->mutex);
        reading->posted_unix_ms = now_unix_ms;
      }
    }
  }
  return posted;
}

double LocalProvider::WorkerCpuSeconds() const {
  double total = retired_cpu_seconds_;
  for (const Vendor& vendor : vendors_) {
    if (vendor.workers != nullptr) total += vendor.workers->cpu_seconds();
  }
  return total;
}

Result<DiscoveryReport> LocalProvider::Discover() {
  DiscoverVendors();
  const int64_t started_unix_ms = clock_->NowUnixMs();
  const auto deadline = std::chrono::steady_clock::now() + options_.sample_timeout;
  std::vector<std::string> live_notes;
  const std::vector<std::vector<bool>> posted = PostSamples(started_unix_ms, &live_notes);
  for (const Vendor& vendor : vendors_) {
    if (vendor.workers != nullptr) vendor.workers->WaitIdle(deadline);
  }

  const int64_t now_unix_ms = clock_->NowUnixMs();
  const std::string timeout = Seconds(options_.sample_timeout.count());
  DiscoveryReport report;
  Node node;
  node.name = node_name_;
  std::vector<std::string> stale_notes;
  for (size_t v = 0; v < vendors_.size(); ++v) {
    Vendor& vendor = vendors_[v];
    report.notes.insert(report.notes.end(), vendor.notes.begin(), vendor.notes.end());
    // Node-wide numbering: this vendor's GPUs follow the previous vendors'
    // (MIG devices are not GPUs of their own: they keep their GPU's index).
    const size_t first = node.gpus.size();
    const int base = static_cast<int>(std::count_if(
        node.gpus.begin(), node.gpus.end(), [](const Gpu& g) { return !g.is_mig_device(); }));
    for (size_t i = 0; i < vendor.readings.size(); ++i) {
      const bool fresh = posted[v][i] && !vendor.workers->Busy(i);
      Reading& reading = *vendor.readings[i];
      std::lock_guard<std::mutex> lock(reading.mutex);
      Gpu& gpu = node.gpus.emplace_back(reading.gpu);
      gpu.index = base + (gpu.is_mig_device() ? reading.gpu.index : static_cast<int>(i));
      if (gpu.nvlink_group >= 0) gpu.nvlink_group += base;
      if (fresh) {
        live_notes.insert(live_notes.end(), reading.notes.begin(), reading.notes.end());
        continue;
      }
      // Stale: the last values stay (for display), but the GPU is reported
      // unhealthy, which the scheduler never offers. So a stale GPU is never
      // offered as freer than it was: it is not offered at all. Values nobody
      // could read just now may be wrong either way (outside processes come
      // and go), and a GPU whose driver calls hang has most often fallen off
      // the bus, so granting it would hand a job a GPU it cannot use; the
      // back ends treat "memory unreadable" the same way.
      std::string reason = "sampling timed out after " + timeout;
      reason += reading.sampled_unix_ms > 0
                    ? "; values from " + FormatIso8601(reading.sampled_unix_ms)
                    : "; no values read yet";
      if (!reading.gpu.healthy) reason += "; before that: " + reading.gpu.health_reason;
      gpu.healthy = false;
      gpu.health_reason = std::move(reason);
      report.stale_gpus.push_back(gpu.uuid);
      std::string note = vendor.backend->vendor() + ": GPU " + std::to_string(reading.gpu.index) +
                         " (" + gpu.uuid + "): sampling timed out after " + timeout +
                         "; the call started " + Seconds(now_unix_ms - reading.posted_unix_ms) +
                         " ago is still running";
      note +=
          reading.sampled_unix_ms > 0
              ? "; its last values are " + Seconds(now_unix_ms - reading.sampled_unix_ms) + " old"
              : "; no values read yet";
      stale_notes.push_back(std::move(note));
    }
    ListMigDevicesUnderTheirGpu(&node.gpus, first);
  }
  if (!pci_note_.empty()) report.notes.push_back(pci_note_);
  report.notes.insert(report.notes.end(), live_notes.begin(), live_notes.end());
  report.notes.insert(report.notes.end(), stale_notes.begin(), stale_notes.end());
  report.nodes.push_back(std::move(node));
  const double worker_cpu = WorkerCpuSeconds();
  report.worker_cpu_seconds = worker_cpu - reported_cpu_seconds_;
  reported_cpu_seconds_ = worker_cpu;
  return report;
}

}  // namespace gpurm
