#include "strict_yaml/reader.h"

#include <gtest/gtest.h>

#include <climits>

namespace gpurm::strict_yaml {
namespace {

const Source kSource("test.yaml");

Result<std::vector<Entry>> Read(const std::string& text, const std::vector<std::string>& known) {
  return Entries(kSource, YAML::Load(text), "", known);
}

// The entry of a one-key document.
Entry Only(const std::string& text) { return Read(text, {})->front(); }

TEST(StrictYamlTest, EntriesComeInFileOrderWithDottedPathsAndLines) {
  const YAML::Node root = YAML::Load("server:\n  listen: x\n  threads: 2\n");
  Result<std::vector<Entry>> top = Entries(kSource, root, "", {"server"});
  ASSERT_TRUE(top.ok());
  Result<std::vector<Entry>> server = Section(kSource, top->front(), {"listen", "threads"});
  ASSERT_TRUE(server.ok());
  ASSERT_EQ(server->size(), 2u);
  EXPECT_EQ((*server)[1].path, "server.threads");
  EXPECT_EQ((*server)[1].mark.line, 2);
}

TEST(StrictYamlTest, DuplicateKeysAreRefusedNamingTheFirstLine) {
  const Status status = Read("a: 1\nb: 2\na: 3\n", {}).status();
  EXPECT_EQ(status.field(), "a");
  EXPECT_EQ(status.message(), "test.yaml:3: a: duplicate key (first given at line 1)");
}

TEST(StrictYamlTest, UnknownKeysSuggestTheClosestKnownOneWithItsPath) {
  const YAML::Node root = YAML::Load("server:\n  Thread: 2\n");
  const Entry server = Entries(kSource, root, "", {"server"})->front();
  const Status status = Section(kSource, server, {"listen", "threads"}).status();
  EXPECT_EQ(status.field(), "server.Thread");
  EXPECT_EQ(status.message(),
            "test.yaml:2: unknown key 'server.Thread'; did you mean 'server.threads'?");
  EXPECT_EQ(Read("zzzzzz: 1\n", {"listen"}).status().message(),
            "test.yaml:1: unknown key 'zzzzzz'");
}

TEST(StrictYamlTest, NonScalarKeysAreRefused) {
  EXPECT_EQ(Read("[a, b]: 1\n", {}).status().message(),
            "test.yaml:1: keys must be plain names, got a list");
}

TEST(StrictYamlTest, BooleansAreYaml12s) {
  bool value = false;
  EXPECT_TRUE(ReadBool(kSource, Only("x: True\n"), &value).ok());
  EXPECT_TRUE(value);
  EXPECT_TRUE(ReadBool(kSource, Only("x: false\n"), &value).ok());
  EXPECT_FALSE(value);
  const Status status = ReadBool(kSource, Only("x: yes\n"), &value);
  EXPECT_EQ(status.message(), "test.yaml:1: x: expected true or false, got \"yes\"");
}

TEST(StrictYamlTest, IntegersAreWholeAndInRange) {
  int64_t value = 0;
  EXPECT_TRUE(ReadInt(kSource, Only("n: 64\n"), 1, 64, "an integer from 1 to 64", &value).ok());
  EXPECT_EQ(value, 64);
  EXPECT_EQ(ReadInt(kSource, Only("n: 65\n"), 1, 64, "an integer from 1 to 64", &value).message(),
            "test.yaml:1: n: expected an integer from 1 to 64, got \"65\"");
  EXPECT_FALSE(ReadInt(kSource, Only("n: 2.0\n"), 1, 64, "an integer", &value).ok());
  EXPECT_FALSE(
      ReadInt(kSource, Only("n: 99999999999999999999\n"), 0, INT64_MAX, "an integer", &value).ok());
  int small = 0;
  EXPECT_FALSE(ReadInt(kSource, Only("n: 3000000000\n"), 0, INT_MAX, "an integer", &small).ok());
}

TEST(StrictYamlTest, NumbersAreFiniteAndValid) {
  double value = 0;
  const auto positive = [](double v) { return v > 0; };
  EXPECT_TRUE(ReadNumber(kSource, Only("x: 0.5\n"), "a positive number", positive, &value).ok());
  EXPECT_EQ(value, 0.5);
  EXPECT_FALSE(ReadNumber(kSource, Only("x: .inf\n"), "a number", positive, &value).ok());
  EXPECT_FALSE(ReadNumber(kSource, Only("x: nan\n"), "a number", positive, &value).ok());
  EXPECT_EQ(ReadNumber(kSource, Only("x: -1\n"), "a positive number", positive, &value).message(),
            "test.yaml:1: x: expected a positive number, got \"-1\"");
  std::optional<double> optional;
  EXPECT_TRUE(ReadNumber(kSource, Only("x: 2\n"), "a number", positive, &optional).ok());
  EXPECT_EQ(optional, 2.0);
}

TEST(StrictYamlTest, StringsListsAndDescriptions) {
  std::string text;
  EXPECT_TRUE(ReadString(kSource, Only("s:\n"), /*allow_empty=*/true, &text).ok());
  EXPECT_EQ(ReadString(kSource, Only("s: [1]\n"), /*allow_empty=*/false, &text).message(),
            "test.yaml:1: s: expected a non-empty string, got a list");
  EXPECT_EQ(List(kSource, Only("l:\n"))->size(), 0u);
  EXPECT_EQ(List(kSource, Only("l: {a: 1}\n")).status().message(),
            "test.yaml:1: l: expected a list, got a mapping");
  EXPECT_EQ(Describe(YAML::Load(std::string(100, 'x'))), "\"" + std::string(60, 'x') + "...\"");
}

TEST(StrictYamlTest, SuggestIgnoresCaseAndRefusesFarGuesses) {
  EXPECT_EQ(Suggest("LOG_LEVEL", {"log_level", "listen"}), "log_level");
  EXPECT_EQ(Suggest("completely-different", {"listen"}), "");
  EXPECT_EQ(Suggest("x", {}), "");
}

}  // namespace
}  // namespace gpurm::strict_yaml
