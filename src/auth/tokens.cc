#include "auth/tokens.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace gpurm {
namespace {

constexpr char kHashScheme[] = "sha256";
constexpr size_t kSaltBytes = 16;
constexpr size_t kDigestBytes = 32;
constexpr size_t kTokenBytes = 32;
constexpr char kTokenPrefix[] = "gpurm_";

std::string Hex(const unsigned char* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // Lower-case only: the file is written by us.
}

std::optional<std::string> Unhex(std::string_view text) {
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (size_t i = 0; i < text.size(); i += 2) {
    const int high = HexDigit(text[i]);
    const int low = HexDigit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out.push_back(static_cast<char>(high * 16 + low));
  }
  return out;
}

Status RandomBytes(unsigned char* out, size_t size) {
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Internal(std::string("cannot open /dev/urandom: ") + std::strerror(errno));
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::read(fd, out + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return Internal("cannot read /dev/urandom");
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return Status::Ok();
}

// SHA-256(salt || token). `out` must hold kDigestBytes.
bool Digest(std::string_view salt, std::string_view token, unsigned char* out) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  if (context == nullptr) return false;
  unsigned int length = 0;
  const bool ok = EVP_DigestInit_ex(context, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(context, salt.data(), salt.size()) == 1 &&
                  EVP_DigestUpdate(context, token.data(), token.size()) == 1 &&
                  EVP_DigestFinal_ex(context, out, &length) == 1 && length == kDigestBytes;
  EVP_MD_CTX_free(context);
  return ok;
}

// Splits a hash into salt and digest bytes; nullopt when malformed.
std::optional<std::pair<std::string, std::string>> SplitHash(std::string_view hash) {
  const std::string prefix = std::string(kHashScheme) + ":";
  if (hash.substr(0, prefix.size()) != prefix) return std::nullopt;
  hash.remove_prefix(prefix.size());
  const size_t colon = hash.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::optional<std::string> salt = Unhex(hash.substr(0, colon));
  std::optional<std::string> digest = Unhex(hash.substr(colon + 1));
  if (!salt || salt->size() != kSaltBytes || !digest || digest->size() != kDigestBytes) {
    return std::nullopt;
  }
  return std::make_pair(std::move(*salt), std::move(*digest));
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

Status WriteAll(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("cannot write " + path + ": " + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAgent:
      return "agent";
    case Role::kViewer:
      return "viewer";
    case Role::kUser:
      return "user";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

const std::vector<std::string>& RoleNames() {
  static const std::vector<std::string> names = {RoleName(Role::kAgent), RoleName(Role::kViewer),
                                                 RoleName(Role::kUser), RoleName(Role::kAdmin)};
  return names;
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role role : {Role::kAgent, Role::kViewer, Role::kUser, Role::kAdmin}) {
    if (name == RoleName(role)) return role;
  }
  return std::nullopt;
}

bool IsValidIdentityName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-';
         });
}

Result<std::string> NewToken() {
  std::array<unsigned char, kTokenBytes> bytes{};
  if (Status status = RandomBytes(bytes.data(), bytes.size()); !status.ok()) return status;
  return kTokenPrefix + Hex(bytes.data(), bytes.size());
}

Result<TokenEntry> MakeTokenEntry(const std::string& name, const std::string& role,
                                  const std::string& token) {
  if (!IsValidIdentityName(name)) {
    return InvalidArgument("expected 1-64 of letters, digits and . _ @ -, got \"" + name + "\"",
                           "name");
  }
  const std::optional<Role> parsed = ParseRole(role);
  if (!parsed) {
    return InvalidArgument("expected agent, viewer, user or admin, got \"" + role + "\"", "role");
  }
  std::array<unsigned char, kSaltBytes> salt{};
  if (Status status = RandomBytes(salt.data(), salt.size()); !status.ok()) return status;
  std::array<unsigned char, kDigestBytes> digest{};
  const std::string_view salt_view(reinterpret_cast<const char*>(salt.data()), salt.size());
  if (!Digest(salt_view, token, digest.data())) return Internal("SHA-256 failed");
  return TokenEntry{name, *parsed,
                    std::string(kHashScheme) + ":" + Hex(salt.data(), salt.size()) + ":" +
                        Hex(digest.data(), digest.size())};
}

Result<std::vector<TokenEntry>> ParseTokenFile(std::string_view text, std::string_view source) {
  std::vector<TokenEntry> entries;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    const std::string where = std::string(source) + ":" + std::to_string(line_number) + ": ";
    if (fields.size() != 3) {
      return InvalidArgument(where + "expected NAME ROLE HASH, got " +
                             std::to_string(fields.size()) + " field(s)");
    }
    if (!IsValidIdentityName(fields[0])) {
      return InvalidArgument(where + "name: expected 1-64 of letters, digits and . _ @ -", "name");
    }
    const std::optional<Role> role = ParseRole(fields[1]);
    if (!role) {
      return InvalidArgument(where + "role: expected agent, viewer, user or admin, got \"" +
                                 std::string(fields[1]) + "\"",
                             "role");
    }
    if (!SplitHash(fields[2])) {
      return InvalidArgument(where +
                                 "hash: expected sha256:<32 hex digits of salt>:<64 hex digits> "
                                 "(a token itself is never stored; use gpurm token create)",
                             "hash");
    }
    for (const TokenEntry& earlier : entries) {
      if (earlier.name == fields[0]) {
        return InvalidArgument(where + "name: \"" + earlier.name + "\" is given twice", "name");
      }
    }
    entries.push_back(TokenEntry{std::string(fields[0]), *role, std::string(fields[2])});
  }
  return entries;
}

