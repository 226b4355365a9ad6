#include "api/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <system_error>

namespace gpurm {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers.
// TLS 1.3 suites are OpenSSL's defaults, all of them AEAD.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// A readable regular file, else why not (checked first so the message names
// the path and the OS reason rather than an OpenSSL code).
Status CheckReadable(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return InvalidArgument("cannot read TLS " + what + " '" + path + "': no such file", what);
  }
  if (!std::filesystem::is_regular_file(status)) {
    return InvalidArgument("cannot read TLS " + what + " '" + path + "': not a regular file", what);
  }
  return Status::Ok();
}

Status LoadError(const std::string& path, const std::string& what,
                 const boost::system::error_code& ec) {
  std::string reason = ec.message();
  // Asio's message is often just "error"; OpenSSL's queue says more.
  if (const unsigned long code = ERR_peek_last_error(); code != 0) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    reason = buffer;
  }
  ERR_clear_error();
  return InvalidArgument("cannot load TLS " + what + " '" + path + "': " + reason, what);
}

}  // namespace

Result<std::shared_ptr<ssl::context>> MakeServerTlsContext(const TlsFiles& files) {
  for (const auto& [path, what] : {std::pair{files.cert_file, std::string("cert_file")},
                                   std::pair{files.key_file, std::string("key_file")}}) {
    if (Status status = CheckReadable(path, what); !status.ok()) return status;
  }
  if (!files.client_ca_file.empty()) {
    if (Status status = CheckReadable(files.client_ca_file, "client_ca_file"); !status.ok()) {
      return status;
    }
  }
  ERR_clear_error();
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    ERR_clear_error();
    return Internal("OpenSSL refused the TLS 1.2+ settings");
  }
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                       ssl::context::single_dh_use);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);

  boost::system::error_code ec;
  context->use_certificate_chain_file(files.cert_file, ec);
  if (ec) return LoadError(files.cert_file, "cert_file", ec);
  context->use_private_key_file(files.key_file, ssl::context::pem, ec);
  // OpenSSL checks the key against the certificate as it loads it; a
  // mismatch is named as such rather than by OpenSSL's code.
  // (Asio takes the error off OpenSSL's queue into `ec`.)
  if ((ec && ec.category() == boost::asio::error::get_ssl_category() &&
       ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) ||
      (!ec && SSL_CTX_check_private_key(native) != 1)) {
    ERR_clear_error();
    return InvalidArgument("TLS key_file '" + files.key_file +
                               "' does not match the certificate in '" + files.cert_file + "'",
                           "key_file");
  }
  if (ec) return LoadError(files.key_file, "key_file", ec);
  if (!files.client_ca_file.empty()) {
    context->load_verify_file(files.client_ca_file, ec);
    if (ec) return LoadError(files.client_ca_file, "client_ca_file", ec);
    // Tells clients which CAs are acceptable, then requires a certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    context->set_verify_mode(ssl::verify_none);
  }
  ERR_clear_error();
  return context;
}

}  // namespace gpurm
