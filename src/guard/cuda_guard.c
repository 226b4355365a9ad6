/* libgpurm_cuda_guard.so: holds a job to its GPU memory grant at the CUDA
 * driver API. Loaded with LD_PRELOAD (gpurm run, the Python package and
 * gpurm's Kubernetes Jobs set it); configured by GPURM_ALLOCATION_ID and
 * GPURM_CUDA_MEMORY_LIMITS_MB (guard_config.h). Without them it forwards
 * every call unchanged.
 *
 * What it wraps: the allocation entry points (cuMemAlloc_v2,
 * cuMemAllocPitch_v2, cuMemAllocManaged, cuMemAllocAsync[_ptsz],
 * cuMemAllocFromPoolAsync[_ptsz], cuMemCreate, cuArrayCreate_v2,
 * cuArray3DCreate_v2), their frees (cuMemFree_v2, cuMemFreeAsync[_ptsz],
 * cuMemRelease, cuArrayDestroy), and cuMemGetInfo_v2 / cuDeviceTotalMem_v2.
 * A program reaches them three ways, all covered: linked against libcuda
 * (these definitions come first in symbol lookup), through dlsym (wrapped
 * here: a name of the table answers with its wrapper), and through
 * cuGetProcAddress / cuGetProcAddress_v2 (the CUDA runtime since 11.3; the
 * driver's answer is swapped for the wrapper of the function it returned).
 *
 * Accounting: one ledger per allocation, a file in /dev/shm mapped by every
 * process of the allocation on this machine. Each process owns a slot (its
 * pid and start time) holding its bytes per device; only the owner writes
 * its slot, so a process that dies mid-update leaves a consistent slot, and
 * the slot of a process that no longer exists (pid gone, or reused by a
 * process with another start time) is reclaimed and its bytes come back.
 * So the processes sharing a ledger must share a PID namespace: a pid from
 * another namespace looks like a process that no longer exists.
 * Admission adds the request to the own slot first and then sums every slot
 * (sequentially consistent atomics): of two processes racing for the last
 * bytes at least one sees the other, so the grant is never exceeded; both
 * may be refused, which errs towards the neighbour's guarantee. Sizes are
 * the bytes requested (pitched allocations: pitch x height once known;
 * arrays: from their descriptors), not the driver's page rounding.
 *
 * Only libc and libdl; no C++ runtime, so it loads into any process. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guard/cuda_driver_abi.h"
#include "guard/guard_config.h"

#define EXPORT __attribute__((visibility("default")))

enum {
  kMaxSlots = 256,
  kPitchAlignment = 512, /* The pitch cuMemAllocPitch rounds rows up to, at least. */
};

/* ------------------------------------------------------------------------ */
/* The shared ledger. Zero-filled on creation, which is its empty state. */

typedef struct {
  _Atomic int32_t owner; /* 0: free; kReclaiming: being emptied; else the owner's pid. */
  uint32_t reserved;
  _Atomic uint64_t start_time; /* The owner's start time (clock ticks after boot). */
  _Atomic uint64_t used[GPURM_GUARD_MAX_DEVICES];
} Slot;

typedef struct {
  _Atomic uint32_t slot_end; /* Slots at or past this index have never been owned. */
  uint32_t reserved;
  Slot slots[kMaxSlots];
} Ledger;

static const int32_t kReclaiming = -1;

/* ------------------------------------------------------------------------ */
/* The wrapped entry points: the driver's functions, resolved once. */

typedef CUresult (*MemAllocFn)(CUdeviceptr*, size_t);
typedef CUresult (*MemAllocPitchFn)(CUdeviceptr*, size_t*, size_t, size_t, unsigned int);
typedef CUresult (*MemAllocManagedFn)(CUdeviceptr*, size_t, unsigned int);
typedef CUresult (*MemAllocAsyncFn)(CUdeviceptr*, size_t, CUstream);
typedef CUresult (*MemAllocFromPoolAsyncFn)(CUdeviceptr*, size_t, CUmemoryPool, CUstream);
typedef CUresult (*MemCreateFn)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                                unsigned long long);
typedef CUresult (*ArrayCreateFn)(CUarray*, const CUDA_ARRAY_DESCRIPTOR*);
typedef CUresult (*Array3DCreateFn)(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*);
typedef CUresult (*MemFreeFn)(CUdeviceptr);
typedef CUresult (*MemFreeAsyncFn)(CUdeviceptr, CUstream);
typedef CUresult (*MemReleaseFn)(CUmemGenericAllocationHandle);
typedef CUresult (*ArrayDestroyFn)(CUarray);
typedef CUresult (*MemGetInfoFn)(size_t*, size_t*);
typedef CUresult (*DeviceTotalMemFn)(size_t*, CUdevice);
typedef CUresult (*GetProcAddressFn)(const char*, void**, int, cuuint64_t);
typedef CUresult (*GetProcAddressV2Fn)(const char*, void**, int, cuuint64_t,
                                       CUdriverProcAddressQueryResult*);
typedef CUresult (*CtxGetDeviceFn)(CUdevice*);
typedef void* (*DlsymFn)(void*, const char*);

