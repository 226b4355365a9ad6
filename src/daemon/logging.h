// Daemon logging: logs/gpu_resource_manager.log (rotated) and stderr.
#ifndef GPURM_DAEMON_LOGGING_H_
#define GPURM_DAEMON_LOGGING_H_

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "core/status.h"

namespace gpurm {

// Creates the log directory and a logger writing to
// <log_dir>/gpu_resource_manager.log (10 MiB x 5 files) and to stderr, at
// `level` (config spelling: TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL, OFF).
Result<std::shared_ptr<spdlog::logger>> MakeDaemonLogger(const std::string& log_dir,
                                                         const std::string& level);

}  // namespace gpurm

#endif  // GPURM_DAEMON_LOGGING_H_