std::string FormatTokenEntry(const TokenEntry& entry) {
  return entry.name + " " + RoleName(entry.role) + " " + entry.hash;
}

std::optional<Principal> MatchToken(const std::vector<TokenEntry>& entries,
                                    std::string_view token) {
  std::optional<Principal> found;
  for (const TokenEntry& entry : entries) {
    const auto parts = SplitHash(entry.hash);  // Validated when parsed.
    if (!parts) continue;
    std::array<unsigned char, kDigestBytes> digest{};
    if (!Digest(parts->first, token, digest.data())) continue;
    const bool equal = CRYPTO_memcmp(digest.data(), parts->second.data(), kDigestBytes) == 0;
    if (equal && !found) found = Principal{entry.name, entry.role};
  }
  return found;
}

Result<std::vector<TokenEntry>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
                  "cannot read token file '" + path + "': " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return ParseTokenFile(text.str(), path);
}

Status AppendTokenEntry(const std::string& path, const TokenEntry& entry) {
  Result<std::vector<TokenEntry>> existing = ReadTokenFile(path);
  if (!existing.ok() && existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  if (existing.ok()) {
    for (const TokenEntry& e : *existing) {
      if (e.name == entry.name) {
        return Status(
            StatusCode::kAlreadyExists,
            "\"" + entry.name + "\" already has a token in " + path + " (revoke it first)", "name");
      }
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  if (!existing.ok()) text = "# gpurm tokens: NAME ROLE HASH (written by gpurm token create)\n";
  text += FormatTokenEntry(entry) + "\n";
  Status written = WriteAll(fd, text, path);
  if (written.ok() && ::fsync(fd) != 0) written = Internal("cannot sync " + path);
  ::close(fd);
  return written;
}

Status RemoveTokenEntry(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read token file '" + path + "': " + std::strerror(errno));
  std::ostringstream original;
  original << in.rdbuf();
  const std::string text = original.str();
  Result<std::vector<TokenEntry>> entries = ParseTokenFile(text, path);
  if (!entries.ok()) return entries.status();
  if (std::none_of(entries->begin(), entries->end(),
                   [&](const TokenEntry& e) { return e.name == name; })) {
    return NotFound("no token for \"" + name + "\" in " + path);
  }
  // Keep comments and every other line as they are.
  std::string kept;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::vector<std::string_view> fields = Fields(line);
    if (!fields.empty() && fields[0] == name) continue;
    kept += line + "\n";
  }
  struct stat info {};
  const mode_t mode = ::stat(path.c_str(), &info) == 0 ? (info.st_mode & 0777) : 0600;
  const std::string temporary = path + ".tmp";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Internal("cannot create " + temporary + ": " + std::strerror(errno));
  Status written = WriteAll(fd, kept, temporary);
  if (written.ok() && ::fsync(fd) != 0) written = Internal("cannot sync " + temporary);
  ::close(fd);
  if (written.ok() && std::rename(temporary.c_str(), path.c_str()) != 0) {
    written = Internal("cannot replace " + path + ": " + std::strerror(errno));
  }
  if (!written.ok()) ::unlink(temporary.c_str());
  return written;
}

}  // namespace gpurm
