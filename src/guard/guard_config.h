/* The CUDA guard's configuration: the environment gpurm sets for a job and
 * the shared ledger the guard keeps per allocation. C, so that the guard
 * library (no C++ runtime) and gpurm itself (which checks a job's values
 * before starting it) parse the environment with the same code.
 *
 *   GPURM_ALLOCATION_ID          the allocation; names the ledger
 *   GPURM_CUDA_MEMORY_LIMITS_MB  the grant per device, in MiB, in the order
 *                                of the devices the job sees (CUDA
 *                                device ordinals): "4096,4096"
 *
 * Neither variable limits: the guard is disabled. GPURM_ALLOCATION_ID alone
 * (a grant of GPUs the guard does not cover, or a job on the CPU) disables it
 * too. GPURM_CUDA_MEMORY_LIMITS_MB without GPURM_ALLOCATION_ID, or a value
 * that does not parse, is an error. */
#ifndef GPURM_GUARD_GUARD_CONFIG_H_
#define GPURM_GUARD_GUARD_CONFIG_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GPURM_ENV_ALLOCATION_ID "GPURM_ALLOCATION_ID"
#define GPURM_ENV_CUDA_MEMORY_LIMITS_MB "GPURM_CUDA_MEMORY_LIMITS_MB"
/* The guard's file name; gpurm looks for it next to its binary, then in
 * ../lib/gpurm/ (see cli/cuda_guard.h). */
#define GPURM_CUDA_GUARD_LIBRARY_NAME "libgpurm_cuda_guard.so"

enum {
  /* Devices one job may see (a DGX of 8 GPUs with MIG gives at most 56). */
  GPURM_GUARD_MAX_DEVICES = 64,
  GPURM_GUARD_MAX_ALLOCATION_ID = 128,
  GPURM_GUARD_LEDGER_PATH_SIZE = 192,
};

typedef struct {
  int enabled;      /* 0: the guard changes nothing. */
  int device_count; /* Devices with a limit, ordinals 0 .. device_count-1. */
  uint64_t limit_bytes[GPURM_GUARD_MAX_DEVICES];
  char ledger_path[GPURM_GUARD_LEDGER_PATH_SIZE];
} gpurm_guard_config;

/* Parses the two variables' values (NULL: unset). Returns 0 with `config`
 * filled, or -1 with a one-line reason naming the variable in `error`
 * (always NUL-terminated when error_size > 0). */
int gpurm_guard_parse_config(const char* allocation_id, const char* limits_mb,
                             gpurm_guard_config* config, char* error, size_t error_size);

/* The ledger of `allocation_id` (in /dev/shm, shared by every process of the
 * allocation on this machine). Returns 0, or -1 when the id is not 1-128
 * characters of [A-Za-z0-9._-] starting with a letter or digit. */
int gpurm_guard_ledger_path(const char* allocation_id, char* path, size_t path_size);

#ifdef __cplusplus
}
#endif

#endif /* GPURM_GUARD_GUARD_CONFIG_H_ */
