// DynamicLibrary: a vendor management library opened at run time with dlopen,
// so one gpurm binary runs on machines with or without that library. Symbols
// are probed by name, newest version first ("nvmlInit_v2", then "nvmlInit").
#ifndef GPURM_INVENTORY_PROVIDERS_COMMON_DYNAMIC_LIBRARY_H_
#define GPURM_INVENTORY_PROVIDERS_COMMON_DYNAMIC_LIBRARY_H_

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace gpurm {

// Thread-compatible. Closing (destruction) unloads the library once no other
// handle to it is open: function pointers taken from it must not outlive it.
class DynamicLibrary {
 public:
  // How the last Open went when no candidate could be loaded.
  struct OpenFailure {
    // True when no candidate exists at all (the vendor's driver is not
    // installed); false when one exists but failed to load (wrong
    // architecture, missing dependency): that is a broken installation.
    bool not_found = true;
    std::string detail;  // dlerror() of the most telling candidate.
  };

  // Opens the first candidate that loads (RTLD_NOW | RTLD_LOCAL). A candidate
  // is a bare soname ("libnvidia-ml.so.1", searched like the dynamic linker
  // does) or a path. Returns nullptr and fills `failure` when none loads.
  static std::unique_ptr<DynamicLibrary> Open(const std::vector<std::string>& candidates,
                                              OpenFailure* failure);

  ~DynamicLibrary();
  DynamicLibrary(const DynamicLibrary&) = delete;
  DynamicLibrary& operator=(const DynamicLibrary&) = delete;

  // The candidate that was opened, as given.
  const std::string& name() const { return name_; }

  // The first of `names` the library exports, cast to the function pointer
  // type F; nullptr when it exports none of them. `found` (optional) gets the
  // name that was found.
  template <typename F>
  F Find(std::initializer_list<const char*> names, std::string* found = nullptr) const {
    for (const char* symbol : names) {
      if (void* address = Symbol(symbol)) {
        if (found != nullptr) *found = symbol;
        return reinterpret_cast<F>(address);
      }
    }
    return nullptr;
  }

 private:
  DynamicLibrary(void* handle, std::string name) : handle_(handle), name_(std::move(name)) {}
  void* Symbol(const char* name) const;

  void* handle_;
  std::string name_;
};

}  // namespace gpurm

#endif  // GPURM_INVENTORY_PROVIDERS_COMMON_DYNAMIC_LIBRARY_H_
