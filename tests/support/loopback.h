// Plain TCP connections to a server on this machine, for tests and
// benchmarks that speak HTTP byte by byte (slow readers, idle sockets,
// floods) or need a port.
#ifndef GPURM_TESTS_SUPPORT_LOOPBACK_H_
#define GPURM_TESTS_SUPPORT_LOOPBACK_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>

namespace gpurm::testing {

struct LoopbackOptions {
  // Reads and writes fail after this long, so a broken server fails a test
  // instead of hanging it.
  int timeout_s = 60;
  // The local address to connect from ("127.0.0.3"): another client as far
  // as per-client limits go. nullptr = the kernel's choice (127.0.0.1).
  const char* source = nullptr;
  // > 0: SO_RCVBUF, for a slow reader that lets the server's sends pile up.
  int receive_buffer = 0;
};

// A socket connected to 127.0.0.1:port, or -1. The caller closes it.
inline int ConnectLoopback(uint16_t port, const LoopbackOptions& options = {}) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval timeout{options.timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (options.receive_buffer > 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer,
                 sizeof(options.receive_buffer));
  }
  if (options.source != nullptr) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, options.source, &local.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
      ::close(fd);
      return -1;
    }
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A port on 127.0.0.1 that was free a moment ago (0 when none could be had).
inline uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_LOOPBACK_H_
