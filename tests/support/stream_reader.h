// A raw HTTP connection to a daemon on this machine, for reading a streamed
// response (Server-Sent Events) as it arrives. Reads give up after 60 s so
// that a broken server fails a test instead of hanging it.
#ifndef GPURM_TESTS_SUPPORT_STREAM_READER_H_
#define GPURM_TESTS_SUPPORT_STREAM_READER_H_

#include <unistd.h>

#include <cstdint>
#include <string>

#include "support/loopback.h"

namespace gpurm::testing {

class StreamReader {
 public:
  // Sends GET `target` to the daemon at `base_url` ("http://127.0.0.1:PORT").
  StreamReader(const std::string& base_url, const std::string& target)
      : fd_(ConnectLoopback(
            static_cast<uint16_t>(std::stoi(base_url.substr(base_url.rfind(':') + 1))))) {
    if (fd_ < 0) return;
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    sent_ = ::write(fd_, request.data(), request.size()) == static_cast<ssize_t>(request.size());
  }
  ~StreamReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  bool sent() const { return sent_; }
  // Reads until `needle` has arrived after `from` (true) or the stream ends.
  bool ReadUntil(const std::string& needle, size_t from = 0) {
    while (received_.find(needle, from) == std::string::npos) {
      if (!ReadSome()) return false;
    }
    return true;
  }
  void ReadToEnd() {
    while (ReadSome()) {
    }
  }
  const std::string& received() const { return received_; }

 private:
  bool ReadSome() {
    if (fd_ < 0) return false;
    char buffer[8192];
    const ssize_t n = ::read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return false;
    received_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  bool sent_ = false;
  std::string received_;
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_STREAM_READER_H_
