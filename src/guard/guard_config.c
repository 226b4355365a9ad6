#include "guard/guard_config.h"

#include <stdio.h>
#include <string.h>

/* 1 TiB per device is far beyond any GPU; larger values are typos. */
#define GPURM_GUARD_MAX_LIMIT_MB (UINT64_C(1) << 20)

static int IsIdCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

static int IsAlphanumeric(char c) { return IsIdCharacter(c) && c != '.' && c != '_' && c != '-'; }

int gpurm_guard_ledger_path(const char* allocation_id, char* path, size_t path_size) {
  const size_t length = allocation_id == NULL ? 0 : strlen(allocation_id);
  if (length == 0 || length > GPURM_GUARD_MAX_ALLOCATION_ID || !IsAlphanumeric(allocation_id[0])) {
    return -1;
  }
  for (size_t i = 0; i < length; ++i) {
    if (!IsIdCharacter(allocation_id[i])) return -1;
  }
  const int written = snprintf(path, path_size, "/dev/shm/gpurm-cuda-guard-%s", allocation_id);
  return written > 0 && (size_t)written < path_size ? 0 : -1;
}

static int Fail(char* error, size_t error_size, const char* variable, const char* value,
                const char* why) {
  if (error_size > 0) snprintf(error, error_size, "%s=\"%s\": %s", variable, value, why);
  return -1;
}

int gpurm_guard_parse_config(const char* allocation_id, const char* limits_mb,
                             gpurm_guard_config* config, char* error, size_t error_size) {
  memset(config, 0, sizeof(*config));
  if (error_size > 0) error[0] = '\0';
  if (limits_mb == NULL || limits_mb[0] == '\0') return 0;
  if (allocation_id == NULL || allocation_id[0] == '\0') {
    return Fail(error, error_size, GPURM_ENV_CUDA_MEMORY_LIMITS_MB, limits_mb,
                "set without " GPURM_ENV_ALLOCATION_ID ", which names the shared ledger");
  }
  if (gpurm_guard_ledger_path(allocation_id, config->ledger_path, sizeof(config->ledger_path)) !=
      0) {
    return Fail(error, error_size, GPURM_ENV_ALLOCATION_ID, allocation_id,
                "expected 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit");
  }
  const char* cursor = limits_mb;
  for (;;) {
    if (config->device_count == GPURM_GUARD_MAX_DEVICES) {
      return Fail(error, error_size, GPURM_ENV_CUDA_MEMORY_LIMITS_MB, limits_mb,
                  "more than 64 devices");
    }
    uint64_t mib = 0;
    const char* digits = cursor;
    while (*cursor >= '0' && *cursor <= '9') {
      mib = mib * 10 + (uint64_t)(*cursor - '0');
      if (mib > GPURM_GUARD_MAX_LIMIT_MB) {
        return Fail(error, error_size, GPURM_ENV_CUDA_MEMORY_LIMITS_MB, limits_mb,
                    "a limit above 1048576 MiB (1 TiB)");
      }
      ++cursor;
    }
    if (cursor == digits || mib == 0) {
      return Fail(error, error_size, GPURM_ENV_CUDA_MEMORY_LIMITS_MB, limits_mb,
                  "expected positive whole MiB per device, separated by commas, e.g. "
                  "\"4096,4096\"");
    }
    config->limit_bytes[config->device_count++] = mib << 20;
    if (*cursor == '\0') break;
    if (*cursor != ',') {
      return Fail(error, error_size, GPURM_ENV_CUDA_MEMORY_LIMITS_MB, limits_mb,
                  "expected positive whole MiB per device, separated by commas, e.g. "
                  "\"4096,4096\"");
    }
    ++cursor;
  }
  config->enabled = 1;
  return 0;
}
