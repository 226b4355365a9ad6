// `gpurm simulate`: replays a cluster trace through every placement policy
// (or one) and prints the table, the JSON report and optionally a PNG of
// allocated vs. arrived GPU share.
//
//   gpurm simulate --trace pods.csv --nodes nodes.csv [--policy NAME]...
//                  [--seed N [--repeat K]] [--tune R | --inflation R]
//                  [--variant NAME [--variant-seed S] [--write-trace out.csv]]
//                  [--plot out.png] [--jobs J] [-o table|json]
//
// Exit codes: 0 done; 2 bad arguments or unreadable/malformed input;
// 3 the plot could not be written.
#ifndef GPURM_SIMULATOR_COMMAND_H_
#define GPURM_SIMULATOR_COMMAND_H_

#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace gpurm::sim {

struct SimulateArgs {
  std::string trace_path;
  std::string nodes_path;
  std::vector<std::string> policies;  // Empty = every policy.
  std::optional<uint64_t> seed;       // Shuffle arrivals with this seed.
  int repeat = 1;                     // Runs per policy (seeds seed, seed+1, ...).
  // The artifact's tuning: arrivals' GPU demand = tune x capacity (0: the
  // trace as it is). With `inflation` set, the pod count is multiplied
  // instead.
  double tune = 1.3;
  std::optional<double> inflation;
  std::string variant;  // Derive this paper variant from the trace first.
  uint64_t variant_seed = 42;
  std::string write_trace_path;  // Write the (derived) pod list here.
  std::string plot_path;
  std::string output = "table";  // "table" or "json".
  int jobs = 0;                  // Worker threads; 0 = one per hardware thread.
};

// Runs the simulation and writes the report to `out`; returns the exit code.
int RunSimulate(const SimulateArgs& args, std::ostream& out, std::ostream& err);

// Adds `simulate` to `app`. Reads the app's global -o/--output option when
// it exists (the client commands add it), else offers its own. *exit_code
// must outlive `app`.
void RegisterSimulateCommand(CLI::App& app, int* exit_code, std::ostream& out = std::cout,
                             std::ostream& err = std::cerr);

}  // namespace gpurm::sim

#endif  // GPURM_SIMULATOR_COMMAND_H_
