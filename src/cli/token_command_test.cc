#include "cli/token_command.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "auth/tokens.h"
#include "cli/commands.h"

namespace gpurm::cli {
namespace {

class TokenCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ =
        (std::filesystem::temp_directory_path() / ("gpurm-token-cmd-" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // Runs `gpurm token ARGS... --file path_`; returns the exit code.
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    CLI::App app{"gpurm"};
    int exit_code = kExitOk;
    RegisterTokenCommand(app, &exit_code, out_, err_);
    args.insert(args.begin(), {"gpurm", "token"});
    args.emplace_back("--file");
    args.push_back(path_);
    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const std::string& arg : args) argv.push_back(arg.c_str());
    return ParseAndRun(app, static_cast<int>(argv.size()), argv.data(), &exit_code);
  }

  std::string path_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(TokenCommandTest, CreatePrintsTheTokenOnceAndStoresItsHash) {
  ASSERT_EQ(Run({"create", "--name", "alice", "--role", "admin"}), kExitOk) << err_.str();
  std::string token = out_.str();
  ASSERT_EQ(token.back(), '\n');
  token.pop_back();
  EXPECT_EQ(token.rfind("gpurm_", 0), 0u);
  Result<std::vector<TokenEntry>> entries = ReadTokenFile(path_);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].role, Role::kAdmin);
  EXPECT_EQ((*entries)[0].hash.find(token.substr(6)), std::string::npos);
  EXPECT_EQ(MatchToken(*entries, token)->name, "alice");
  // A name is given one token.
  EXPECT_EQ(Run({"create", "--name", "alice"}), kExitRefused);
  EXPECT_NE(err_.str().find("already has a token"), std::string::npos);
  EXPECT_EQ(Run({"create", "--name", "bob", "--role", "root"}), kExitUsage);
  EXPECT_EQ(Run({"create", "--name", "b b"}), kExitRefused);
}

TEST_F(TokenCommandTest, ListAndRevoke) {
  ASSERT_EQ(Run({"create", "--name", "alice"}), kExitOk);
  ASSERT_EQ(Run({"create", "--name", "val", "--role", "viewer"}), kExitOk);
  ASSERT_EQ(Run({"list"}), kExitOk);
  EXPECT_NE(out_.str().find("alice"), std::string::npos);
  EXPECT_NE(out_.str().find("viewer"), std::string::npos);
  EXPECT_EQ(out_.str().find("sha256"), std::string::npos);  // Hashes are not shown.
  ASSERT_EQ(Run({"revoke", "alice"}), kExitOk);
  EXPECT_EQ(Run({"revoke", "alice"}), kExitRefused);
  ASSERT_EQ(Run({"list"}), kExitOk);
  EXPECT_EQ(out_.str().find("alice"), std::string::npos);
}

}  // namespace
}  // namespace gpurm::cli
