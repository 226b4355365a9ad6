#include "auth/token_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace gpurm {
namespace {

class TokenStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("gpurm-token-store-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }

  void Write(const std::string& text) {
    // Through a rename, as editors and gpurm token revoke do: a new inode.
    {
      std::ofstream out(path_ + ".new");
      out << text;
    }
    std::filesystem::rename(path_ + ".new", path_);
  }

  std::string path_;
};

TEST_F(TokenStoreTest, RefusesToOpenABadFile) {
  EXPECT_FALSE(TokenStore::Open(path_).ok());  // Missing.
  Write("alice user not-a-hash\n");
  Result<std::unique_ptr<TokenStore>> store = TokenStore::Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().field(), "hash");
}

TEST_F(TokenStoreTest, ChangesApplyToTheNextRequest) {
  ASSERT_TRUE(AppendTokenEntry(path_, *MakeTokenEntry("alice", "user", "token-a")).ok());
  std::vector<std::pair<bool, size_t>> reloads;
  Result<std::unique_ptr<TokenStore>> store =
      TokenStore::Open(path_, [&](const Status& result, size_t identities) {
        reloads.emplace_back(result.ok(), identities);
      });
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ((*store)->Authenticate("token-a")->name, "alice");
  EXPECT_TRUE(reloads.empty());  // Unchanged: not reloaded.

  ASSERT_TRUE(AppendTokenEntry(path_, *MakeTokenEntry("bob", "viewer", "token-b")).ok());
  EXPECT_EQ((*store)->Authenticate("token-b")->name, "bob");
  ASSERT_TRUE(RemoveTokenEntry(path_, "alice").ok());
  EXPECT_FALSE((*store)->Authenticate("token-a").has_value());
  EXPECT_EQ(reloads, (std::vector<std::pair<bool, size_t>>{{true, 2}, {true, 1}}));
}

TEST_F(TokenStoreTest, ABadReloadKeepsTheOldTokens) {
  ASSERT_TRUE(AppendTokenEntry(path_, *MakeTokenEntry("alice", "user", "token-a")).ok());
  std::vector<Status> reloads;
  Result<std::unique_ptr<TokenStore>> store =
      TokenStore::Open(path_, [&](const Status& result, size_t) { reloads.push_back(result); });
  ASSERT_TRUE(store.ok());
  Write("alice superuser sha256:00:00\n");
  EXPECT_EQ((*store)->Authenticate("token-a")->name, "alice");
  EXPECT_EQ((*store)->Authenticate("token-a")->name, "alice");
  ASSERT_EQ(reloads.size(), 1u);  // Reported once per file version.
  EXPECT_EQ(reloads[0].field(), "role");
  std::filesystem::remove(path_);
  EXPECT_EQ((*store)->Authenticate("token-a")->name, "alice");
  EXPECT_EQ(reloads.size(), 2u);
  // Reload (SIGHUP) re-reads even an unchanged file.
  ASSERT_TRUE(AppendTokenEntry(path_, *MakeTokenEntry("bob", "admin", "token-b")).ok());
  (*store)->Reload();
  EXPECT_EQ((*store)->size(), 1u);
  EXPECT_FALSE((*store)->Authenticate("token-a").has_value());
  EXPECT_EQ((*store)->Authenticate("token-b")->role, Role::kAdmin);
}

}  // namespace
}  // namespace gpurm
