#ifndef GPURM_DAEMON_OPENAPI_DOCUMENT_H_
#define GPURM_DAEMON_OPENAPI_DOCUMENT_H_

namespace gpurm {

// docs/openapi.json as compiled into the binary (generated at build time).
const char* OpenApiDocument();

}  // namespace gpurm

#endif  // GPURM_DAEMON_OPENAPI_DOCUMENT_H_
