// TokenStore: the daemon's view of the token file, reloaded when it changes.
#ifndef GPURM_AUTH_TOKEN_STORE_H_
#define GPURM_AUTH_TOKEN_STORE_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/tokens.h"
#include "core/status.h"

namespace gpurm {

// Thread-safe. Every Authenticate checks the file's identity (inode, size,
// modification time; one stat) and reloads it when that changed, so a
// revoked token stops working with the next request, without a restart or a
// signal. A reload that fails (unreadable, malformed, deleted) keeps the
// tokens loaded before and is reported once per file version.
class TokenStore {
 public:
  // Told about each reload: OK with the number of identities, or why the
  // old tokens were kept. Called with no lock held, on the thread that
  // noticed the change.
  using ReloadObserver = std::function<void(const Status& result, size_t identities)>;

  // Loads the file; an error here is fatal to start-up (the daemon refuses
  // to serve with an unreadable token file).
  static Result<std::unique_ptr<TokenStore>> Open(std::string path, ReloadObserver observer = {});

  // The identity a bearer token belongs to, or nullopt.
  std::optional<Principal> Authenticate(std::string_view token);
  // Re-reads the file now even if it looks unchanged (SIGHUP).
  void Reload();

  const std::string& path() const { return path_; }
  size_t size() const;

 private:
  struct Version {
    ino_t inode = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const Version&) const = default;
  };

  // The file's version now; all zero when it cannot be stat'ed.
  static Version VersionOf(const std::string& path);
  TokenStore(std::string path, ReloadObserver observer)
      : path_(std::move(path)), observer_(std::move(observer)) {}
  // Reloads when the file's version differs from the last one tried (or
  // when `force`); returns the entries to use.
  std::shared_ptr<const std::vector<TokenEntry>> Current(bool force);

  const std::string path_;
  const ReloadObserver observer_;
  mutable std::mutex mutex_;
  Version tried_;  // Last version loaded or rejected.
  std::shared_ptr<const std::vector<TokenEntry>> entries_;
};

}  // namespace gpurm

#endif  // GPURM_AUTH_TOKEN_STORE_H_
