// What the handlers decide about identities once the router has verified
// the request's token (router.h): whose allocation a request makes, whether
// it may touch someone's allocation, and the audit line it leaves.
#ifndef GPURM_API_AUTH_H_
#define GPURM_API_AUTH_H_

#include <string>

#include "api/http_types.h"
#include "core/status.h"

namespace gpurm {

// The owner recorded for an allocation the request makes. With a verified
// principal: its name, except that an admin may act on behalf of another
// owner named by X-Gpurm-Owner or the body's `owner`. Without access
// control: X-Gpurm-Owner, else `body_owner`, else "anonymous".
std::string RequestOwner(const HttpRequest& request, const std::string& body_owner);

// OK when the request may change an allocation (or queue entry) of `owner`:
// access control is off, the principal is an admin, or it is the owner.
// Otherwise kPermissionDenied naming `what` and both identities.
Status MayActOn(const HttpRequest& request, const std::string& owner, const std::string& what);

// One line for the audit log: who (the verified identity, "-" without one),
// the role, where from, what (method, path, allocation or queue id, owner)
// and the answer's status. Values are escaped so a line stays one line of
// space-separated key=value pairs.
std::string AuditLine(const HttpRequest& request, const HttpResponse& response);

}  // namespace gpurm

#endif  // GPURM_API_AUTH_H_
