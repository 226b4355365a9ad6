#include "core/enforcement.h"

namespace gpurm {

const char* EnforcementActionName(EnforcementAction action) {
  switch (action) {
    case EnforcementAction::kIgnore:
      return "ignore";
    case EnforcementAction::kWarn:
      return "warn";
    case EnforcementAction::kTerminate:
      return "terminate";
  }
  return "warn";
}

std::optional<EnforcementAction> ParseEnforcementAction(std::string_view name) {
  for (EnforcementAction action :
       {EnforcementAction::kIgnore, EnforcementAction::kWarn, EnforcementAction::kTerminate}) {
    if (name == EnforcementActionName(action)) return action;
  }
  return std::nullopt;
}

}  // namespace gpurm
