// Bearer tokens and the token file (docs/SECURITY.md, "Access control").
//
// The file holds one identity per line -- `NAME ROLE HASH` -- and never a
// token: HASH is "sha256:<salt hex>:<hex of SHA-256(salt bytes || token)>"
// with a random 16-byte salt per entry. Blank lines and lines starting with
// '#' are comments. `gpurm token create` appends entries; `gpurm token
// revoke` rewrites the file without one.
#ifndef GPURM_AUTH_TOKENS_H_
#define GPURM_AUTH_TOKENS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace gpurm {

// Ordered: each role may do everything the ones below it may.
//   agent: only read an agent's snapshot (GET /agent/snapshot): the token a
//   controller pulls its agents with. viewer: read endpoints. user: also
//   allocate, validate, and release, heartbeat or cancel its own
//   allocations. admin: anyone's, and acting on behalf of another owner.
enum class Role { kAgent = 0, kViewer = 1, kUser = 2, kAdmin = 3 };

const char* RoleName(Role role);
// Every role's name, lowest first: "agent", "viewer", "user", "admin".
const std::vector<std::string>& RoleNames();
std::optional<Role> ParseRole(std::string_view name);

// Who a request comes from, once its token is verified.
struct Principal {
  std::string name;
  Role role = Role::kViewer;
};

struct TokenEntry {
  std::string name;  // 1-64 of [A-Za-z0-9._@-]; unique in a file.
  Role role = Role::kViewer;
  std::string hash;  // "sha256:<salt hex>:<digest hex>".
};

// A new token: "gpurm_" and 64 hex digits from 32 bytes of /dev/urandom.
Result<std::string> NewToken();
// An entry for `token` with a fresh random salt. kInvalidArgument naming
// "name" or "role" when they are not acceptable.
Result<TokenEntry> MakeTokenEntry(const std::string& name, const std::string& role,
                                  const std::string& token);
bool IsValidIdentityName(std::string_view name);

// Parses a token file. Errors are kInvalidArgument, "<source>:<line>: ..."
// with field() the part of the line at fault (name, role, hash).
Result<std::vector<TokenEntry>> ParseTokenFile(std::string_view text, std::string_view source);
// One line of the file, without the newline.
std::string FormatTokenEntry(const TokenEntry& entry);

// The entry whose hash `token` matches, or nullopt. Hashes `token` against
// every entry and compares digests in constant time, without stopping at a
// match, so the time taken does not tell which entry (if any) matched.
std::optional<Principal> MatchToken(const std::vector<TokenEntry>& entries, std::string_view token);

// File operations for the CLI. Append creates the file (mode 0600) when
// missing and refuses a name already present; Remove rewrites the file
// through a temporary and a rename (so a reader never sees half a file) and
// is kNotFound when no entry has that name.
Result<std::vector<TokenEntry>> ReadTokenFile(const std::string& path);
Status AppendTokenEntry(const std::string& path, const TokenEntry& entry);
Status RemoveTokenEntry(const std::string& path, const std::string& name);

}  // namespace gpurm

#endif  // GPURM_AUTH_TOKENS_H_
