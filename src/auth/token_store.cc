#include "auth/token_store.h"

#include <sys/stat.h>

namespace gpurm {

TokenStore::Version TokenStore::VersionOf(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return Version{0, 0, 0};
  return Version{info.st_ino, info.st_size,
                 static_cast<int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec};
}

Result<std::unique_ptr<TokenStore>> TokenStore::Open(std::string path, ReloadObserver observer) {
  const Version version = VersionOf(path);  // Before reading: a later change is seen.
  Result<std::vector<TokenEntry>> entries = ReadTokenFile(path);
  if (!entries.ok()) return entries.status();
  std::unique_ptr<TokenStore> store(new TokenStore(std::move(path), std::move(observer)));
  store->tried_ = version;
  store->entries_ = std::make_shared<const std::vector<TokenEntry>>(std::move(entries).value());
  return store;
}

std::shared_ptr<const std::vector<TokenEntry>> TokenStore::Current(bool force) {
  Status result;
  size_t identities = 0;
  std::shared_ptr<const std::vector<TokenEntry>> current;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Version version = VersionOf(path_);  // A missing file is a version too.
    if (!force && version == tried_) return entries_;
    tried_ = version;
    Result<std::vector<TokenEntry>> loaded = ReadTokenFile(path_);
    if (loaded.ok()) {
      entries_ = std::make_shared<const std::vector<TokenEntry>>(std::move(loaded).value());
    } else {
      result = loaded.status();
    }
    identities = entries_->size();
    current = entries_;
  }
  if (observer_) observer_(result, identities);
  return current;
}

std::optional<Principal> TokenStore::Authenticate(std::string_view token) {
  return MatchToken(*Current(false), token);
}

void TokenStore::Reload() { Current(true); }

size_t TokenStore::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_->size();
}

}  // namespace gpurm
