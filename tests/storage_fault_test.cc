// The ledger's storage failing under the real daemon:
//  - disk full (the data directory on a small tmpfs, filled up): allocations
//    and releases are refused with 503 and a JSON error, reads keep working,
//    nothing acknowledged is lost or half-written, and once space returns
//    allocations work again without a restart;
//  - a corrupt ledger, a file that is not a database, and another
//    application's SQLite database: `gpurm serve` exits non-zero naming the
//    file and leaves it byte for byte as it was (never a silent reset).
#include <errno.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/run_command.h"

namespace gpurm {
namespace {

using nlohmann::json;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

testing::CommandResult LedgerCheck(const std::string& data_dir) {
  return testing::RunCommand({testing::GpurmBinary(), "ledger", "check", "--data-dir", data_dir});
}

// A tmpfs of `bytes` mounted on `dir` for the scope's lifetime. Needs
// CAP_SYS_ADMIN (CI runs as root); `error` says why when mounting failed.
class SmallFilesystem {
 public:
  SmallFilesystem(std::string dir, size_t bytes) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  SmallFilesystem(const SmallFilesystem&) = delete;
  SmallFilesystem& operator=(const SmallFilesystem&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Writes `path` until the filesystem is full. Returns the bytes written.
  size_t Fill(const std::string& path) const {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) return 0;
    std::setvbuf(file, nullptr, _IONBF, 0);
    const std::string block(4096, '\xee');
    size_t written = 0;
    while (std::fwrite(block.data(), 1, block.size(), file) == block.size()) {
      written += block.size();
    }
    // The last partial block, down to single bytes.
    while (std::fwrite(block.data(), 1, 1, file) == 1) ++written;
    std::fclose(file);
    return written;
  }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

TEST(StorageFaultTest, DiskFullRefusesWith503AndRecoversWhenSpaceReturns) {
  const std::string dir = testing::MakeTempDir("gpurm-diskfull");
  const std::string data_dir = dir + "/data";
  SmallFilesystem filesystem(data_dir, 2 << 20);
  if (!filesystem.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs on " << data_dir << " (" << filesystem.error()
                 << "); this test needs CAP_SYS_ADMIN, as CI has";
  }
  testing::DaemonProcess daemon(dir, testing::ExampleInventoryArgs());
  std::string error;
  ASSERT_TRUE(daemon.Start(&error)) << error;
  cli::HttpClient client = daemon.Client("diskfull");

  std::vector<std::string> kept;
  for (int i = 0; i < 3; ++i) {
    auto answer = client.Post("/api/v1/gpu/allocate", json{{"gpu_type", "V100"}});
    ASSERT_TRUE(answer.ok() && answer->status == 200) << (answer.ok() ? answer->raw_body : "");
    kept.push_back(answer->body["allocation_id"]);
  }

  const std::string filler = data_dir + "/filler";
  ASSERT_GT(filesystem.Fill(filler), 0u);

  // Every state change now needs space there is not: refused, 503, JSON.
  int refused = 0;
  for (int i = 0; i < 20; ++i) {
    auto answer = client.Post("/api/v1/gpu/allocate", json{{"gpu_type", "T4"}});
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    ASSERT_EQ(answer->status, 503) << "allocation " << i << " on a full disk: " << answer->raw_body;
    ASSERT_TRUE(answer->body.is_object()) << answer->raw_body;
    EXPECT_EQ(answer->body["success"], false);
    EXPECT_EQ(answer->body["error"]["code"], "resource_exhausted") << answer->raw_body;
    EXPECT_NE(answer->body["error"]["message"].get<std::string>().find("disk full"),
              std::string::npos)
        << answer->raw_body;
    ++refused;
  }
  auto release = client.Delete("/api/v1/gpu/allocations/" + kept[0]);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->status, 503) << release->raw_body;
  EXPECT_EQ(release->body["error"]["code"], "resource_exhausted") << release->raw_body;

  // Reads still work and show exactly what was acknowledged.
  auto listed = client.Get("/api/v1/gpu/allocations");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->status, 200);
  EXPECT_EQ(listed->body["count"], 3) << listed->raw_body;
  auto health = client.Get("/api/v1/gpu/health");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);

  // Space returns: the same daemon works again.
  std::filesystem::remove(filler);
  auto allocated = client.Post("/api/v1/gpu/allocate", json{{"gpu_type", "T4"}});
  ASSERT_TRUE(allocated.ok());
  ASSERT_EQ(allocated->status, 200) << allocated->raw_body;
  kept.push_back(allocated->body["allocation_id"]);
  release = client.Delete("/api/v1/gpu/allocations/" + kept[0]);
  ASSERT_TRUE(release.ok());
  EXPECT_EQ(release->status, 200) << release->raw_body;

