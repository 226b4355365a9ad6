#include "simulator/trace.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <utility>

#include "core/gpu_model.h"

namespace gpurm::sim {
namespace {

std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  for (char c : line) {
    if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c != '\r') {
      field.push_back(c);
    }
  }
  fields.push_back(std::move(field));
  return fields;
}

// A CSV with a header: rows as name -> value lookups with located errors.
class CsvReader {
 public:
  static Result<CsvReader> Open(const std::string& path) {
    CsvReader reader;
    reader.path_ = path;
    reader.in_.open(path);
    if (!reader.in_) return NotFound("cannot open " + path + ": " + std::strerror(errno));
    std::string header;
    if (!std::getline(reader.in_, header)) {
      return InvalidArgument(path + ": empty file (expected a CSV header)", "file");
    }
    reader.line_ = 1;
    const std::vector<std::string> names = SplitCsvLine(header);
    for (size_t i = 0; i < names.size(); ++i) reader.columns_[names[i]] = i;
    return reader;
  }

  Status Require(const std::vector<std::string>& names) const {
    for (const std::string& name : names) {
      if (columns_.count(name) == 0) {
        return InvalidArgument(path_ + ": header has no column \"" + name + "\"", name);
      }
    }
    return Status::Ok();
  }

  // Next non-empty row; false at the end.
  bool Next() {
    std::string text;
    while (std::getline(in_, text)) {
      ++line_;
      if (text.empty() || text == "\r") continue;
      row_ = SplitCsvLine(text);
      return true;
    }
    return false;
  }

  std::string Text(const std::string& column) const {
    auto it = columns_.find(column);
    if (it == columns_.end() || it->second >= row_.size()) return "";
    return row_[it->second];
  }

  Status Integer(const std::string& column, int64_t min, int64_t max, int64_t* out) const {
    const std::string text = Text(column);
    if (text.empty()) {
      *out = 0;
      return Status::Ok();
    }
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != '\0' || errno != 0 || value < min || value > max) {
      return InvalidArgument(path_ + ":" + std::to_string(line_) + ": column " + column +
                                 ": expected an integer between " + std::to_string(min) + " and " +
                                 std::to_string(max) + ", got \"" + text + "\"",
                             column);
    }
    *out = value;
    return Status::Ok();
  }

  std::string Where() const { return path_ + ":" + std::to_string(line_); }

 private:
  std::string path_;
  std::ifstream in_;
  std::map<std::string, size_t> columns_;
  std::vector<std::string> row_;
  int64_t line_ = 0;
};

}  // namespace

int64_t TracePod::GpuDemandMilli() const {
  if (num_gpu == 1 && gpu_milli > 0 && gpu_milli < kMilliPerGpu) return gpu_milli;
  return static_cast<int64_t>(num_gpu) * kMilliPerGpu;
}

Result<std::vector<TraceNode>> LoadTraceNodes(const std::string& path) {
  Result<CsvReader> reader = CsvReader::Open(path);
  if (!reader.ok()) return reader.status();
  if (Status s = reader->Require({"sn", "cpu_milli", "memory_mib", "gpu"}); !s.ok()) return s;
  std::vector<TraceNode> nodes;
  while (reader->Next()) {
    TraceNode& node = nodes.emplace_back();
    node.name = reader->Text("sn");
    if (node.name.empty()) {
      return InvalidArgument(reader->Where() + ": column sn: empty node name", "sn");
    }
    int64_t gpus = 0;
    for (Status s : {reader->Integer("cpu_milli", 0, int64_t{1} << 40, &node.cpu_milli),
                     reader->Integer("memory_mib", 0, int64_t{1} << 40, &node.memory_mib),
                     reader->Integer("gpu", 0, static_cast<int64_t>(kMaxGpusPerNode), &gpus)}) {
      if (!s.ok()) return s;
    }
    node.gpus = static_cast<int>(gpus);
    node.model = reader->Text("model");
    if (node.gpus > 0 && node.model.empty()) {
      return InvalidArgument(reader->Where() + ": column model: a node with GPUs needs a model",
                             "model");
    }
  }
  if (nodes.empty()) return InvalidArgument(path + ": no nodes", "file");
  return nodes;
}

Result<std::vector<TracePod>> LoadTracePods(const std::string& path) {
  Result<CsvReader> reader = CsvReader::Open(path);
  if (!reader.ok()) return reader.status();
  if (Status s = reader->Require({"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"});
      !s.ok()) {
    return s;
  }
  std::vector<TracePod> pods;
  while (reader->Next()) {
    TracePod& pod = pods.emplace_back();
    pod.name = reader->Text("name");
    int64_t num_gpu = 0;
    int64_t gpu_milli = 0;
    for (Status s : {reader->Integer("cpu_milli", 0, int64_t{1} << 40, &pod.cpu_milli),
                     reader->Integer("memory_mib", 0, int64_t{1} << 40, &pod.memory_mib),
                     reader->Integer("num_gpu", 0, static_cast<int64_t>(kMaxGpusPerNode), &num_gpu),
                     reader->Integer("gpu_milli", 0, kMilliPerGpu, &gpu_milli)}) {
      if (!s.ok()) return s;
    }
    pod.num_gpu = static_cast<int>(num_gpu);
    pod.gpu_milli = static_cast<int>(gpu_milli);
    pod.gpu_spec = reader->Text("gpu_spec");
  }
  if (pods.empty()) return InvalidArgument(path + ": no pods", "file");
  return pods;
}

Status WriteTracePods(const std::vector<TracePod>& pods, const std::string& path) {
  std::ofstream out(path);
  if (!out) return Internal("cannot write " + path + ": " + std::strerror(errno));
  out << "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec\n";
  for (const TracePod& pod : pods) {
    out << pod.name << ',' << pod.cpu_milli << ',' << pod.memory_mib << ',' << pod.num_gpu << ','
        << pod.gpu_milli << ',' << pod.gpu_spec << '\n';
  }
  out.flush();
  if (!out) return Internal("cannot write " + path);
  return Status::Ok();
}

SimulatedCluster BuildCluster(const std::vector<TraceNode>& nodes) {
  auto snapshot = std::make_shared<InventorySnapshot>();
  SimulatedCluster cluster;
  snapshot->nodes.reserve(nodes.size());
  for (const TraceNode& trace_node : nodes) {
    Node& node = snapshot->nodes.emplace_back();
    node.name = trace_node.name;
    const GpuModel model = ParseGpuModel(trace_node.model);
    const int64_t memory_mib = MibFromGb(model.memory_gb.value_or(16.0));
    for (int i = 0; i < trace_node.gpus; ++i) {
      Gpu& gpu = node.gpus.emplace_back();
      gpu.index = i;
      gpu.uuid = trace_node.name + "-gpu" + std::to_string(i);
      gpu.model = model;
      gpu.memory_total_mib = memory_mib;
    }
    cluster.host_capacity.push_back({trace_node.cpu_milli, trace_node.memory_mib});
    cluster.gpu_count += trace_node.gpus;
  }
  snapshot->generation = 1;
  cluster.snapshot = std::move(snapshot);
  return cluster;
}

GpuRequest RequestFor(const TracePod& pod) {
  GpuRequest request;
  request.gpu_count = pod.num_gpu;
  if (pod.num_gpu == 1 && pod.gpu_milli > 0 && pod.gpu_milli < kMilliPerGpu) {
    request.gpu_milli = pod.gpu_milli;
  }
  request.gpu_type = pod.gpu_spec;
  return request;
}

HostResources HostDemandOf(const TracePod& pod) { return {pod.cpu_milli, pod.memory_mib}; }

}  // namespace gpurm::sim
