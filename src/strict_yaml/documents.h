// LoadYamlDocuments: yaml-cpp's LoadAll for files that must hold one
// document, without LoadAll's hang.
//
// Why: yaml-cpp 0.7 (Debian 12) loops forever, allocating, in YAML::LoadAll
// on some malformed input ("&a,\xc2*a]"): a broken document makes
// Parser::HandleNextDocument succeed without consuming a token, so LoadAll
// collects null documents until memory runs out (fixed upstream in
// jbeder/yaml-cpp#1319). Found by fuzz/config_fuzzer and
// fuzz/static_inventory_fuzzer. Here the documents are counted with a bounded
// loop, which stops at the second.
#ifndef GPURM_STRICT_YAML_DOCUMENTS_H_
#define GPURM_STRICT_YAML_DOCUMENTS_H_

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cstddef>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace gpurm {

struct YamlDocuments {
  size_t count = 0;         // Documents in the text, counted up to 2.
  YAML::Node first;         // The first document (null when count == 0).
  YAML::Mark second_start;  // Where the second document starts, when count == 2.
};

// Throws YAML::Exception on a syntax error, as YAML::LoadAll does.
inline YamlDocuments LoadYamlDocuments(std::string_view text) {
  // Records where each document starts; ignores everything else.
  class DocumentStarts final : public YAML::EventHandler {
   public:
    void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
    std::vector<YAML::Mark> starts;
  };

  const std::string owned(text);
  std::istringstream in(owned);
  YAML::Parser parser(in);
  DocumentStarts handler;
  while (handler.starts.size() < 2 && parser.HandleNextDocument(handler)) {
  }
  YamlDocuments documents;
  documents.count = handler.starts.size();
  if (documents.count > 0) documents.first = YAML::Load(owned);  // Reads the first only.
  if (documents.count > 1) documents.second_start = handler.starts[1];
  return documents;
}

}  // namespace gpurm

#endif  // GPURM_STRICT_YAML_DOCUMENTS_H_