typedef enum {
  kMemAlloc,
  kMemAllocPitch,
  kMemAllocManaged,
  kMemAllocAsync,
  kMemAllocAsyncPtsz,
  kMemAllocFromPoolAsync,
  kMemAllocFromPoolAsyncPtsz,
  kMemCreate,
  kArrayCreate,
  kArray3DCreate,
  kMemFree,
  kMemFreeAsync,
  kMemFreeAsyncPtsz,
  kMemRelease,
  kArrayDestroy,
  kMemGetInfo,
  kDeviceTotalMem,
  kGetProcAddress,
  kGetProcAddressV2,
  kEntryCount
} EntryId;

typedef struct {
  const char* name;
  void* wrapper;
} Entry;

/* Filled in after the wrappers are defined (kEntries, at the end). */
static const Entry* Entries(void);

/* What a remembered allocation is keyed by: device pointers, VMM handles and
 * arrays live in different name spaces. */
typedef enum { kPointer = 1, kHandle = 2, kArray = 3 } Kind;

typedef struct {
  uint64_t key; /* 0: empty. */
  uint64_t bytes;
  int32_t device;
  int32_t kind; /* 0 with key 1: a deleted entry (tombstone). */
} Remembered;

static struct {
  pthread_once_t once;
  gpurm_guard_config config;
  char config_error[256];
  int config_bad;
  DlsymFn real_dlsym;
  _Atomic int driver_resolved; /* g.real and ctx_get_device hold libcuda's functions. */
  void* real[kEntryCount];
  CtxGetDeviceFn ctx_get_device;

  pthread_mutex_t mutex; /* Guards everything below. */
  Ledger* ledger;
  int ledger_failed; /* The ledger could not be opened: refuse (said once). */
  int slot;          /* -1: none claimed yet. */
  pid_t slot_pid;
  Remembered* table; /* Open addressing, linear probing; capacity a power of two. */
  size_t table_capacity;
  size_t table_used; /* Live entries and tombstones. */
  int warned_config;
  int warned_device;
} g = {.once = PTHREAD_ONCE_INIT, .mutex = PTHREAD_MUTEX_INITIALIZER, .slot = -1};

static void Say(const char* message) {
  /* One write, so that lines of concurrent processes do not interleave. */
  char line[512];
  const int length = snprintf(line, sizeof(line), "gpurm cuda guard: %s\n", message);
  if (length > 0) {
    const ssize_t ignored = write(
        STDERR_FILENO, line, (size_t)length < sizeof(line) ? (size_t)length : sizeof(line) - 1);
    (void)ignored;
  }
}

/* ------------------------------------------------------------------------ */
/* Resolution. */

static DlsymFn RealDlsym(void) {
  /* dlsym is wrapped below, so the real one is found by version: glibc 2.34
   * moved it into libc; older ones have it in libdl. */
  static DlsymFn real;
  if (real == NULL) {
    static const char* const versions[] = {"GLIBC_2.34", "GLIBC_2.17", "GLIBC_2.2.5"};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]) && real == NULL; ++i) {
      real = (DlsymFn)dlvsym(RTLD_NEXT, "dlsym", versions[i]);
    }
  }
  return real;
}

/* Reads the environment. Loads nothing: dlsym calls this in every process
 * the guard is preloaded into, most of which never use CUDA. */
static void Initialize(void) {
  g.real_dlsym = RealDlsym();
  g.config_bad = gpurm_guard_parse_config(getenv(GPURM_ENV_ALLOCATION_ID),
                                          getenv(GPURM_ENV_CUDA_MEMORY_LIMITS_MB), &g.config,
                                          g.config_error, sizeof(g.config_error)) != 0;
}

/* Finds libcuda's functions once libcuda is loaded: the program linked it,
 * or dlopened it before resolving a wrapped name; dlopen by soname finds it
 * either way. Retried until it succeeds, for a wrapper reached before
 * libcuda was loaded (answered CUDA_ERROR_NOT_FOUND). */
static void ResolveDriver(void) {
  /* Not under g.mutex: dlopen takes the loader's lock, and a library
   * constructor holding that lock may call a wrapper. */
  void* libcuda = g.real_dlsym == NULL ? NULL : dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  if (libcuda == NULL) return;
  void* real[kEntryCount];
  const Entry* entries = Entries();
  for (int i = 0; i < kEntryCount; ++i) real[i] = g.real_dlsym(libcuda, entries[i].name);
  void* ctx_get_device = g.real_dlsym(libcuda, "cuCtxGetDevice");
  pthread_mutex_lock(&g.mutex);
  if (!atomic_load(&g.driver_resolved)) {
    memcpy(g.real, real, sizeof(real));
    g.ctx_get_device = (CtxGetDeviceFn)ctx_get_device;
    atomic_store(&g.driver_resolved, 1);
  }
  pthread_mutex_unlock(&g.mutex);
  /* The handle's reference is dropped; libcuda stays loaded by the program's. */
  dlclose(libcuda);
}

static void* Real(EntryId id) {
  pthread_once(&g.once, Initialize);
  if (!atomic_load(&g.driver_resolved)) ResolveDriver();
  return g.real[id];
}

/* ------------------------------------------------------------------------ */
/* Processes and slots. */

