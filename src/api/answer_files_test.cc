#include "api/answer_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

namespace gpurm {
namespace {

std::string FileBytes(const AnswerFile& file) {
  std::string bytes(file.size(), '\0');
  EXPECT_EQ(::pread(file.fd(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  return bytes;
}

TEST(AnswerFilesTest, HoldsTheTextsBytes) {
  AnswerFiles files;
  auto text = std::make_shared<const std::string>(std::string(100000, 'x') + "end");
  std::shared_ptr<const AnswerFile> file = files.For(text);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->size(), text->size());
  EXPECT_EQ(FileBytes(*file), *text);
}

TEST(AnswerFilesTest, TheSameTextGetsTheSameFileAndAnEqualOneItsOwn) {
  AnswerFiles files;
  auto text = std::make_shared<const std::string>("cached answer");
  auto equal = std::make_shared<const std::string>("cached answer");
  EXPECT_EQ(files.For(text), files.For(text));
  EXPECT_NE(files.For(text), files.For(equal));
  EXPECT_EQ(files.For(nullptr), nullptr);
}

TEST(AnswerFilesTest, ATextSharedThroughAnAliasIsFoundAgain) {
  // As the /metrics cache shares its text: a pointer to a member of the entry.
  struct Entry {
    int version = 1;
    std::string text = "families";
  };
  AnswerFiles files;
  auto entry = std::make_shared<const Entry>();
  const std::shared_ptr<const std::string> first(entry, &entry->text);
  const std::shared_ptr<const std::string> again(entry, &entry->text);
  EXPECT_EQ(files.For(first), files.For(again));
  EXPECT_EQ(FileBytes(*files.For(again)), "families");
}

TEST(AnswerFilesTest, AFileOutlivesItsEntryWhileSomeoneSendsFromIt) {
  AnswerFiles files(/*max_files=*/1);
  auto old_text = std::make_shared<const std::string>("old answer");
  std::shared_ptr<const AnswerFile> sending = files.For(old_text);
  auto new_text = std::make_shared<const std::string>("new answer");
  std::shared_ptr<const AnswerFile> newer = files.For(new_text);  // Evicts the old entry.
  EXPECT_NE(sending->fd(), newer->fd());
  EXPECT_EQ(FileBytes(*sending), "old answer");
  // Evicted: asked again, the old text gets a new file.
  EXPECT_NE(files.For(old_text), sending);
}

TEST(AnswerFilesTest, ADeadTextsFileIsNotGivenToANewTextAtItsAddress) {
  AnswerFiles files;
  std::shared_ptr<const AnswerFile> first;
  {
    auto text = std::make_shared<const std::string>("first");
    first = files.For(text);
  }
  // A new object may reuse the address; it must get its own bytes.
  auto text = std::make_shared<const std::string>("second");
  std::shared_ptr<const AnswerFile> second = files.For(text);
  EXPECT_NE(second, first);
  EXPECT_EQ(FileBytes(*second), "second");
}

}  // namespace
}  // namespace gpurm
