#include "daemon/access_control.h"

#include <arpa/inet.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "api/auth.h"

namespace gpurm {

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  return inet_pton(AF_INET, host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

Result<std::unique_ptr<AccessControl>> AccessControl::Open(const Config& config,
                                                           const std::string& listen_host,
                                                           spdlog::logger* log) {
  const AuthConfig& auth = config.server.auth;
  if (auth.tokens_file.empty() && !IsLoopbackHost(listen_host)) {
    if (!auth.allow_unauthenticated) {
      return InvalidArgument(
          "server.listen is \"" + config.server.listen +
              "\", reachable from other machines, and server.auth.tokens_file is not set: "
              "anyone could allocate and release GPUs. Create tokens (gpurm token create) and "
              "set server.auth.tokens_file, or set server.auth.allow_unauthenticated: true",
          "server.auth.tokens_file");
    }
    log->warn(
        "SECURITY: serving {} WITHOUT AUTHENTICATION (server.auth.allow_unauthenticated is "
        "true): anyone who can reach it may allocate and release any GPU",
        config.server.listen);
  }
  const std::string audit_path =
      auth.audit_log.empty() ? config.server.log_dir + "/audit.log" : auth.audit_log;
  std::shared_ptr<spdlog::logger> audit;
  try {
    std::error_code ec;
    const std::filesystem::path parent = std::filesystem::path(audit_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    constexpr size_t kMaxFileBytes = size_t{10} * 1024 * 1024;
    constexpr size_t kMaxFiles = 5;
    audit = std::make_shared<spdlog::logger>(
        "audit", std::make_shared<spdlog::sinks::rotating_file_sink_mt>(audit_path, kMaxFileBytes,
                                                                        kMaxFiles));
    audit->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %v");
    audit->set_level(spdlog::level::info);
    audit->flush_on(spdlog::level::info);  // An audit line must survive a crash.
  } catch (const spdlog::spdlog_ex& e) {
    return InvalidArgument("cannot open the audit log " + audit_path + ": " + e.what(),
                           "server.auth.audit_log");
  }
  std::unique_ptr<AccessControl> control(new AccessControl(std::move(audit), log));
  if (!auth.tokens_file.empty()) {
    AccessControl* self = control.get();
    Result<std::unique_ptr<TokenStore>> tokens = TokenStore::Open(
        auth.tokens_file,
        [self](const Status& result, size_t identities) { self->OnReload(result, identities); });
    if (!tokens.ok()) {
      return Status(tokens.status().code(), "server.auth.tokens_file: " + tokens.status().message(),
                    "server.auth.tokens_file");
    }
    control->tokens_ = std::move(tokens).value();
    // Whoever can write the file can make themselves admin.
    struct stat info {};
    if (::stat(auth.tokens_file.c_str(), &info) == 0 && (info.st_mode & 0022) != 0) {
      log->warn(
          "SECURITY: token file {} is writable by group or others (mode {:o}); anyone "
          "who can write it can add an admin token: chmod go-w it",
          auth.tokens_file, info.st_mode & 0777);
    }
    log->info("access control: bearer tokens required, {} identities from {}; audit log {}",
              control->tokens_->size(), auth.tokens_file, audit_path);
  } else {
    log->info("access control: off (no server.auth.tokens_file); audit log {}", audit_path);
  }
  return control;
}

void AccessControl::Install(Router& router) {
  if (tokens_) {
    TokenStore* tokens = tokens_.get();
    router.RequireTokens([tokens](std::string_view token) { return tokens->Authenticate(token); });
  }
  std::shared_ptr<spdlog::logger> audit = audit_;
  router.SetAuditSink([audit](const HttpRequest& request, const HttpResponse& response) {
    audit->info("{}", AuditLine(request, response));
  });
}

void AccessControl::Reload() {
  if (tokens_) tokens_->Reload();
}

void AccessControl::OnReload(const Status& result, size_t identities) {
  if (result.ok()) {
    log_->info("token file {} reloaded: {} identities", tokens_->path(), identities);
    audit_->info("event=token_reload status=ok identities={}", identities);
  } else {
    log_->error("token file {} not reloaded, still using the previous {} identities: {}",
                tokens_->path(), identities, result.message());
    audit_->info("event=token_reload status=error identities={}", identities);
  }
}

}  // namespace gpurm