/* Field 22 of /proc/<pid>/stat; 0 when the process does not exist. */
static uint64_t ProcessStartTime(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buffer[1024];
  const ssize_t length = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (length <= 0) return 0;
  buffer[length] = '\0';
  /* The command name (field 2) may contain spaces and ')': skip past the last ')'. */
  const char* cursor = strrchr(buffer, ')');
  if (cursor == NULL) return 0;
  for (int field = 2; field < 22 && cursor != NULL; ++field) cursor = strchr(cursor + 1, ' ');
  return cursor == NULL ? 0 : strtoull(cursor + 1, NULL, 10);
}

static int OwnerGone(const Slot* slot) {
  const int32_t owner = atomic_load(&slot->owner);
  if (owner <= 0) return 0;
  const uint64_t recorded = atomic_load(&slot->start_time);
  const uint64_t actual = ProcessStartTime(owner);
  /* recorded == 0: the owner is between claiming the slot and recording its
   * start time, so it is alive. */
  return actual == 0 || (recorded != 0 && recorded != actual);
}

/* Empties the slot of a process that no longer exists. The owner field is
 * taken first, so exactly one process empties it; its bytes count until
 * they are zeroed, never less. */
static void Reclaim(Slot* slot) {
  int32_t owner = atomic_load(&slot->owner);
  if (owner <= 0 || !atomic_compare_exchange_strong(&slot->owner, &owner, kReclaiming)) return;
  for (int d = 0; d < GPURM_GUARD_MAX_DEVICES; ++d) atomic_store(&slot->used[d], 0);
  atomic_store(&slot->start_time, 0);
  atomic_store(&slot->owner, 0);
}

static void ReclaimDeadSlots(Ledger* ledger) {
  const uint32_t end = atomic_load(&ledger->slot_end);
  for (uint32_t i = 0; i < end && i < kMaxSlots; ++i) {
    if (i != (uint32_t)g.slot && OwnerGone(&ledger->slots[i])) Reclaim(&ledger->slots[i]);
  }
}

static uint64_t Used(const Ledger* ledger, int device) {
  uint64_t total = 0;
  const uint32_t end = atomic_load(&ledger->slot_end);
  for (uint32_t i = 0; i < end && i < kMaxSlots; ++i) {
    total += atomic_load(&ledger->slots[i].used[device]);
  }
  return total;
}

static Ledger* OpenLedger(void) {
  const int fd =
      open(g.config.ledger_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);
  if (fd < 0) return NULL;
  struct stat status;
  Ledger* ledger = NULL;
  /* Another user's file of that name is not this allocation's ledger. */
  if (fstat(fd, &status) == 0 && status.st_uid == geteuid() &&
      (status.st_size >= (off_t)sizeof(Ledger) || ftruncate(fd, sizeof(Ledger)) == 0)) {
    void* mapped = mmap(NULL, sizeof(Ledger), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped != MAP_FAILED) ledger = (Ledger*)mapped;
  }
  close(fd);
  return ledger;
}

/* This process's slot, claimed on first use; NULL when the ledger cannot be
 * opened or is full. Call with g.mutex held. */
static Slot* OwnSlotLocked(void) {
  if (g.slot >= 0) return &g.ledger->slots[g.slot];
  if (g.ledger_failed) return NULL;
  if (g.ledger == NULL) g.ledger = OpenLedger();
  if (g.ledger != NULL) {
    const pid_t self = getpid();
    const uint64_t started = ProcessStartTime(self);
    for (int i = 0; i < kMaxSlots && g.slot < 0; ++i) {
      Slot* slot = &g.ledger->slots[i];
      /* Gone owners, and this very process before an exec: the exec dropped
       * its allocations with its address space. */
      const int leftover =
          atomic_load(&slot->owner) == (int32_t)self && atomic_load(&slot->start_time) == started;
      if (leftover || OwnerGone(slot)) Reclaim(slot);
      int32_t expected = 0;
      if (atomic_compare_exchange_strong(&slot->owner, &expected, (int32_t)self)) {
        atomic_store(&slot->start_time, started);
        uint32_t end = atomic_load(&g.ledger->slot_end);
        while (end < (uint32_t)i + 1 &&
               !atomic_compare_exchange_weak(&g.ledger->slot_end, &end, (uint32_t)i + 1)) {
        }
        g.slot = i;
        g.slot_pid = self;
      }
    }
  }
  if (g.slot < 0) {
    g.ledger_failed = 1;
    char message[320];
    snprintf(message, sizeof(message),
             "cannot use the ledger %s (%s): every CUDA allocation of this process is refused",
             g.config.ledger_path, g.ledger == NULL ? strerror(errno) : "all slots in use");
    Say(message);
    return NULL;
  }
  return &g.ledger->slots[g.slot];
}

/* Gives the slot back when the process exits normally; a killed process's
 * slot is reclaimed by the next process that needs the bytes. */
__attribute__((destructor)) static void ReleaseOwnSlot(void) {
  if (g.ledger == NULL || g.slot < 0 || g.slot_pid != getpid()) return;
  Slot* slot = &g.ledger->slots[g.slot];
  for (int d = 0; d < GPURM_GUARD_MAX_DEVICES; ++d) atomic_store(&slot->used[d], 0);
  atomic_store(&slot->start_time, 0);
  atomic_store(&slot->owner, 0);
}

