// Server-side TLS contexts for HttpServer, built from PEM files.
//
// A context is immutable once built: the server swaps in a new one on
// reload (SIGHUP) and every connection keeps the context it was accepted
// with, so a reload never touches an open connection.
#ifndef GPURM_API_TLS_CONTEXT_H_
#define GPURM_API_TLS_CONTEXT_H_

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "core/status.h"

namespace gpurm {

struct TlsFiles {
  std::string cert_file;       // PEM certificate chain, leaf first.
  std::string key_file;        // PEM private key of the leaf.
  std::string client_ca_file;  // PEM CA(s); non-empty = clients must present a cert it signed.

  bool enabled() const { return !cert_file.empty(); }
};

// TLS 1.2 and 1.3 only, forward-secret AEAD cipher suites for 1.2, no
// compression, no renegotiation. kInvalidArgument naming the file and
// OpenSSL's reason when a file is missing, unreadable, not PEM, or when the
// key does not match the certificate.
Result<std::shared_ptr<boost::asio::ssl::context>> MakeServerTlsContext(const TlsFiles& files);

}  // namespace gpurm

#endif  // GPURM_API_TLS_CONTEXT_H_
