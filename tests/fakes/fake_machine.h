// Shared by the fake vendor libraries: the scripted machine, read from the
// JSON file an environment variable names (see machines/README.md).
#ifndef GPURM_TESTS_FAKES_FAKE_MACHINE_H_
#define GPURM_TESTS_FAKES_FAKE_MACHINE_H_

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace gpurm::fakes {

// The machine described by the file `env_var` names; a discarded value when
// the variable is unset or the file unreadable or not JSON.
inline nlohmann::json LoadMachine(const char* env_var) {
  const char* path = std::getenv(env_var);
  if (path == nullptr) return nlohmann::json(nlohmann::json::value_t::discarded);
  std::ifstream in(path);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

// "0000:c1:00.0" -> {domain, bus, device, function}; zeros when malformed.
struct PciAddress {
  unsigned domain = 0, bus = 0, device = 0, function = 0;
};
inline PciAddress ParseBusId(const std::string& bus_id) {
  PciAddress address;
  std::sscanf(bus_id.c_str(), "%x:%x:%x.%x", &address.domain, &address.bus, &address.device,
              &address.function);
  return address;
}

}  // namespace gpurm::fakes

#endif  // GPURM_TESTS_FAKES_FAKE_MACHINE_H_
