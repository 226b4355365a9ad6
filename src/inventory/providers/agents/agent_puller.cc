#include "inventory/providers/agents/agent_puller.h"

#include <curl/curl.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace gpurm {
namespace {

using nlohmann::json;

// One agent's connection and this pull's answer.
struct Transfer {
  CURL* easy = nullptr;  // Kept across pulls: its connection stays open.
  std::string answer;
  bool answer_too_big = false;
  size_t max_answer_bytes = 0;
  CURLcode result = CURLE_OK;
  long http_status = 0;  // NOLINT(google-runtime-int): libcurl's type.
};

size_t CollectAnswer(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer->answer.size() + bytes > transfer->max_answer_bytes) {
    transfer->answer_too_big = true;
    return 0;  // Aborts the transfer (CURLE_WRITE_ERROR).
  }
  transfer->answer.append(data, bytes);
  return bytes;
}

// Why an answer was not a snapshot, in words; empty when it was one
// (then *report holds it). The one place transfer and HTTP failures are
// turned into reasons.
std::string ReadAnswer(const Transfer& transfer, const GpuMemorySpecs& specs, AgentReport* report) {
  if (transfer.answer_too_big) {
    return "answered more than " + std::to_string(transfer.max_answer_bytes) + " bytes";
  }
  if (transfer.result != CURLE_OK) {
    return std::string("not answering: ") + curl_easy_strerror(transfer.result);
  }
  const json document = json::parse(transfer.answer, nullptr, /*allow_exceptions=*/false);
  if (transfer.http_status != 200) {
    std::string reason = "answered HTTP " + std::to_string(transfer.http_status);
    if (document.is_object() && document.contains("error") && document["error"].is_object() &&
        document["error"].value("message", json()).is_string()) {
      reason += ": " + document["error"]["message"].get<std::string>();
    }
    if (transfer.http_status == 401 || transfer.http_status == 403) {
      reason += " (controller.token_file must hold a token of role agent or above there)";
    }
    return reason;
  }
  if (document.is_discarded()) return "answered something that is not JSON";
  Result<AgentReport> decoded = DecodeAgentReport(document, specs);
  if (!decoded.ok()) {
    return "answered an invalid snapshot: " + decoded.status().field() + ": " +
           decoded.status().message();
  }
  *report = std::move(decoded).value();
  return "";
}

}  // namespace

struct AgentPuller::Impl {
  AgentPullOptions options;
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  // By url; a Transfer's address never moves (the write callback holds it).
  std::map<std::string, std::unique_ptr<Transfer>> transfers;

  Transfer& Prepare(const std::string& url) {
    std::unique_ptr<Transfer>& slot = transfers[url];
    if (slot == nullptr) {
      slot = std::make_unique<Transfer>();
      slot->max_answer_bytes = options.max_answer_bytes;
      CURL* easy = slot->easy = curl_easy_init();
      const std::string full_url = url + kAgentSnapshotPath;
      const auto timeout_ms = static_cast<long>(options.request_timeout.count());  // NOLINT
      curl_easy_setopt(easy, CURLOPT_URL, full_url.c_str());  // libcurl copies strings.
      curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &CollectAnswer);
      curl_easy_setopt(easy, CURLOPT_WRITEDATA, slot.get());
      curl_easy_setopt(easy, CURLOPT_PRIVATE, slot.get());
      curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
      curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
      curl_easy_setopt(easy, CURLOPT_USERAGENT, "gpurm-controller");
      if (!options.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, options.ca_file.c_str());
      if (!options.verify_host) curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    Transfer& transfer = *slot;
    transfer.answer.clear();
    transfer.answer_too_big = false;
    // Until its transfer reports done: a transfer the multi handle gave up
    // on did not answer.
    transfer.result = CURLE_OPERATION_TIMEDOUT;
    transfer.http_status = 0;
    return transfer;
  }

  // Closes the connections of agents no longer pulled.
  void Forget(const std::set<std::string>& kept) {
    for (auto it = transfers.begin(); it != transfers.end();) {
      if (kept.count(it->first) != 0) {
        ++it;
        continue;
      }
      curl_easy_cleanup(it->second->easy);
      it = transfers.erase(it);
    }
  }
};

AgentPuller::AgentPuller(AgentPullOptions options) : impl_(std::make_unique<Impl>()) {
  // Thread-safe since libcurl 7.84; a no-op after the first call.
  curl_global_init(CURL_GLOBAL_DEFAULT);
  impl_->options = std::move(options);
  impl_->multi = curl_multi_init();
  impl_->headers = curl_slist_append(impl_->headers, "Accept: application/json");
  if (!impl_->options.bearer_token.empty()) {
    impl_->headers = curl_slist_append(
        impl_->headers, ("Authorization: Bearer " + impl_->options.bearer_token).c_str());
  }
}

AgentPuller::~AgentPuller() {
  impl_->Forget({});
  curl_multi_cleanup(impl_->multi);
  curl_slist_free_all(impl_->headers);
}

std::vector<AgentPull> AgentPuller::Pull(const std::vector<std::string>& urls) {
  const std::set<std::string> unique(urls.begin(), urls.end());
  impl_->Forget(unique);
  for (const std::string& url : unique)
    curl_multi_add_handle(impl_->multi, impl_->Prepare(url).easy);
  int running = 0;
  do {
    if (curl_multi_perform(impl_->multi, &running) != CURLM_OK) break;
    if (running > 0) curl_multi_poll(impl_->multi, nullptr, 0, 100, nullptr);
  } while (running > 0);
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(impl_->multi, &queued)) {
    if (message->msg != CURLMSG_DONE) continue;
    Transfer* transfer = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &transfer);
    if (transfer == nullptr) continue;
    transfer->result = message->data.result;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->http_status);
  }
  for (const std::string& url : unique) {
    curl_multi_remove_handle(impl_->multi, impl_->transfers.at(url)->easy);
  }
  std::vector<AgentPull> pulls;
  pulls.reserve(urls.size());
  for (const std::string& url : urls) {
    AgentPull& pull = pulls.emplace_back();
    pull.url = url;
    pull.problem = ReadAnswer(*impl_->transfers.at(url), impl_->options.memory_specs, &pull.report);
  }
  return pulls;
}

std::string HostOfUrl(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  const size_t end = url.find_first_of('/', start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    return close == std::string::npos ? authority : authority.substr(1, close - 1);
  }
  return authority.substr(0, authority.rfind(':'));
}

}  // namespace gpurm
