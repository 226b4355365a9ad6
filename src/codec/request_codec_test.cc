#include "codec/request_codec.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "support/every_field.h"

namespace gpurm {
namespace {

using nlohmann::json;

GpuRequest EveryFieldSet() { return testing::RequestWithEveryFieldSet(); }

TEST(RequestCodecTest, TheFixtureSetsEveryFieldTheCodecKnows) {
  const json set = EncodeGpuRequest(EveryFieldSet());
  const json defaults = EncodeGpuRequest(GpuRequest{});
  for (const std::string& name : GpuRequestFieldNames()) {
    EXPECT_NE(set.at(name), defaults.at(name))
        << name << " is left at its default in testing::RequestWithEveryFieldSet()";
  }
}

TEST(RequestCodecTest, EveryFieldSurvivesARoundTripInBothSpellings) {
  const GpuRequest request = EveryFieldSet();
  ASSERT_NE(request, GpuRequest{});
  for (const FieldCase names : {FieldCase::kSnake, FieldCase::kCamel}) {
    const json encoded = EncodeGpuRequest(request, names);
    EXPECT_EQ(encoded.size(), GpuRequestFieldNames(names).size());
    Result<GpuRequest> decoded = DecodeGpuRequest(encoded, names);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, request);
    // Through text, as the ledgers store it.
    decoded = DecodeGpuRequest(json::parse(encoded.dump()), names);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, request);
  }
}

TEST(RequestCodecTest, NamesAreTheApisInSnakeCaseAndKubernetesStyleInCamelCase) {
  const json snake = EncodeGpuRequest(EveryFieldSet());
  EXPECT_EQ(snake.at("gpu_milli"), 250);
  EXPECT_EQ(snake.at("lease_ttl_seconds"), 600);
  const json camel = EncodeGpuRequest(EveryFieldSet(), FieldCase::kCamel);
  EXPECT_EQ(camel.at("gpuMilli"), 250);
  EXPECT_EQ(camel.at("leaseTtlSeconds"), 600);
  EXPECT_EQ(camel.at("gpuMemoryFraction"), 0.123456789012345);
}

TEST(RequestCodecTest, MissingFieldsKeepDefaultsAndNullKeepsTheDefault) {
  Result<GpuRequest> decoded = DecodeGpuRequest(json{{"gpu_type", "T4"}, {"memory_gb", nullptr}});
  ASSERT_TRUE(decoded.ok());
  GpuRequest expected;
  expected.gpu_type = "T4";
  EXPECT_EQ(*decoded, expected);
}

TEST(RequestCodecTest, BadValuesNameTheFieldWithItsPrefix) {
  Status status =
      DecodeGpuRequest(json{{"gpu_count", "two"}}, FieldCase::kSnake, "request.").status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "request.gpu_count");
  EXPECT_EQ(status.message(), "expected an integer, got a string");

  status = DecodeGpuRequest(json{{"gpu_count", 4097}}).status();
  EXPECT_EQ(status.field(), "gpu_count");
  EXPECT_EQ(status.message(), "must be between 1 and 4096, got 4097");

  status = DecodeGpuRequest(json{{"gpuMilli", 1001}}, FieldCase::kCamel).status();
  EXPECT_EQ(status.field(), "gpuMilli");

  status = DecodeGpuRequest(json{{"gpu_type", std::string(257, 'x')}}).status();
  EXPECT_EQ(status.field(), "gpu_type");
  EXPECT_EQ(status.message(), "must be at most 256 characters");

  status = DecodeGpuRequest(json{{"shared", 1}}).status();
  EXPECT_EQ(status.message(), "expected true or false, got an integer");
}

TEST(RequestCodecTest, UnknownFieldsAreRefusedAndListTheKnownOnes) {
  const Status status = DecodeGpuRequest(json{{"gpu_cnt", 2}}).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status.field(), "gpu_cnt");
  EXPECT_NE(status.message().find("gpu_count"), std::string::npos);
  EXPECT_NE(status.message().find("lease_ttl_seconds"), std::string::npos);
}

TEST(RequestCodecTest, SingleFieldDecodingTellsUnknownKeysApart) {
  GpuRequest request;
  EXPECT_EQ(DecodeGpuRequestField("owner", json("alice"), &request).code(), StatusCode::kNotFound);
  EXPECT_TRUE(DecodeGpuRequestField("gpu_milli", json(500), &request).ok());
  EXPECT_EQ(request.gpu_milli, 500);
}

TEST(RequestCodecTest, ANonObjectIsTheWrongType) {
  EXPECT_EQ(DecodeGpuRequest(json::array(), FieldCase::kSnake, "request.").status().field(),
            "request");
}

// docs/openapi.json documents the request the API accepts; its GpuRequest
// schema must list exactly the codec's fields (plus the API's own options),
// with the same types and integer bounds.
TEST(RequestCodecTest, TheOpenApiSchemaDescribesTheCodecsFields) {
  const char* source_dir = std::getenv("GPURM_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr) << "ctest sets GPURM_SOURCE_DIR";
  std::ifstream file(std::string(source_dir) + "/docs/openapi.json");
  ASSERT_TRUE(file.good());
  const json schema = json::parse(file).at("components").at("schemas").at("GpuRequest");
  const json& properties = schema.at("properties");

  const std::set<std::string> api_options = {"owner", "wait", "wait_timeout_seconds", "priority"};
  std::set<std::string> documented;
  for (const auto& [name, property] : properties.items()) {
    if (!api_options.contains(name)) documented.insert(name);
  }
  const std::vector<std::string>& names = GpuRequestFieldNames();
  EXPECT_EQ(documented, std::set<std::string>(names.begin(), names.end()));

  const json defaults = EncodeGpuRequest(GpuRequest{});
  for (const std::string& name : names) {
    if (!properties.contains(name)) continue;
    const json& property = properties.at(name);
    const json& value = defaults.at(name);
    const std::string type = value.is_boolean()          ? "boolean"
                             : value.is_string()         ? "string"
                             : value.is_number_integer() ? "integer"
                                                         : "number";
    EXPECT_EQ(property.at("type"), type) << name;
    if (type != "integer") continue;
    GpuRequest request;
    const int64_t min = property.at("minimum"), max = property.at("maximum");
    EXPECT_TRUE(DecodeGpuRequestField(name, json(min), &request).ok()) << name;
    EXPECT_TRUE(DecodeGpuRequestField(name, json(max), &request).ok()) << name;
    EXPECT_FALSE(DecodeGpuRequestField(name, json(min - 1), &request).ok()) << name;
    EXPECT_FALSE(DecodeGpuRequestField(name, json(max + 1), &request).ok()) << name;
  }
}

}  // namespace
}  // namespace gpurm
