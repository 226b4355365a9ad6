#include "kube/reflector.h"

#include <charconv>
#include <utility>

namespace gpurm::kube {
namespace {

std::optional<uint64_t> ParseVersion(const std::string& text) {
  uint64_t value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string VersionOf(const nlohmann::json& object) {
  const auto metadata = object.find("metadata");
  if (metadata == object.end() || !metadata->is_object()) return "";
  return metadata->value("resourceVersion", "");
}

}  // namespace

std::optional<int> CompareResourceVersions(const std::string& a, const std::string& b) {
  const std::optional<uint64_t> x = ParseVersion(a);
  const std::optional<uint64_t> y = ParseVersion(b);
  if (!x || !y) return std::nullopt;
  return *x < *y ? -1 : (*x > *y ? 1 : 0);
}

std::string Reflector::KeyOf(const nlohmann::json& object) {
  const nlohmann::json& metadata = object.at("metadata");
  const std::string ns = metadata.value("namespace", "");
  const std::string name = metadata.value("name", "");
  return ns.empty() ? name : ns + "/" + name;
}

Reflector::Reflector(const KubeClient* client, ReflectorOptions options)
    : client_(client),
      options_(std::move(options)),
      objects_(std::make_shared<std::map<std::string, nlohmann::json>>()) {}

Reflector::~Reflector() {
  stop_ = true;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Reflector::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

ReflectorView Reflector::View() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return ReflectorView{objects_, resource_version_, synced_, last_error_, stats_};
}

bool Reflector::WaitFor(const std::function<bool(const ReflectorView&)>& predicate,
                        std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    return predicate(ReflectorView{objects_, resource_version_, synced_, last_error_, stats_});
  });
}

void Reflector::ReplaceLocked(const ListResult& list) {
  auto objects = std::make_shared<std::map<std::string, nlohmann::json>>();
  for (const nlohmann::json& item : list.items) {
    nlohmann::json kept = options_.transform ? options_.transform(item) : item;
    objects->emplace(KeyOf(kept), std::move(kept));
  }
  objects_ = std::move(objects);
  resource_version_ = list.resource_version;
  listed_version_ = list.resource_version;
  synced_ = true;
  last_error_ = Status::Ok();
  ++stats_.lists;
  changed_.notify_all();
}

bool Reflector::ApplyLocked(const nlohmann::json& object, bool deleted) {
  const std::string version = VersionOf(object);
  if (CompareResourceVersions(version, listed_version_).value_or(1) <= 0) return false;
  const std::string key = KeyOf(object);
  auto current = objects_->find(key);
  if (current != objects_->end() &&
      CompareResourceVersions(version, VersionOf(current->second)).value_or(1) < 0) {
    return false;
  }
  auto objects = std::make_shared<std::map<std::string, nlohmann::json>>(*objects_);
  if (deleted) {
    objects->erase(key);
  } else {
    (*objects)[key] = options_.transform ? options_.transform(object) : object;
  }
  objects_ = std::move(objects);
  changed_.notify_all();
  return true;
}

void Reflector::Apply(const nlohmann::json& object, bool deleted) {
  std::lock_guard<std::mutex> lock(mutex_);
  ApplyLocked(object, deleted);
}

Status Reflector::Relist() {
  ListOptions list_options{options_.label_selector, options_.field_selector, options_.page_size};
  Result<ListResult> list = client_->List(options_.path, list_options);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!list.ok()) {
    last_error_ = list.status();
    changed_.notify_all();
    return list.status();
  }
  ReplaceLocked(*list);
  return Status::Ok();
}

void Reflector::Run() {
  bool need_list = true;
  const auto pause = [this] {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(
        lock, std::chrono::milliseconds(static_cast<int64_t>(options_.retry_delay_s * 1000)),
        [this] { return stop_.load(); });
  };
  while (!stop_) {
    if (need_list) {
      if (!Relist().ok()) {
        pause();
        continue;
      }
      need_list = false;
    }
    WatchOptions watch_options;
    watch_options.label_selector = options_.label_selector;
    watch_options.field_selector = options_.field_selector;
    watch_options.timeout_s = options_.watch_timeout_s;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      watch_options.resource_version = resource_version_;
      ++stats_.watches;
    }
    const Status watched = client_->Watch(
        options_.path, watch_options,
        [this](const WatchEvent& event) {
          std::lock_guard<std::mutex> lock(mutex_);
          const std::string version = VersionOf(event.object);
          if (event.type == "BOOKMARK") {
            ++stats_.bookmarks;
          } else if (event.type == "ADDED" || event.type == "MODIFIED" || event.type == "DELETED") {
            if (ApplyLocked(event.object, event.type == "DELETED")) ++stats_.events;
          }
          if (!version.empty() &&
              CompareResourceVersions(version, resource_version_).value_or(1) > 0) {
            resource_version_ = version;
          }
          changed_.notify_all();
          return !stop_.load();
        },
        &stop_);
    if (stop_) break;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (IsGone(watched)) ++stats_.gone;
      last_error_ = IsGone(watched) ? Status::Ok() : watched;
      changed_.notify_all();
    }
    if (IsGone(watched)) {
      need_list = true;  // Our version is gone from the server's history.
    } else if (!watched.ok()) {
      pause();  // Then resume from the last version seen.
    }
  }
}

}  // namespace gpurm::kube
