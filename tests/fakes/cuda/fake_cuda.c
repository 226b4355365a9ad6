/* A fake libcuda.so.1 for the CUDA guard's tests and benchmark: the driver
 * API entry points the guard wraps, over devices that exist only as memory
 * counters in this process. The devices' sizes come from
 * FAKE_CUDA_DEVICE_MEMORY_MB ("16384,16384" when unset: two 16 GiB GPUs).
 * An allocation past a device's size fails with CUDA_ERROR_OUT_OF_MEMORY, as
 * on a full GPU; cuMemGetInfo_v2 answers the device's size and what this
 * process has not allocated. cuGetProcAddress (v1 and _v2) maps base names
 * to the versioned functions the real driver returns. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "guard/cuda_driver_abi.h"

#define EXPORT __attribute__((visibility("default")))

enum { kMaxDevices = 8, kMaxAllocations = 4096, kPerThreadDefaultStream = 2 };

typedef struct {
  uint64_t key;
  int device;
  uint64_t bytes;
} Allocation;

static struct {
  pthread_once_t once;
  pthread_mutex_t mutex;
  int device_count;
  uint64_t total[kMaxDevices];
  uint64_t used[kMaxDevices];
  Allocation allocations[kMaxAllocations];
  uint64_t next_address;
  /* A context is a pointer into this array; its device is its index. */
  char contexts[kMaxDevices];
} fake = {.once = PTHREAD_ONCE_INIT, .mutex = PTHREAD_MUTEX_INITIALIZER};

static __thread CUcontext current;

static void Load(void) {
  const char* sizes = getenv("FAKE_CUDA_DEVICE_MEMORY_MB");
  if (sizes == NULL || sizes[0] == '\0') sizes = "16384,16384";
  const char* cursor = sizes;
  while (*cursor != '\0' && fake.device_count < kMaxDevices) {
    char* end = NULL;
    fake.total[fake.device_count++] = strtoull(cursor, &end, 10) << 20;
    cursor = *end == ',' ? end + 1 : end;
  }
  fake.next_address = UINT64_C(0x7f0000000000);
}

static int Ready(void) {
  pthread_once(&fake.once, Load);
  return fake.device_count;
}

static int CurrentDevice(void) {
  return current == NULL ? -1 : (int)((char*)current - fake.contexts);
}

/* Records an allocation of `bytes` on `device`; its key is a fresh address. */
static CUresult Allocate(int device, uint64_t bytes, unsigned long long* key) {
  if (!Ready()) return CUDA_ERROR_NOT_INITIALIZED;
  if (device < 0 || device >= fake.device_count) return CUDA_ERROR_INVALID_CONTEXT;
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  CUresult result = CUDA_ERROR_OUT_OF_MEMORY;
  pthread_mutex_lock(&fake.mutex);
  if (bytes <= fake.total[device] - fake.used[device]) {
    for (int i = 0; i < kMaxAllocations; ++i) {
      if (fake.allocations[i].key != 0) continue;
      fake.next_address += (bytes + 0xfffff) & ~UINT64_C(0xfffff);
      fake.allocations[i] = (Allocation){fake.next_address, device, bytes};
      fake.used[device] += bytes;
      *key = fake.next_address;
      result = CUDA_SUCCESS;
      break;
    }
  }
  pthread_mutex_unlock(&fake.mutex);
  return result;
}

static CUresult Free(unsigned long long key) {
  CUresult result = CUDA_ERROR_INVALID_VALUE;
  pthread_mutex_lock(&fake.mutex);
  for (int i = 0; i < kMaxAllocations; ++i) {
    if (key == 0 || fake.allocations[i].key != key) continue;
    fake.used[fake.allocations[i].device] -= fake.allocations[i].bytes;
    fake.allocations[i].key = 0;
    result = CUDA_SUCCESS;
    break;
  }
  pthread_mutex_unlock(&fake.mutex);
  return result;
}

EXPORT CUresult cuInit(unsigned int flags) {
  (void)flags;
  return Ready() ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED;
}

EXPORT CUresult cuDeviceGetCount(int* count) {
  *count = Ready();
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (ordinal < 0 || ordinal >= Ready()) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxCreate_v2(CUcontext* context, unsigned int flags, CUdevice device) {
  (void)flags;
  if (device < 0 || device >= Ready()) return CUDA_ERROR_INVALID_DEVICE;
  *context = current = (CUcontext)&fake.contexts[device];
  return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(CUcontext context) {
  current = context;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxGetDevice(CUdevice* device) {
  if (current == NULL) return CUDA_ERROR_INVALID_CONTEXT;
  *device = CurrentDevice();
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  return Allocate(CurrentDevice(), bytesize, dptr);
}

EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                                   unsigned int element_size) {
  (void)element_size;
  *pitch = (width + 511) / 512 * 512;
  return Allocate(CurrentDevice(), (uint64_t)*pitch * height, dptr);
}

EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  (void)flags;
  return Allocate(CurrentDevice(), bytesize, dptr);
}

EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  (void)stream;
  return Allocate(CurrentDevice(), bytesize, dptr);
}

EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return cuMemAllocAsync(dptr, bytesize, stream);
}

EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                        CUstream stream) {
  (void)pool;
  (void)stream;
  return Allocate(CurrentDevice(), bytesize, dptr);
}

EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                             CUstream stream) {
  return cuMemAllocFromPoolAsync(dptr, bytesize, pool, stream);
}

EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                            const CUmemAllocationProp* prop, unsigned long long flags) {
  (void)flags;
  if (prop == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return Allocate(prop->location.id, size, handle);
}

EXPORT CUresult cuArrayCreate_v2(CUarray* array, const CUDA_ARRAY_DESCRIPTOR* descriptor) {
  unsigned long long key = 0;
  const uint64_t rows = descriptor->Height == 0 ? 1 : descriptor->Height;
  const CUresult result =
      Allocate(CurrentDevice(), descriptor->Width * rows * descriptor->NumChannels * 4, &key);
  if (result == CUDA_SUCCESS) *array = (CUarray)(uintptr_t)key;
  return result;
}

EXPORT CUresult cuArray3DCreate_v2(CUarray* array, const CUDA_ARRAY3D_DESCRIPTOR* descriptor) {
  unsigned long long key = 0;
  const uint64_t rows = descriptor->Height == 0 ? 1 : descriptor->Height;
  const uint64_t depth = descriptor->Depth == 0 ? 1 : descriptor->Depth;
  const CUresult result = Allocate(
      CurrentDevice(), descriptor->Width * rows * depth * descriptor->NumChannels * 4, &key);
  if (result == CUDA_SUCCESS) *array = (CUarray)(uintptr_t)key;
  return result;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) { return Free(dptr); }

EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  (void)stream;
  return Free(dptr);
}

EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream stream) {
  return cuMemFreeAsync(dptr, stream);
}

EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) { return Free(handle); }

EXPORT CUresult cuArrayDestroy(CUarray array) { return Free((uintptr_t)array); }

EXPORT CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total_bytes) {
  const int device = CurrentDevice();
  if (!Ready() || device < 0) return CUDA_ERROR_INVALID_CONTEXT;
  pthread_mutex_lock(&fake.mutex);
  *free_bytes = fake.total[device] - fake.used[device];
  *total_bytes = fake.total[device];
  pthread_mutex_unlock(&fake.mutex);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice device) {
  if (device < 0 || device >= Ready()) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = fake.total[device];
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGetProcAddress(const char* symbol, void** function, int cuda_version,
                                 cuuint64_t flags);
EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** function, int cuda_version,
                                    cuuint64_t flags, CUdriverProcAddressQueryResult* status);

/* Base name -> the function the driver hands out (the _v2 variants since
 * CUDA 3.2; the _ptsz variant of a stream-ordered call when the per-thread
 * default stream is asked for). */
static void* Lookup(const char* symbol, int cuda_version, cuuint64_t flags) {
  const int per_thread = (flags & kPerThreadDefaultStream) != 0;
  static const struct {
    const char* name;
    void* function;
    void* per_thread;
  } kTable[] = {
      {"cuInit", (void*)cuInit, NULL},
      {"cuDeviceGetCount", (void*)cuDeviceGetCount, NULL},
      {"cuDeviceGet", (void*)cuDeviceGet, NULL},
      {"cuCtxCreate", (void*)cuCtxCreate_v2, NULL},
      {"cuCtxSetCurrent", (void*)cuCtxSetCurrent, NULL},
      {"cuCtxGetDevice", (void*)cuCtxGetDevice, NULL},
      {"cuMemAlloc", (void*)cuMemAlloc_v2, NULL},
      {"cuMemAllocPitch", (void*)cuMemAllocPitch_v2, NULL},
      {"cuMemAllocManaged", (void*)cuMemAllocManaged, NULL},
      {"cuMemAllocAsync", (void*)cuMemAllocAsync, (void*)cuMemAllocAsync_ptsz},
      {"cuMemAllocFromPoolAsync", (void*)cuMemAllocFromPoolAsync,
       (void*)cuMemAllocFromPoolAsync_ptsz},
      {"cuMemCreate", (void*)cuMemCreate, NULL},
      {"cuArrayCreate", (void*)cuArrayCreate_v2, NULL},
      {"cuArray3DCreate", (void*)cuArray3DCreate_v2, NULL},
      {"cuMemFree", (void*)cuMemFree_v2, NULL},
      {"cuMemFreeAsync", (void*)cuMemFreeAsync, (void*)cuMemFreeAsync_ptsz},
      {"cuMemRelease", (void*)cuMemRelease, NULL},
      {"cuArrayDestroy", (void*)cuArrayDestroy, NULL},
      {"cuMemGetInfo", (void*)cuMemGetInfo_v2, NULL},
      {"cuDeviceTotalMem", (void*)cuDeviceTotalMem_v2, NULL},
  };
  if (strcmp(symbol, "cuGetProcAddress") == 0) {
    return cuda_version >= 12000 ? (void*)cuGetProcAddress_v2 : (void*)cuGetProcAddress;
  }
  for (size_t i = 0; i < sizeof(kTable) / sizeof(kTable[0]); ++i) {
    if (strcmp(kTable[i].name, symbol) != 0) continue;
    return per_thread && kTable[i].per_thread != NULL ? kTable[i].per_thread : kTable[i].function;
  }
  return NULL;
}

EXPORT CUresult cuGetProcAddress(const char* symbol, void** function, int cuda_version,
                                 cuuint64_t flags) {
  if (symbol == NULL || function == NULL) return CUDA_ERROR_INVALID_VALUE;
  *function = Lookup(symbol, cuda_version, flags);
  return *function != NULL ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** function, int cuda_version,
                                    cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  const CUresult result = cuGetProcAddress(symbol, function, cuda_version, flags);
  if (status != NULL) *status = result == CUDA_SUCCESS ? 0 : 1;
  return result;
}
