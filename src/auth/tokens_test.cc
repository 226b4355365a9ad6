#include "auth/tokens.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gpurm {
namespace {

TEST(TokensTest, NewTokensAreRandomAndWellFormed) {
  Result<std::string> a = NewToken();
  Result<std::string> b = NewToken();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->rfind("gpurm_", 0), 0u);
  EXPECT_EQ(a->size(), 6u + 64u);
}

TEST(TokensTest, EntriesHoldASaltedHashNotTheToken) {
  const std::string token = "gpurm_secret";
  Result<TokenEntry> first = MakeTokenEntry("alice", "user", token);
  Result<TokenEntry> second = MakeTokenEntry("alice", "user", token);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->hash.find(token), std::string::npos);
  EXPECT_EQ(first->hash.rfind("sha256:", 0), 0u);
  EXPECT_NE(first->hash, second->hash);  // Different salts.
  EXPECT_EQ(MakeTokenEntry("a b", "user", token).status().field(), "name");
  EXPECT_EQ(MakeTokenEntry("alice", "root", token).status().field(), "role");
}

TEST(TokensTest, MatchFindsTheIdentityOfATokenOnly) {
  std::vector<TokenEntry> entries{*MakeTokenEntry("alice", "user", "token-a"),
                                  *MakeTokenEntry("root", "admin", "token-r")};
  std::optional<Principal> alice = MatchToken(entries, "token-a");
  ASSERT_TRUE(alice.has_value());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_EQ(alice->role, Role::kUser);
  EXPECT_EQ(MatchToken(entries, "token-r")->role, Role::kAdmin);
  EXPECT_FALSE(MatchToken(entries, "token-").has_value());
  EXPECT_FALSE(MatchToken(entries, "").has_value());
  EXPECT_FALSE(MatchToken(entries, entries[0].hash).has_value());  // The hash is no token.
}

TEST(TokensTest, FileRoundTripsAndSkipsComments) {
  const TokenEntry entry = *MakeTokenEntry("bob", "viewer", "t");
  const std::string text = "# comment\n\n" + FormatTokenEntry(entry) + "\r\n";
  Result<std::vector<TokenEntry>> parsed = ParseTokenFile(text, "tokens");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->size(), 1u);
  EXPECT_EQ((*parsed)[0].name, "bob");
  EXPECT_EQ((*parsed)[0].role, Role::kViewer);
  EXPECT_TRUE(MatchToken(*parsed, "t").has_value());
}

TEST(TokensTest, ErrorsNameTheLineAndThePart) {
  const std::string good = FormatTokenEntry(*MakeTokenEntry("bob", "viewer", "t"));
  struct Case {
    std::string text;
    std::string field;
    std::string message;
  };
  const std::vector<Case> cases{
      {"# c\nbob viewer\n", "", "tokens:2: expected NAME ROLE HASH"},
      {"bob root sha256:00:00\n", "role", "tokens:1: role: expected agent, viewer, user or admin"},
      {"bob user gpurm_plaintext\n", "hash", "tokens:1: hash:"},
      {"b/b user x\n", "name", "tokens:1: name:"},
      {good + "\n" + good + "\n", "name", "tokens:2: name: \"bob\" is given twice"},
  };
  for (const Case& c : cases) {
    Result<std::vector<TokenEntry>> parsed = ParseTokenFile(c.text, "tokens");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().field(), c.field) << c.text;
    EXPECT_EQ(parsed.status().message().rfind(c.message, 0), 0u) << parsed.status().message();
  }
}

TEST(TokensTest, AppendAndRemoveEditTheFile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("gpurm-tokens-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove(path);
  ASSERT_TRUE(AppendTokenEntry(path, *MakeTokenEntry("alice", "user", "a")).ok());
  ASSERT_TRUE(AppendTokenEntry(path, *MakeTokenEntry("root", "admin", "r")).ok());
  EXPECT_EQ(AppendTokenEntry(path, *MakeTokenEntry("alice", "admin", "b")).code(),
            StatusCode::kAlreadyExists);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(ReadTokenFile(path)->size(), 2u);
  ASSERT_TRUE(RemoveTokenEntry(path, "alice").ok());
  EXPECT_EQ(RemoveTokenEntry(path, "alice").code(), StatusCode::kNotFound);
  Result<std::vector<TokenEntry>> left = ReadTokenFile(path);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].name, "root");
  std::ifstream in(path);
  std::string first_line;
  std::getline(in, first_line);
  EXPECT_EQ(first_line.rfind('#', 0), 0u);  // The header comment is kept.
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace gpurm