/* A forked child is a process of its own: it claims its own slot, and the
 * parent's allocations are not its to free. */
static void ForgetInChild(void) {
  pthread_mutex_init(&g.mutex, NULL);
  g.slot = -1;
  free(g.table);
  g.table = NULL;
  g.table_capacity = 0;
  g.table_used = 0;
}

__attribute__((constructor)) static void RegisterForkHandler(void) {
  pthread_atfork(NULL, NULL, ForgetInChild);
}

/* ------------------------------------------------------------------------ */
/* This process's allocations: what each free gives back. */

static size_t Probe(uint64_t key, int kind, size_t capacity) {
  uint64_t hash = (key ^ (uint64_t)kind) * UINT64_C(0x9E3779B97F4A7C15);
  return (size_t)(hash >> 17) & (capacity - 1);
}

/* Rehashes without the tombstones, into a table at most half full. */
static int GrowLocked(void) {
  size_t live = 0;
  for (size_t i = 0; i < g.table_capacity; ++i) live += g.table[i].kind != 0;
  size_t capacity = 256;
  while ((live + 1) * 2 > capacity) capacity *= 2;
  Remembered* table = calloc(capacity, sizeof(Remembered));
  if (table == NULL) return -1;
  for (size_t i = 0; i < g.table_capacity; ++i) {
    const Remembered* entry = &g.table[i];
    if (entry->kind == 0) continue;
    size_t at = Probe(entry->key, entry->kind, capacity);
    while (table[at].key != 0) at = (at + 1) & (capacity - 1);
    table[at] = *entry;
  }
  free(g.table);
  g.table = table;
  g.table_capacity = capacity;
  g.table_used = live;
  return 0;
}

static int RememberLocked(uint64_t key, Kind kind, int device, uint64_t bytes) {
  if ((g.table_used + 1) * 4 > g.table_capacity * 3 && GrowLocked() != 0) return -1;
  size_t at = Probe(key, kind, g.table_capacity);
  while (g.table[at].key != 0) at = (at + 1) & (g.table_capacity - 1);
  g.table[at] = (Remembered){.key = key, .bytes = bytes, .device = device, .kind = kind};
  ++g.table_used;
  return 0;
}

/* Removes the entry; returns 0 and its device and bytes, or -1 when this
 * process did not allocate it through the guard. */
static int ForgetLocked(uint64_t key, Kind kind, int* device, uint64_t* bytes) {
  if (g.table_capacity == 0) return -1;
  size_t at = Probe(key, kind, g.table_capacity);
  while (g.table[at].key != 0) {
    Remembered* entry = &g.table[at];
    if (entry->key == key && entry->kind == (int32_t)kind) {
      *device = entry->device;
      *bytes = entry->bytes;
      entry->kind = 0; /* Tombstone: the key stays non-zero so probing goes on. */
      entry->key = 1;
      return 0;
    }
    at = (at + 1) & (g.table_capacity - 1);
  }
  return -1;
}

/* ------------------------------------------------------------------------ */
/* Admission. */

static int Active(void) {
  pthread_once(&g.once, Initialize);
  return g.config.enabled || g.config_bad;
}

/* The device of the calling thread's current context; -1 without one (the
 * driver then answers the call itself). CUdevice values are ordinals. */
static int CurrentDevice(void) {
  CUdevice device = -1;
  if (g.ctx_get_device == NULL || g.ctx_get_device(&device) != CUDA_SUCCESS) return -1;
  return device;
}

static int DeviceCovered(int device) {
  if (device >= 0 && device < g.config.device_count) return 1;
  pthread_mutex_lock(&g.mutex);
  const int first = !g.warned_device;
  g.warned_device = 1;
  pthread_mutex_unlock(&g.mutex);
  if (first) {
    char message[200];
    snprintf(message, sizeof(message),
             "device %d has no limit in " GPURM_ENV_CUDA_MEMORY_LIMITS_MB
             " (%d devices): its allocations are refused",
             device, g.config.device_count);
    Say(message);
  }
  return 0;
}

/* Reserves `bytes` on `device` for this process, or refuses with
 * CUDA_ERROR_OUT_OF_MEMORY when the allocation's processes together would
 * pass the grant. */