  // Nothing corrupted: the ledger checks out and a restart sees it all.
  EXPECT_EQ(daemon.Terminate(), 0);
  testing::CommandResult check = LedgerCheck(data_dir);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  ASSERT_TRUE(daemon.Start(&error)) << error;
  cli::HttpClient after = daemon.Client();
  for (size_t i = 0; i < kept.size(); ++i) {
    auto answer = after.Get("/api/v1/gpu/allocations/" + kept[i]);
    ASSERT_TRUE(answer.ok());
    ASSERT_EQ(answer->status, 200) << kept[i];
    EXPECT_EQ(answer->body["state"], i == 0 ? "released" : "active") << kept[i];
  }
  auto all = after.Get("/api/v1/gpu/allocations?all=true");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->body["count"], 4) << "refused allocations left traces: " << all->raw_body;
  std::printf("disk full: %d allocations refused with 503, ledger intact\n", refused);
  EXPECT_EQ(daemon.Terminate(), 0);
}

class BadLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("gpurm-badledger");
    ledger_ = dir_ + "/data/ledger.db";
    std::filesystem::create_directories(dir_ + "/data");
  }

  // `gpurm serve` must refuse the ledger: non-zero exit, the file named, the
  // file unchanged. `why` is a phrase the message must contain.
  void ExpectServeRefuses(const std::string& why) {
    const std::string before = ReadBytes(ledger_);
    std::vector<std::string> args = {testing::GpurmBinary(),
                                     "serve",
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--log-dir",
                                     dir_ + "/logs",
                                     "--config",
                                     testing::SourceDir() + "/gpu_config.yaml"};
    for (const std::string& arg : testing::ExampleInventoryArgs()) args.push_back(arg);
    testing::CommandResult serve = testing::RunCommand(args, std::chrono::seconds(30));
    ASSERT_FALSE(serve.timed_out) << "gpurm serve started on a bad ledger:\n" << serve.output;
    EXPECT_NE(serve.exit_code, 0) << serve.output;
    EXPECT_NE(serve.output.find(ledger_), std::string::npos) << serve.output;
    EXPECT_NE(serve.output.find(why), std::string::npos) << serve.output;
    EXPECT_EQ(ReadBytes(ledger_), before) << "the refused ledger was modified";
    EXPECT_FALSE(std::filesystem::exists(ledger_ + "-wal") &&
                 std::filesystem::file_size(ledger_ + "-wal") > 0)
        << "a refused ledger got a WAL with content";

    testing::CommandResult check = LedgerCheck(dir_ + "/data");
    EXPECT_EQ(check.exit_code, 1) << check.output;
    EXPECT_NE(check.output.find(ledger_), std::string::npos) << check.output;
    EXPECT_EQ(ReadBytes(ledger_), before) << "ledger check modified the file";
  }

  std::string dir_;
  std::string ledger_;
};

TEST_F(BadLedgerTest, NotADatabase) {
  WriteBytes(ledger_, "this is a text file, not a ledger\n" + std::string(8192, 'x'));
  ExpectServeRefuses("not a gpurm ledger");
}

TEST_F(BadLedgerTest, AnotherApplicationsDatabase) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(ledger_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT);"
                         "INSERT INTO photos (path) VALUES ('holiday.jpg');",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  ExpectServeRefuses("another application");
}

TEST_F(BadLedgerTest, CorruptLedger) {
  {
    testing::DaemonProcess daemon(dir_, testing::ExampleInventoryArgs());
    std::string error;
    ASSERT_TRUE(daemon.Start(&error)) << error;
    cli::HttpClient client = daemon.Client();
    for (int i = 0; i < 40; ++i) {
      auto answer = client.Post("/api/v1/gpu/allocate",
                                json{{"gpu_type", "T4"}, {"shared", true}, {"memory_gb", 0.5}});
      ASSERT_TRUE(answer.ok() && answer->status == 200);
      ASSERT_EQ(
          client
              .Delete("/api/v1/gpu/allocations/" + answer->body["allocation_id"].get<std::string>())
              ->status,
          200);
    }
    ASSERT_EQ(daemon.Terminate(), 0);  // Checkpoints the WAL into the file.
  }
  std::string bytes = ReadBytes(ledger_);
  ASSERT_GT(bytes.size(), 3u * 4096) << "the ledger should span several pages";
  // Scribble over the b-tree pages after page 1 (which holds the identity).
  for (size_t i = 4096; i < bytes.size(); ++i) bytes[i] = static_cast<char>(0x5a);
  WriteBytes(ledger_, bytes);
  ExpectServeRefuses("corrupt");
}

}  // namespace
}  // namespace gpurm
