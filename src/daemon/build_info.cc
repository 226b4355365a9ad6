#include "daemon/build_info.h"

namespace gpurm {

std::string VersionLine() {
  const BuildInfo& info = GetBuildInfo();
  return "gpurm " + info.version + " (commit " + info.commit + ", built " + info.date + ")";
}

}  // namespace gpurm
