// cuda_guard_bench: what the CUDA guard (libgpurm_cuda_guard.so) adds to an
// allocation call. The fake libcuda.so.1 (tests/fakes/cuda) stands in for
// the driver, so the figures are the guard's own work: an allocation and its
// free, called directly and through the guard with a limit set, and
// cuMemGetInfo_v2 both ways. bench/run reports
// (guarded - direct) / 2 per call for the pair.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "guard/cuda_driver_abi.h"

namespace {

using MemAllocFn = CUresult (*)(CUdeviceptr*, size_t);
using MemFreeFn = CUresult (*)(CUdeviceptr);
using MemGetInfoFn = CUresult (*)(size_t*, size_t*);
using CtxCreateFn = CUresult (*)(CUcontext*, unsigned int, CUdevice);

struct Functions {
  MemAllocFn mem_alloc = nullptr;
  MemFreeFn mem_free = nullptr;
  MemGetInfoFn mem_get_info = nullptr;
};

Functions Load(void* library) {
  return {reinterpret_cast<MemAllocFn>(dlsym(library, "cuMemAlloc_v2")),
          reinterpret_cast<MemFreeFn>(dlsym(library, "cuMemFree_v2")),
          reinterpret_cast<MemGetInfoFn>(dlsym(library, "cuMemGetInfo_v2"))};
}

// The fake driver, then the guard (limited to 64 GiB on each of the fake's
// two devices, under an allocation id of this process), loaded once.
struct Setup {
  Functions direct;
  Functions guarded;
  std::string ledger;
  bool ready = false;

  Setup() {
    void* driver = dlopen(GPURM_FAKE_CUDA, RTLD_NOW | RTLD_LOCAL);
    if (driver == nullptr) return;
    const std::string id = "bench-" + std::to_string(::getpid());
    ledger = "/dev/shm/gpurm-cuda-guard-" + id;
    ::setenv("GPURM_ALLOCATION_ID", id.c_str(), 1);
    ::setenv("GPURM_CUDA_MEMORY_LIMITS_MB", "65536,65536", 1);
    ::setenv("FAKE_CUDA_DEVICE_MEMORY_MB", "81920,81920", 1);
    void* guard = dlopen(GPURM_CUDA_GUARD, RTLD_NOW | RTLD_LOCAL);
    if (guard == nullptr) return;
    direct = Load(driver);
    guarded = Load(guard);
    CUcontext context = nullptr;
    const auto create = reinterpret_cast<CtxCreateFn>(dlsym(driver, "cuCtxCreate_v2"));
    ready = create != nullptr && create(&context, 0, 0) == CUDA_SUCCESS &&
            direct.mem_alloc != nullptr && guarded.mem_alloc != nullptr;
  }
  ~Setup() {
    if (!ledger.empty()) ::unlink(ledger.c_str());
  }
};

Setup& Shared() {
  static Setup setup;
  return setup;
}

void AllocFree(benchmark::State& state, bool through_guard) {
  Setup& setup = Shared();
  if (!setup.ready) {
    state.SkipWithError("the fake driver or the guard did not load");
    return;
  }
  const Functions& functions = through_guard ? setup.guarded : setup.direct;
  for (auto _ : state) {
    CUdeviceptr pointer = 0;
    if (functions.mem_alloc(&pointer, size_t{1} << 20) != CUDA_SUCCESS ||
        functions.mem_free(pointer) != CUDA_SUCCESS) {
      state.SkipWithError("an allocation failed");
      return;
    }
  }
}

void MemGetInfo(benchmark::State& state, bool through_guard) {
  Setup& setup = Shared();
  if (!setup.ready) {
    state.SkipWithError("the fake driver or the guard did not load");
    return;
  }
  const Functions& functions = through_guard ? setup.guarded : setup.direct;
  for (auto _ : state) {
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    functions.mem_get_info(&free_bytes, &total_bytes);
    benchmark::DoNotOptimize(free_bytes);
  }
}

BENCHMARK_CAPTURE(AllocFree, direct, false);
BENCHMARK_CAPTURE(AllocFree, guarded, true);
BENCHMARK_CAPTURE(MemGetInfo, direct, false);
BENCHMARK_CAPTURE(MemGetInfo, guarded, true);

}  // namespace

BENCHMARK_MAIN();
