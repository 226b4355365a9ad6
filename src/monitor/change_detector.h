// ChangeDetector: turns successive inventory snapshots into change events,
// reporting only movements larger than resource_change_threshold.
#ifndef GPURM_MONITOR_CHANGE_DETECTOR_H_
#define GPURM_MONITOR_CHANGE_DETECTOR_H_

#include <string>
#include <unordered_map>
#include <vector>

#include "core/types.h"
#include "monitor/events.h"

namespace gpurm {

// Compares each GPU's readings with the values it last *reported* (not the
// previous sample), so a slow drift is reported once it adds up to more than
// the threshold instead of never. Per reading, with t = the threshold:
//   utilization   |now - reported| > t                (ratios 0..1)
//   memory        |used/total now - used/total reported| > t
//   temperature   |now - reported| / max(|reported|, 1 C) > t
//   power         |now - reported| / limit > t, where limit is the power
//                 limit when known, else max(|reported|, 1 W)
// A reading that appears or disappears (e.g. a sensor that stops answering)
// counts as a change. A change of the healthy flag or health reason is always
// reported, as a kHealth event. Moving by exactly t is not a change.
//
// Only the readings that moved take their new value as the reference; the
// others keep theirs. GPUs are identified by UUID; the first snapshot reports
// every GPU as kAdded.
//
// Thread-compatible: one caller at a time (the sampler thread).
class ChangeDetector {
 public:
  // `threshold` is clamped to >= 0.
  explicit ChangeDetector(double threshold);

  // Events for `snapshot` against the references so far, in inventory order
  // (removed GPUs last); updates the references. Sequence numbers are left 0.
  std::vector<GpuEvent> Update(const InventorySnapshot& snapshot);

  double threshold() const { return threshold_; }

 private:
  struct Reference {
    std::string node_name;
    int gpu_index = 0;
    std::string model;
    GpuReading reading;
  };

  const double threshold_;
  std::unordered_map<std::string, Reference> references_;  // By GPU UUID.
};

// The readings of `gpu` that change detection looks at.
GpuReading ReadingOf(const Gpu& gpu);

}  // namespace gpurm

#endif  // GPURM_MONITOR_CHANGE_DETECTOR_H_
