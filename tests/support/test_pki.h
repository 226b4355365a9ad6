// TestPki: a throwaway PKI for end-to-end tests of TLS, made at run time with
// the openssl command (no private key is committed).
#ifndef GPURM_TESTS_SUPPORT_TEST_PKI_H_
#define GPURM_TESTS_SUPPORT_TEST_PKI_H_

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "support/run_command.h"

namespace gpurm::testing {

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Runs openssl; fails the test with its output when it fails.
inline void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult result = RunCommand(argv, std::chrono::seconds(60));
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

// A test PKI in `dir`: ca.pem/ca.key, and leaf certificates signed by it.
class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  void MakeCa(const std::string& name) {
    OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", Path(name + ".key"), "-out", Path(name + ".pem"), "-days", "3650", "-subj",
             "/CN=gpurm test " + name});
  }

  // A leaf `name`.pem/.key signed by `ca`, with `serial` (hex), for
  // `usage` ("serverAuth" or "clientAuth") and the names `alt_names`.
  void MakeLeaf(const std::string& name, const std::string& ca, const std::string& serial,
                const std::string& usage,
                const std::string& alt_names = "DNS:localhost,IP:127.0.0.1") {
    WriteFile(Path(name + ".ext"),
              "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=" + usage +
                  "\nsubjectAltName=" + alt_names + "\n");
    OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
             Path(name + ".key"), "-out", Path(name + ".csr"), "-subj", "/CN=" + name});
    OpenSsl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"), "-CAkey",
             Path(ca + ".key"), "-set_serial", "0x" + serial, "-days", "3650", "-out",
             Path(name + ".pem"), "-extfile", Path(name + ".ext")});
  }

  std::string Path(const std::string& file) const { return dir_ + "/" + file; }

 private:
  std::string dir_;
};

}  // namespace gpurm::testing

#endif  // GPURM_TESTS_SUPPORT_TEST_PKI_H_
