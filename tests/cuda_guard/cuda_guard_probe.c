/* A CUDA driver API program for the guard's tests: runs the commands on its
 * command line in order and prints one line per command, so a test can drive
 * it and read what the driver (through the guard, when preloaded) answered.
 *
 * Built twice: linked against libcuda.so.1 (calls bind to the exported
 * names), and with PROBE_RESOLVE_AT_RUN_TIME, which dlopens libcuda.so.1,
 * looks up cuGetProcAddress with dlsym and resolves every other function
 * through it (cuGetProcAddress_v2 for the allocations, with the per-thread
 * default stream for the stream-ordered ones; v1 for the rest), as the CUDA
 * runtime does.
 *
 *   ctx D            create a context on device D and make it current (silent
 *                    unless it fails)
 *   alloc MIB | managed MIB | async MIB | pool MIB    allocate on it
 *   pitch WIDTH HEIGHT | array WIDTH HEIGHT | array3d WIDTH HEIGHT DEPTH
 *   create D MIB     cuMemCreate on device D
 *   free             free the newest allocation not yet freed
 *   info             cuMemGetInfo_v2 in MiB: "info free=F total=T"
 *   total D          cuDeviceTotalMem_v2 in MiB: "total T"
 *   hold             print "holding" and sleep until killed
 *   next             "next ok" when dlsym(RTLD_NEXT, "getpid") from this
 *                    program finds libc's getpid, as it does without the
 *                    guard (whose dlsym answers RTLD_NEXT for its caller)
 *
 * An allocation prints "<command> ok" or "<command> error <CUresult>". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guard/cuda_driver_abi.h"

typedef struct {
  CUresult (*init)(unsigned int);
  CUresult (*ctx_create)(CUcontext*, unsigned int, CUdevice);
  CUresult (*mem_alloc)(CUdeviceptr*, size_t);
  CUresult (*mem_alloc_pitch)(CUdeviceptr*, size_t*, size_t, size_t, unsigned int);
  CUresult (*mem_alloc_managed)(CUdeviceptr*, size_t, unsigned int);
  CUresult (*mem_alloc_async)(CUdeviceptr*, size_t, CUstream);
  CUresult (*mem_alloc_from_pool_async)(CUdeviceptr*, size_t, CUmemoryPool, CUstream);
  CUresult (*mem_create)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                         unsigned long long);
  CUresult (*array_create)(CUarray*, const CUDA_ARRAY_DESCRIPTOR*);
  CUresult (*array3d_create)(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*);
  CUresult (*mem_free)(CUdeviceptr);
  CUresult (*mem_free_async)(CUdeviceptr, CUstream);
  CUresult (*mem_release)(CUmemGenericAllocationHandle);
  CUresult (*array_destroy)(CUarray);
  CUresult (*mem_get_info)(size_t*, size_t*);
  CUresult (*device_total_mem)(size_t*, CUdevice);
} Driver;

#ifdef PROBE_RESOLVE_AT_RUN_TIME
typedef CUresult (*GetProcAddressFn)(const char*, void**, int, cuuint64_t);
typedef CUresult (*GetProcAddressV2Fn)(const char*, void**, int, cuuint64_t,
                                       CUdriverProcAddressQueryResult*);
enum { kCudaVersion = 12020, kPerThreadDefaultStream = 2 };

static GetProcAddressFn g_get_proc_address;
static GetProcAddressV2Fn g_get_proc_address_v2;

static void* Resolve(const char* name, int v2, cuuint64_t flags) {
  void* function = NULL;
  CUdriverProcAddressQueryResult status = 0;
  const CUresult result = v2 ? g_get_proc_address_v2(name, &function, kCudaVersion, flags, &status)
                             : g_get_proc_address(name, &function, kCudaVersion, flags);
  if (result != CUDA_SUCCESS || function == NULL) {
    fprintf(stderr, "probe: cuGetProcAddress(%s) failed: %d\n", name, result);
    exit(1);
  }
  return function;
}

static void Load(Driver* driver) {
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (libcuda == NULL) {
    fprintf(stderr, "probe: %s\n", dlerror());
    exit(1);
  }
  g_get_proc_address = (GetProcAddressFn)dlsym(libcuda, "cuGetProcAddress");
  if (g_get_proc_address == NULL) exit(1);
  g_get_proc_address_v2 = (GetProcAddressV2Fn)Resolve("cuGetProcAddress", 0, 0);
  driver->init = Resolve("cuInit", 0, 0);
  driver->ctx_create = Resolve("cuCtxCreate", 0, 0);
  driver->mem_alloc = Resolve("cuMemAlloc", 1, 0);
  driver->mem_alloc_pitch = Resolve("cuMemAllocPitch", 1, 0);
  driver->mem_alloc_managed = Resolve("cuMemAllocManaged", 1, 0);
  driver->mem_alloc_async = Resolve("cuMemAllocAsync", 1, kPerThreadDefaultStream);
  driver->mem_alloc_from_pool_async =
      Resolve("cuMemAllocFromPoolAsync", 1, kPerThreadDefaultStream);
  driver->mem_create = Resolve("cuMemCreate", 1, 0);
  driver->array_create = Resolve("cuArrayCreate", 1, 0);
  driver->array3d_create = Resolve("cuArray3DCreate", 1, 0);
  driver->mem_free = Resolve("cuMemFree", 1, 0);
  driver->mem_free_async = Resolve("cuMemFreeAsync", 1, kPerThreadDefaultStream);
  driver->mem_release = Resolve("cuMemRelease", 1, 0);
  driver->array_destroy = Resolve("cuArrayDestroy", 1, 0);
  driver->mem_get_info = Resolve("cuMemGetInfo", 0, 0);
  driver->device_total_mem = Resolve("cuDeviceTotalMem", 0, 0);
}
#else
CUresult cuInit(unsigned int);
CUresult cuCtxCreate_v2(CUcontext*, unsigned int, CUdevice);
CUresult cuMemAlloc_v2(CUdeviceptr*, size_t);
CUresult cuMemAllocPitch_v2(CUdeviceptr*, size_t*, size_t, size_t, unsigned int);
CUresult cuMemAllocManaged(CUdeviceptr*, size_t, unsigned int);
CUresult cuMemAllocAsync(CUdeviceptr*, size_t, CUstream);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr*, size_t, CUmemoryPool, CUstream);
CUresult cuMemCreate(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                     unsigned long long);
CUresult cuArrayCreate_v2(CUarray*, const CUDA_ARRAY_DESCRIPTOR*);
CUresult cuArray3DCreate_v2(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*);
CUresult cuMemFree_v2(CUdeviceptr);
CUresult cuMemFreeAsync(CUdeviceptr, CUstream);
CUresult cuMemRelease(CUmemGenericAllocationHandle);
CUresult cuArrayDestroy(CUarray);
CUresult cuMemGetInfo_v2(size_t*, size_t*);
CUresult cuDeviceTotalMem_v2(size_t*, CUdevice);

static void Load(Driver* driver) {
  *driver = (Driver){cuInit,
                     cuCtxCreate_v2,
                     cuMemAlloc_v2,
                     cuMemAllocPitch_v2,
                     cuMemAllocManaged,
                     cuMemAllocAsync,
                     cuMemAllocFromPoolAsync,
                     cuMemCreate,
                     cuArrayCreate_v2,
                     cuArray3DCreate_v2,
                     cuMemFree_v2,
                     cuMemFreeAsync,
                     cuMemRelease,
                     cuArrayDestroy,
                     cuMemGetInfo_v2,
                     cuDeviceTotalMem_v2};
}
#endif

typedef enum { kPointer, kAsyncPointer, kHandle, kArray } Kind;

typedef struct {
  Kind kind;
  unsigned long long value;
} Held;

static size_t Mib(const char* text) { return (size_t)strtoull(text, NULL, 10) << 20; }

static void Report(const char* command, CUresult result) {
  if (result == CUDA_SUCCESS) {
    printf("%s ok\n", command);
  } else {
    printf("%s error %d\n", command, result);
  }
}

int main(int argc, char** argv) {
  Driver driver;
  Load(&driver);
  driver.init(0);
  Held held[256];
  int count = 0;
  for (int i = 1; i < argc; ++i) {
    const char* command = argv[i];
    /* The arguments a command takes, missing ones read as "0". */
