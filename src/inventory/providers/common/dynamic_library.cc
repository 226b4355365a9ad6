#include "inventory/providers/common/dynamic_library.h"

#include <dlfcn.h>

#include <string_view>
#include <utility>

namespace gpurm {
namespace {

// glibc's wording when the file itself is absent (as opposed to present but
// unloadable: "wrong ELF class", "undefined symbol", ...).
bool IsMissingFile(std::string_view error) {
  return error.find("No such file or directory") != std::string_view::npos;
}

}  // namespace

std::unique_ptr<DynamicLibrary> DynamicLibrary::Open(const std::vector<std::string>& candidates,
                                                     OpenFailure* failure) {
  OpenFailure result;
  for (const std::string& candidate : candidates) {
    if (void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      return std::unique_ptr<DynamicLibrary>(new DynamicLibrary(handle, candidate));
    }
    const char* error = dlerror();
    const std::string detail = error != nullptr ? error : "dlopen failed";
    // A present-but-broken library says more than any number of absent ones.
    if (!IsMissingFile(detail)) {
      result.not_found = false;
      result.detail = detail;
    } else if (result.not_found && result.detail.empty()) {
      result.detail = detail;
    }
  }
  if (failure != nullptr) *failure = std::move(result);
  return nullptr;
}

DynamicLibrary::~DynamicLibrary() { dlclose(handle_); }

void* DynamicLibrary::Symbol(const char* name) const { return dlsym(handle_, name); }

}  // namespace gpurm
