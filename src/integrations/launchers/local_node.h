// Which node of gpurm's inventory this machine is: the one rule shared by the
// daemon's local discovery (it names its node so) and by launchers that must
// start a job only on the machine its GPUs are on (`gpurm run`).
#ifndef GPURM_INTEGRATIONS_LAUNCHERS_LOCAL_NODE_H_
#define GPURM_INTEGRATIONS_LAUNCHERS_LOCAL_NODE_H_

#include <string>

namespace gpurm {

// Overrides the host name: several agents on one machine (tests), or a node
// name other than the host's.
inline constexpr char kNodeNameVariable[] = "GPURM_NODE_NAME";

// $GPURM_NODE_NAME when set and not empty, else the host name
// (gethostname), else "localhost". Thread-safe.
std::string LocalNodeName();

}  // namespace gpurm

#endif  // GPURM_INTEGRATIONS_LAUNCHERS_LOCAL_NODE_H_