static CUresult Admit(int device, uint64_t bytes) {
  if (g.config_bad) {
    pthread_mutex_lock(&g.mutex);
    const int first = !g.warned_config;
    g.warned_config = 1;
    pthread_mutex_unlock(&g.mutex);
    if (first) {
      char message[400];
      snprintf(message, sizeof(message), "%s; every CUDA allocation of this process is refused",
               g.config_error);
      Say(message);
    }
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (!DeviceCovered(device)) return CUDA_ERROR_OUT_OF_MEMORY;
  const uint64_t limit = g.config.limit_bytes[device];
  if (bytes > limit) return CUDA_ERROR_OUT_OF_MEMORY;
  pthread_mutex_lock(&g.mutex);
  Slot* slot = OwnSlotLocked();
  pthread_mutex_unlock(&g.mutex);
  if (slot == NULL) return CUDA_ERROR_OUT_OF_MEMORY;
  atomic_fetch_add(&slot->used[device], bytes);
  if (Used(g.ledger, device) <= limit) return CUDA_SUCCESS;
  /* Over the grant: bytes of processes that died may still be counted. */
  ReclaimDeadSlots(g.ledger);
  if (Used(g.ledger, device) <= limit) return CUDA_SUCCESS;
  atomic_fetch_sub(&slot->used[device], bytes);
  return CUDA_ERROR_OUT_OF_MEMORY;
}

static void Unreserve(int device, uint64_t bytes) {
  atomic_fetch_sub(&g.ledger->slots[g.slot].used[device], bytes);
}

/* After a successful allocation: what its free will give back. */
static void Remember(uint64_t key, Kind kind, int device, uint64_t bytes) {
  pthread_mutex_lock(&g.mutex);
  const int failed = RememberLocked(key, kind, device, bytes);
  pthread_mutex_unlock(&g.mutex);
  /* Out of host memory: the bytes stay counted until the process exits. */
  (void)failed;
}

/* After a successful free. */
static void GiveBack(uint64_t key, Kind kind) {
  int device = 0;
  uint64_t bytes = 0;
  pthread_mutex_lock(&g.mutex);
  const int found = ForgetLocked(key, kind, &device, &bytes) == 0 && g.slot >= 0;
  pthread_mutex_unlock(&g.mutex);
  if (found) Unreserve(device, bytes);
}

/* Allocates through `allocate` (which returns the new allocation's key)
 * after admitting `bytes` on `device`. */
#define GUARDED_ALLOCATION(device, bytes, kind, call, key)              \
  do {                                                                  \
    const int guarded_device = (device);                                \
    const uint64_t guarded_bytes = (bytes);                             \
    const CUresult admitted = Admit(guarded_device, guarded_bytes);     \
    if (admitted != CUDA_SUCCESS) return admitted;                      \
    const CUresult result = (call);                                     \
    if (result == CUDA_SUCCESS) {                                       \
      Remember((uint64_t)(key), (kind), guarded_device, guarded_bytes); \
    } else {                                                            \
      Unreserve(guarded_device, guarded_bytes);                         \
    }                                                                   \
    return result;                                                      \
  } while (0)

/* ------------------------------------------------------------------------ */
/* The wrappers. Each forwards unchanged when the guard is off, the driver
 * lacks the function (CUDA_ERROR_NOT_FOUND, as the driver's own stubs), or
 * there is no current context. */

static CUresult GuardMemAlloc(CUdeviceptr* dptr, size_t bytesize) {
  const MemAllocFn real = (MemAllocFn)Real(kMemAlloc);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || dptr == NULL) return real(dptr, bytesize);
  GUARDED_ALLOCATION(device, bytesize, kPointer, real(dptr, bytesize), *dptr);
}

static CUresult GuardMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  const MemAllocManagedFn real = (MemAllocManagedFn)Real(kMemAllocManaged);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  /* Managed memory can migrate; it is counted on the current device, where
   * it is first used in the common case. */
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || dptr == NULL) return real(dptr, bytesize, flags);
  GUARDED_ALLOCATION(device, bytesize, kPointer, real(dptr, bytesize, flags), *dptr);
}

static CUresult PitchedAllocation(MemAllocPitchFn real, CUdeviceptr* dptr, size_t* pitch,
                                  size_t width, size_t height, unsigned int element_size) {
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || dptr == NULL || pitch == NULL) {
    return real(dptr, pitch, width, height, element_size);
  }
  /* The pitch is known after the call: admit the least it can be, then
   * count what it is. */
  const uint64_t row = ((uint64_t)width + kPitchAlignment - 1) / kPitchAlignment * kPitchAlignment;
  if (height != 0 && row > UINT64_MAX / height) return CUDA_ERROR_OUT_OF_MEMORY;
  const uint64_t estimate = row * height;
  const CUresult admitted = Admit(device, estimate);
  if (admitted != CUDA_SUCCESS) return admitted;
  const CUresult result = real(dptr, pitch, width, height, element_size);
  if (result != CUDA_SUCCESS) {
    Unreserve(device, estimate);
    return result;
  }
  const uint64_t actual = (uint64_t)*pitch * height;
  if (actual > estimate) {
    atomic_fetch_add(&g.ledger->slots[g.slot].used[device], actual - estimate);
  } else {
    Unreserve(device, estimate - actual);
  }
  Remember(*dptr, kPointer, device, actual);
  return result;
}

static CUresult GuardMemAllocPitch(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                                   unsigned int element_size) {
  const MemAllocPitchFn real = (MemAllocPitchFn)Real(kMemAllocPitch);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  return PitchedAllocation(real, dptr, pitch, width, height, element_size);
}

static CUresult AsyncAllocation(MemAllocAsyncFn real, CUdeviceptr* dptr, size_t bytesize,
                                CUstream stream) {
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  /* The stream belongs to the current context in the common case. */
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || dptr == NULL) return real(dptr, bytesize, stream);
  GUARDED_ALLOCATION(device, bytesize, kPointer, real(dptr, bytesize, stream), *dptr);
}

static CUresult GuardMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return AsyncAllocation((MemAllocAsyncFn)Real(kMemAllocAsync), dptr, bytesize, stream);
}

