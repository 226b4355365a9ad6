#include "support/daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "support/loopback.h"

namespace gpurm::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : fallback;
}

}  // namespace

std::string SourceDir() { return EnvOr("GPURM_SOURCE_DIR", "."); }

std::vector<std::string> ExampleInventoryArgs() {
  return {"--inventory", SourceDir() + "/examples/cluster-3node.yaml"};
}

std::string GpurmBinary() { return EnvOr("GPURM_BINARY_DIR", GPURM_DEFAULT_BINARY_DIR) + "/gpurm"; }

std::string MakeTempDir(const std::string& prefix) {
  std::random_device random;
  const auto path = std::filesystem::temp_directory_path() /
                    (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path.string();
}

DaemonProcess::DaemonProcess(std::string work_dir, std::vector<std::string> extra_args)
    : work_dir_(std::move(work_dir)), extra_args_(std::move(extra_args)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) Kill();
}

bool DaemonProcess::Start(std::string* error) {
  // A restart keeps the port: clients (a controller's agent list) keep
  // their URL.
  if (port_ == 0) port_ = FreeLoopbackPort();
  const std::string listen = "127.0.0.1:" + std::to_string(port_);
  base_url_ = (tls_ ? "https://" : "http://") + listen;
  std::vector<std::string> args = {
      GpurmBinary(), "serve",
      "--listen",    listen,
      "--data-dir",  work_dir_ + "/data",
      "--log-dir",   work_dir_ + "/logs",
      "--config",    config_path_.empty() ? SourceDir() + "/gpu_config.yaml" : config_path_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  // Everything the child needs is prepared before fork: the child of a
  // multi-threaded process may only make async-signal-safe calls until exec.
  const std::string out = work_dir_ + "/daemon.out";
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    const int sink = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (sink >= 0) ::dup2(sink, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  cli::HttpClientOptions options;
  options.base_url = base_url_;
  options.timeout = std::chrono::milliseconds(2000);
  options.tls = tls_;
  cli::HttpClient client(options);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "daemon exited during start-up:\n" + LogTail();
      return false;
    }
    Result<cli::HttpResponse> health = client.Get("/api/v1/gpu/health");
    if (health.ok() && health->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *error = "daemon did not become healthy:\n" + LogTail();
  return false;
}

void DaemonProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int DaemonProcess::Terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

cli::HttpClient DaemonProcess::Client(const std::string& owner) const {
  cli::HttpClientOptions options;
  options.base_url = base_url_;
  options.tls = tls_;
  if (!owner.empty()) options.headers.emplace_back("X-Gpurm-Owner", owner);
  return cli::HttpClient(options);
}

std::string DaemonProcess::LogTail() const {
  std::ifstream in(work_dir_ + "/daemon.out");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

}  // namespace gpurm::testing
