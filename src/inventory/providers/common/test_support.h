// Test helpers for the vendor back ends: a fake sysfs tree, scoped
// environment variables and the paths of the fake vendor libraries and
// scripted machines (tests/fakes), which CMake passes in as definitions.
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_TEST_SUPPORT_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/types.h"
#include "inventory/providers/common/vendor_backend.h"

namespace gpurm::testing {

inline std::string FakeMachine(const std::string& file) {
  return std::string(GPURM_FAKE_MACHINES) + "/" + file;
}

// One refresh of a back end's GPUs as LocalProvider runs it (there each GPU's
// Sample and Health on a worker thread of its own, here one GPU after another).
inline void SampleAll(VendorBackend& backend, std::vector<Gpu>* gpus,
                      std::vector<std::string>* notes) {
  backend.PollEvents(notes);
  for (size_t i = 0; i < gpus->size(); ++i) {
    backend.Sample(i, &(*gpus)[i], notes);
    backend.Health(i, &(*gpus)[i], notes);
  }
}

// Sets (or unsets, with nullopt) an environment variable for one scope. The
// fake libraries read their machine from the environment, as drivers read
// their configuration. Tests are single-threaded while they hold one.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = getenv(name_.c_str())) old_ = old;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// <root>/sys/bus/pci/devices/<bus id>/<file> under a fresh temp directory.
class FakeSysfs {
 public:
  // The process id keeps trees apart when ctest runs tests in parallel
  // (each test is a process of its own, and fixtures reuse names).
  explicit FakeSysfs(const std::string& name)
      : root_(std::filesystem::path(::testing::TempDir()) /
              ("gpurm_sysfs_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(devices_dir());
  }
  ~FakeSysfs() { std::filesystem::remove_all(root_); }

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path devices_dir() const { return root_ / "sys" / "bus" / "pci" / "devices"; }

  void AddDevice(const std::string& bus_id, const std::map<std::string, std::string>& files) {
    const std::filesystem::path dir = devices_dir() / bus_id;
    std::filesystem::create_directories(dir);
    for (const auto& [name, content] : files) {
      std::filesystem::create_directories((dir / name).parent_path());
      std::ofstream(dir / name) << content << "\n";
    }
  }

 private:
  std::filesystem::path root_;
};

}  // namespace gpurm::testing

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_TEST_SUPPORT_H_
