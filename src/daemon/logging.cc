#include "daemon/logging.h"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>
#include <vector>

namespace gpurm {
namespace {

spdlog::level::level_enum ToSpdlogLevel(const std::string& level) {
  if (level == "TRACE") return spdlog::level::trace;
  if (level == "DEBUG") return spdlog::level::debug;
  if (level == "WARNING" || level == "WARN") return spdlog::level::warn;
  if (level == "ERROR") return spdlog::level::err;
  if (level == "CRITICAL") return spdlog::level::critical;
  if (level == "OFF") return spdlog::level::off;
  return spdlog::level::info;
}

}  // namespace

Result<std::shared_ptr<spdlog::logger>> MakeDaemonLogger(const std::string& log_dir,
                                                         const std::string& level) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  if (ec) {
    return InvalidArgument("cannot create log directory \"" + log_dir + "\": " + ec.message(),
                           "server.log_dir");
  }
  try {
    constexpr size_t kMaxFileBytes = 10 * 1024 * 1024;
    constexpr size_t kMaxFiles = 5;
    std::vector<spdlog::sink_ptr> sinks{
        std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
            log_dir + "/gpu_resource_manager.log", kMaxFileBytes, kMaxFiles),
        std::make_shared<spdlog::sinks::stderr_color_sink_mt>()};
    auto logger = std::make_shared<spdlog::logger>("gpurm", sinks.begin(), sinks.end());
    logger->set_level(ToSpdlogLevel(level));
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ %v");
    logger->flush_on(spdlog::level::info);
    return logger;
  } catch (const spdlog::spdlog_ex& e) {
    return InvalidArgument(std::string("cannot open log file: ") + e.what(), "server.log_dir");
  }
}

}  // namespace gpurm