#define ARG(n) (i + (n) < argc ? argv[i + (n)] : "0")
    CUresult result = CUDA_SUCCESS;
    Held made = {kPointer, 0};
    int allocates = 1;
    if (strcmp(command, "ctx") == 0) {
      CUcontext context;
      result = driver.ctx_create(&context, 0, atoi(ARG(1)));
      allocates = 0;
      i += 1;
      if (result == CUDA_SUCCESS) continue; /* Said only when it fails. */
    } else if (strcmp(command, "alloc") == 0) {
      result = driver.mem_alloc(&made.value, Mib(ARG(1)));
      i += 1;
    } else if (strcmp(command, "managed") == 0) {
      result = driver.mem_alloc_managed(&made.value, Mib(ARG(1)), 1);
      i += 1;
    } else if (strcmp(command, "async") == 0) {
      made.kind = kAsyncPointer;
      result = driver.mem_alloc_async(&made.value, Mib(ARG(1)), NULL);
      i += 1;
    } else if (strcmp(command, "pool") == 0) {
      made.kind = kAsyncPointer;
      result = driver.mem_alloc_from_pool_async(&made.value, Mib(ARG(1)), NULL, NULL);
      i += 1;
    } else if (strcmp(command, "pitch") == 0) {
      size_t pitch = 0;
      result = driver.mem_alloc_pitch(&made.value, &pitch, strtoull(ARG(1), NULL, 10),
                                      strtoull(ARG(2), NULL, 10), 4);
      i += 2;
    } else if (strcmp(command, "array") == 0) {
      CUarray array = NULL;
      const CUDA_ARRAY_DESCRIPTOR descriptor = {strtoull(ARG(1), NULL, 10),
                                                strtoull(ARG(2), NULL, 10), CU_AD_FORMAT_FLOAT, 1};
      result = driver.array_create(&array, &descriptor);
      made = (Held){kArray, (unsigned long long)(uintptr_t)array};
      i += 2;
    } else if (strcmp(command, "array3d") == 0) {
      CUarray array = NULL;
      const CUDA_ARRAY3D_DESCRIPTOR descriptor = {strtoull(ARG(1), NULL, 10),
                                                  strtoull(ARG(2), NULL, 10),
                                                  strtoull(ARG(3), NULL, 10),
                                                  CU_AD_FORMAT_FLOAT,
                                                  1,
                                                  0};
      result = driver.array3d_create(&array, &descriptor);
      made = (Held){kArray, (unsigned long long)(uintptr_t)array};
      i += 3;
    } else if (strcmp(command, "create") == 0) {
      CUmemAllocationProp prop;
      memset(&prop, 0, sizeof(prop));
      prop.type = 1; /* CU_MEM_ALLOCATION_TYPE_PINNED */
      prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
      prop.location.id = atoi(ARG(1));
      made.kind = kHandle;
      result = driver.mem_create(&made.value, Mib(ARG(2)), &prop, 0);
      i += 2;
    } else if (strcmp(command, "free") == 0) {
      allocates = 0;
      if (count == 0) {
        result = CUDA_ERROR_INVALID_VALUE;
      } else {
        const Held last = held[--count];
        switch (last.kind) {
          case kPointer:
            result = driver.mem_free(last.value);
            break;
          case kAsyncPointer:
            result = driver.mem_free_async(last.value, NULL);
            break;
          case kHandle:
            result = driver.mem_release(last.value);
            break;
          case kArray:
            result = driver.array_destroy((CUarray)(uintptr_t)last.value);
            break;
        }
      }
    } else if (strcmp(command, "info") == 0) {
      size_t free_bytes = 0, total_bytes = 0;
      result = driver.mem_get_info(&free_bytes, &total_bytes);
      if (result == CUDA_SUCCESS) {
        printf("info free=%zu total=%zu\n", free_bytes >> 20, total_bytes >> 20);
        continue;
      }
      allocates = 0;
    } else if (strcmp(command, "total") == 0) {
      size_t bytes = 0;
      result = driver.device_total_mem(&bytes, atoi(ARG(1)));
      i += 1;
      if (result == CUDA_SUCCESS) {
        printf("total %zu\n", bytes >> 20);
        continue;
      }
      allocates = 0;
    } else if (strcmp(command, "next") == 0) {
      void* next = dlsym(RTLD_NEXT, "getpid");
      printf("next %s\n", next != NULL && next == dlsym(RTLD_DEFAULT, "getpid") ? "ok" : "wrong");
      continue;
    } else if (strcmp(command, "hold") == 0) {
      printf("holding\n");
      fflush(stdout);
      for (;;) pause();
    } else {
      fprintf(stderr, "probe: unknown command %s\n", command);
      return 2;
    }
#undef ARG
    Report(command, result);
    if (allocates && result == CUDA_SUCCESS && count < 256) held[count++] = made;
  }
  return 0;
}