static CUresult GuardMemAllocAsyncPtsz(CUdeviceptr* dptr, size_t bytesize, CUstream stream) {
  return AsyncAllocation((MemAllocAsyncFn)Real(kMemAllocAsyncPtsz), dptr, bytesize, stream);
}

static CUresult PoolAllocation(MemAllocFromPoolAsyncFn real, CUdeviceptr* dptr, size_t bytesize,
                               CUmemoryPool pool, CUstream stream) {
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  /* Counted on the current device: pools serve the device of their stream. */
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || dptr == NULL) return real(dptr, bytesize, pool, stream);
  GUARDED_ALLOCATION(device, bytesize, kPointer, real(dptr, bytesize, pool, stream), *dptr);
}

static CUresult GuardMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                           CUstream stream) {
  return PoolAllocation((MemAllocFromPoolAsyncFn)Real(kMemAllocFromPoolAsync), dptr, bytesize, pool,
                        stream);
}

static CUresult GuardMemAllocFromPoolAsyncPtsz(CUdeviceptr* dptr, size_t bytesize,
                                               CUmemoryPool pool, CUstream stream) {
  return PoolAllocation((MemAllocFromPoolAsyncFn)Real(kMemAllocFromPoolAsyncPtsz), dptr, bytesize,
                        pool, stream);
}

static CUresult GuardMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                               const CUmemAllocationProp* prop, unsigned long long flags) {
  const MemCreateFn real = (MemCreateFn)Real(kMemCreate);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  /* Only device memory counts; host and NUMA locations are not the grant's. */
  const int on_device = Active() && handle != NULL && prop != NULL &&
                        prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
  if (!on_device) return real(handle, size, prop, flags);
  GUARDED_ALLOCATION(prop->location.id, size, kHandle, real(handle, size, prop, flags), *handle);
}

/* Bytes per channel of an array format; formats of other sizes (packed and
 * block-compressed ones) count 4, at least what they take. */
static uint64_t FormatBytes(int format) {
  switch (format) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
      return 2;
    default:
      return 4;
  }
}

/* width x height x depth x channels x format bytes; UINT64_MAX on overflow. */
static uint64_t ArrayBytes(size_t width, size_t height, size_t depth, unsigned int channels,
                           int format) {
  const uint64_t factors[] = {width, height == 0 ? 1 : height, depth == 0 ? 1 : depth,
                              channels == 0 ? 1 : channels, FormatBytes(format)};
  uint64_t bytes = 1;
  for (size_t i = 0; i < sizeof(factors) / sizeof(factors[0]); ++i) {
    if (factors[i] != 0 && bytes > UINT64_MAX / factors[i]) return UINT64_MAX;
    bytes *= factors[i];
  }
  return bytes;
}

static CUresult GuardArrayCreate(CUarray* array, const CUDA_ARRAY_DESCRIPTOR* descriptor) {
  const ArrayCreateFn real = (ArrayCreateFn)Real(kArrayCreate);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || array == NULL || descriptor == NULL) return real(array, descriptor);
  const uint64_t bytes = ArrayBytes(descriptor->Width, descriptor->Height, 1,
                                    descriptor->NumChannels, descriptor->Format);
  GUARDED_ALLOCATION(device, bytes, kArray, real(array, descriptor), (uintptr_t)*array);
}

static CUresult GuardArray3DCreate(CUarray* array, const CUDA_ARRAY3D_DESCRIPTOR* descriptor) {
  const Array3DCreateFn real = (Array3DCreateFn)Real(kArray3DCreate);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const int device = Active() ? CurrentDevice() : -1;
  if (device < 0 || array == NULL || descriptor == NULL) return real(array, descriptor);
  const uint64_t bytes = ArrayBytes(descriptor->Width, descriptor->Height, descriptor->Depth,
                                    descriptor->NumChannels, descriptor->Format);
  GUARDED_ALLOCATION(device, bytes, kArray, real(array, descriptor), (uintptr_t)*array);
}

static CUresult GuardMemFree(CUdeviceptr dptr) {
  const MemFreeFn real = (MemFreeFn)Real(kMemFree);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(dptr);
  if (result == CUDA_SUCCESS && Active()) GiveBack(dptr, kPointer);
  return result;
}

static CUresult AsyncFree(MemFreeAsyncFn real, CUdeviceptr dptr, CUstream stream) {
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(dptr, stream);
  /* Given back when the free is queued: the stream frees it before any
   * later work on it can allocate again. */
  if (result == CUDA_SUCCESS && Active()) GiveBack(dptr, kPointer);
  return result;
}

static CUresult GuardMemFreeAsync(CUdeviceptr dptr, CUstream stream) {
  return AsyncFree((MemFreeAsyncFn)Real(kMemFreeAsync), dptr, stream);
}

static CUresult GuardMemFreeAsyncPtsz(CUdeviceptr dptr, CUstream stream) {
  return AsyncFree((MemFreeAsyncFn)Real(kMemFreeAsyncPtsz), dptr, stream);
}

static CUresult GuardMemRelease(CUmemGenericAllocationHandle handle) {
  const MemReleaseFn real = (MemReleaseFn)Real(kMemRelease);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(handle);
  if (result == CUDA_SUCCESS && Active()) GiveBack(handle, kHandle);
  return result;
}

