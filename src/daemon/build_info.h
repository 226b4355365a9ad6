// What `gpurm --version` prints: the version (the file VERSION at the root of
// the source tree), the git commit it was built from and the build date. The
// definition is generated at every build by cmake/build_info.cmake.
#ifndef GPURM_DAEMON_BUILD_INFO_H_
#define GPURM_DAEMON_BUILD_INFO_H_

#include <string>

namespace gpurm {

struct BuildInfo {
  std::string version;  // "0.1.0"
  std::string
      commit;        // Short hash, "-dirty" when tracked files had changes; "unknown" outside git.
  std::string date;  // YYYY-MM-DD (UTC, or SOURCE_DATE_EPOCH's).
};

const BuildInfo& GetBuildInfo();

// "gpurm 0.1.0 (commit 2d4f8d4a1b2c, built 2026-12-07)"
std::string VersionLine();

}  // namespace gpurm

#endif  // GPURM_DAEMON_BUILD_INFO_H_
