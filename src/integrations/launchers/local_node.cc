#include "integrations/launchers/local_node.h"

#include <unistd.h>

#include <cstdlib>

namespace gpurm {

std::string LocalNodeName() {
  if (const char* name = std::getenv(kNodeNameVariable); name != nullptr && name[0] != '\0') {
    return name;
  }
  char buffer[256] = {};
  if (gethostname(buffer, sizeof(buffer) - 1) != 0 || buffer[0] == '\0') return "localhost";
  return buffer;
}

}  // namespace gpurm