static CUresult GuardArrayDestroy(CUarray array) {
  const ArrayDestroyFn real = (ArrayDestroyFn)Real(kArrayDestroy);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(array);
  if (result == CUDA_SUCCESS && Active()) GiveBack((uintptr_t)array, kArray);
  return result;
}

/* The grant is the device's size as far as the job can tell; what is free is
 * what the allocation has not used, or less when the device itself has
 * less. */
static CUresult GuardMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  const MemGetInfoFn real = (MemGetInfoFn)Real(kMemGetInfo);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(free_bytes, total_bytes);
  const int device = result == CUDA_SUCCESS && Active() && g.config.enabled ? CurrentDevice() : -1;
  if (device < 0 || device >= g.config.device_count || free_bytes == NULL || total_bytes == NULL) {
    return result;
  }
  const uint64_t limit = g.config.limit_bytes[device];
  pthread_mutex_lock(&g.mutex);
  const int have_ledger = OwnSlotLocked() != NULL;
  pthread_mutex_unlock(&g.mutex);
  uint64_t used = 0;
  if (have_ledger) {
    ReclaimDeadSlots(g.ledger);
    used = Used(g.ledger, device);
  }
  const uint64_t left = used < limit ? limit - used : 0;
  if (*total_bytes > limit) *total_bytes = (size_t)limit;
  if (*free_bytes > left) *free_bytes = (size_t)left;
  return result;
}

static CUresult GuardDeviceTotalMem(size_t* bytes, CUdevice device) {
  const DeviceTotalMemFn real = (DeviceTotalMemFn)Real(kDeviceTotalMem);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(bytes, device);
  if (result == CUDA_SUCCESS && bytes != NULL && Active() && g.config.enabled && device >= 0 &&
      device<g.config.device_count&& * bytes> g.config.limit_bytes[device]) {
    *bytes = (size_t)g.config.limit_bytes[device];
  }
  return result;
}

/* The wrapper for a function the driver handed out, or the function itself
 * when the guard does not wrap it. */
static void* WrapperOf(void* function) {
  if (function == NULL) return NULL;
  const Entry* entries = Entries();
  for (int i = 0; i < kEntryCount; ++i) {
    if (g.real[i] == function) return entries[i].wrapper;
  }
  return function;
}

static CUresult GuardGetProcAddress(const char* symbol, void** function, int cuda_version,
                                    cuuint64_t flags) {
  const GetProcAddressFn real = (GetProcAddressFn)Real(kGetProcAddress);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(symbol, function, cuda_version, flags);
  if (result == CUDA_SUCCESS && function != NULL) *function = WrapperOf(*function);
  return result;
}

static CUresult GuardGetProcAddressV2(const char* symbol, void** function, int cuda_version,
                                      cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  const GetProcAddressV2Fn real = (GetProcAddressV2Fn)Real(kGetProcAddressV2);
  if (real == NULL) return CUDA_ERROR_NOT_FOUND;
  const CUresult result = real(symbol, function, cuda_version, flags, status);
  if (result == CUDA_SUCCESS && function != NULL) *function = WrapperOf(*function);
  return result;
}

static const Entry kEntries[kEntryCount] = {
    [kMemAlloc] = {"cuMemAlloc_v2", (void*)GuardMemAlloc},
    [kMemAllocPitch] = {"cuMemAllocPitch_v2", (void*)GuardMemAllocPitch},
    [kMemAllocManaged] = {"cuMemAllocManaged", (void*)GuardMemAllocManaged},
    [kMemAllocAsync] = {"cuMemAllocAsync", (void*)GuardMemAllocAsync},
    [kMemAllocAsyncPtsz] = {"cuMemAllocAsync_ptsz", (void*)GuardMemAllocAsyncPtsz},
    [kMemAllocFromPoolAsync] = {"cuMemAllocFromPoolAsync", (void*)GuardMemAllocFromPoolAsync},
    [kMemAllocFromPoolAsyncPtsz] = {"cuMemAllocFromPoolAsync_ptsz",
                                    (void*)GuardMemAllocFromPoolAsyncPtsz},
    [kMemCreate] = {"cuMemCreate", (void*)GuardMemCreate},
    [kArrayCreate] = {"cuArrayCreate_v2", (void*)GuardArrayCreate},
    [kArray3DCreate] = {"cuArray3DCreate_v2", (void*)GuardArray3DCreate},
    [kMemFree] = {"cuMemFree_v2", (void*)GuardMemFree},
    [kMemFreeAsync] = {"cuMemFreeAsync", (void*)GuardMemFreeAsync},
    [kMemFreeAsyncPtsz] = {"cuMemFreeAsync_ptsz", (void*)GuardMemFreeAsyncPtsz},
    [kMemRelease] = {"cuMemRelease", (void*)GuardMemRelease},
    [kArrayDestroy] = {"cuArrayDestroy", (void*)GuardArrayDestroy},
    [kMemGetInfo] = {"cuMemGetInfo_v2", (void*)GuardMemGetInfo},
    [kDeviceTotalMem] = {"cuDeviceTotalMem_v2", (void*)GuardDeviceTotalMem},
    [kGetProcAddress] = {"cuGetProcAddress", (void*)GuardGetProcAddress},
    [kGetProcAddressV2] = {"cuGetProcAddress_v2", (void*)GuardGetProcAddressV2},
};

