#include "cli/queue_command.h"

#include <gtest/gtest.h>

namespace gpurm::cli {
namespace {

using nlohmann::json;

json Entry(const std::string& id, const std::string& state, int position) {
  return json{{"queue_id", id},
              {"state", state},
              {"owner", "alice"},
              {"priority", 5},
              {"position", position},
              {"request", {{"gpu_count", 1}, {"gpu_type", "T4"}, {"gpu_milli", 470}}},
              {"enqueued_at", "2026-01-01T00:00:00.000Z"},
              {"expires_at", "2026-01-01T00:05:00.000Z"},
              {"ended_at", nullptr},
              {"message", "1 x T4 with 0.0 GB free each cannot be placed now on one node"},
              {"allocation_id", nullptr},
              {"allocation", nullptr}};
}

TEST(QueueCommandTest, RendersTheQueue) {
  const std::string text =
      RenderQueue(json{{"queue", {Entry("queue-1", "waiting", 1)}}, {"count", 1}, {"waiting", 1}});
  EXPECT_NE(text.find("queue-1"), std::string::npos) << text;
  EXPECT_NE(text.find("1 x T4 (0.47 GPU)"), std::string::npos) << text;
  EXPECT_NE(text.find("cannot be placed now"), std::string::npos) << text;
  EXPECT_NE(text.find("1 waiting"), std::string::npos) << text;
  EXPECT_EQ(RenderQueue(json{{"queue", json::array()}, {"waiting", 0}}),
            "No requests are waiting.\n");
}

TEST(QueueCommandTest, RendersAGrantedEntryWithItsGpus) {
  json entry = Entry("queue-2", "granted", 0);
  entry["allocation_id"] = "alloc-1";
  entry["allocation"] = {{"allocation_id", "alloc-1"},
                         {"node_name", "node-a"},
                         {"gpus", {{{"node_name", "node-a"}, {"gpu_index", 1}}}}};
  const std::string text = RenderQueueEntry(entry);
  EXPECT_NE(text.find("queue-2: granted"), std::string::npos) << text;
  EXPECT_NE(text.find("Allocation alloc-1 on node-a: GPUs node-a/1"), std::string::npos) << text;
}

}  // namespace
}  // namespace gpurm::cli