static const Entry* Entries(void) { return kEntries; }

/* ------------------------------------------------------------------------ */
/* The exported names: a program linked against libcuda binds to these. The
 * wrappers above are static, so references inside the guard never bind to
 * libcuda's functions of the same name. */

#define ALIAS(name, target) __attribute__((alias(#target))) EXPORT

CUresult cuMemAlloc_v2(CUdeviceptr*, size_t) ALIAS(cuMemAlloc_v2, GuardMemAlloc);
CUresult cuMemAllocPitch_v2(CUdeviceptr*, size_t*, size_t, size_t, unsigned int)
    ALIAS(cuMemAllocPitch_v2, GuardMemAllocPitch);
CUresult cuMemAllocManaged(CUdeviceptr*, size_t, unsigned int)
    ALIAS(cuMemAllocManaged, GuardMemAllocManaged);
CUresult cuMemAllocAsync(CUdeviceptr*, size_t, CUstream) ALIAS(cuMemAllocAsync, GuardMemAllocAsync);
CUresult cuMemAllocAsync_ptsz(CUdeviceptr*, size_t, CUstream)
    ALIAS(cuMemAllocAsync_ptsz, GuardMemAllocAsyncPtsz);
CUresult cuMemAllocFromPoolAsync(CUdeviceptr*, size_t, CUmemoryPool, CUstream)
    ALIAS(cuMemAllocFromPoolAsync, GuardMemAllocFromPoolAsync);
CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr*, size_t, CUmemoryPool, CUstream)
    ALIAS(cuMemAllocFromPoolAsync_ptsz, GuardMemAllocFromPoolAsyncPtsz);
CUresult cuMemCreate(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                     unsigned long long) ALIAS(cuMemCreate, GuardMemCreate);
CUresult cuArrayCreate_v2(CUarray*, const CUDA_ARRAY_DESCRIPTOR*)
    ALIAS(cuArrayCreate_v2, GuardArrayCreate);
CUresult cuArray3DCreate_v2(CUarray*, const CUDA_ARRAY3D_DESCRIPTOR*)
    ALIAS(cuArray3DCreate_v2, GuardArray3DCreate);
CUresult cuMemFree_v2(CUdeviceptr) ALIAS(cuMemFree_v2, GuardMemFree);
CUresult cuMemFreeAsync(CUdeviceptr, CUstream) ALIAS(cuMemFreeAsync, GuardMemFreeAsync);
CUresult cuMemFreeAsync_ptsz(CUdeviceptr, CUstream)
    ALIAS(cuMemFreeAsync_ptsz, GuardMemFreeAsyncPtsz);
CUresult cuMemRelease(CUmemGenericAllocationHandle) ALIAS(cuMemRelease, GuardMemRelease);
CUresult cuArrayDestroy(CUarray) ALIAS(cuArrayDestroy, GuardArrayDestroy);
CUresult cuMemGetInfo_v2(size_t*, size_t*) ALIAS(cuMemGetInfo_v2, GuardMemGetInfo);
CUresult cuDeviceTotalMem_v2(size_t*, CUdevice) ALIAS(cuDeviceTotalMem_v2, GuardDeviceTotalMem);
CUresult cuGetProcAddress(const char*, void**, int, cuuint64_t)
    ALIAS(cuGetProcAddress, GuardGetProcAddress);
CUresult cuGetProcAddress_v2(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*)
    ALIAS(cuGetProcAddress_v2, GuardGetProcAddressV2);

/* ------------------------------------------------------------------------ */
/* dlsym. A program that dlopens libcuda and looks a wrapped name up gets the
 * wrapper. Every other lookup gets what the real dlsym gives the caller:
 * RTLD_NEXT is relative to the object that called, so it is answered by
 * searching the objects loaded after the caller's, in load order (the
 * global search order), as the real dlsym would. */

static void* NextAfterCaller(const void* caller, const char* name) {
  Dl_info info;
  struct link_map* object = NULL;
  if (dladdr1(caller, &info, (void**)&object, RTLD_DL_LINKMAP) == 0 || object == NULL) {
    return NULL;
  }
  for (struct link_map* next = object->l_next; next != NULL; next = next->l_next) {
    void* handle = dlopen(next->l_name, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == NULL) continue;
    void* symbol = g.real_dlsym(handle, name);
    dlclose(handle);
    if (symbol != NULL) return symbol;
  }
  return NULL;
}

EXPORT void* dlsym(void* handle, const char* name) {
  pthread_once(&g.once, Initialize);
  if (g.real_dlsym == NULL) return NULL;
  if (handle == RTLD_NEXT) return NextAfterCaller(__builtin_return_address(0), name);
  void* symbol = g.real_dlsym(handle, name);
  if (symbol == NULL || name[0] != 'c' || name[1] != 'u') return symbol;
  for (int i = 0; i < kEntryCount; ++i) {
    if (strcmp(kEntries[i].name, name) == 0) return kEntries[i].wrapper;
  }
  return symbol;
}
