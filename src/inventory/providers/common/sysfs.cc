#include "inventory/providers/common/sysfs.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace gpurm::sysfs {
namespace {

namespace fs = std::filesystem;

// Bus ids listed in one note; beyond this the note says how many more.
constexpr size_t kMaxListedBusIds = 8;

template <typename T>
std::optional<T> ParseWhole(std::string_view digits, int base) {
  T value{};
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return value;
}

bool IsAccelerator(uint32_t pci_class, uint32_t vendor) {
  const uint32_t base_and_sub = pci_class >> 8;  // The low byte is the programming interface.
  if (vendor == kVendorHuawei) return base_and_sub == 0x1200;
  const bool display = base_and_sub == 0x0300 || base_and_sub == 0x0302 || base_and_sub == 0x0380;
  return display && (vendor == kVendorNvidia || vendor == kVendorAmd || vendor == kVendorIntel);
}

}  // namespace

std::optional<std::string> ReadTrimmed(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  std::string content = text.str();
  const size_t begin = content.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return std::string();
  const size_t end = content.find_last_not_of(" \t\r\n");
  return content.substr(begin, end - begin + 1);
}

std::optional<int64_t> ReadInt(const fs::path& path) {
  const std::optional<std::string> text = ReadTrimmed(path);
  if (!text) return std::nullopt;
  return ParseWhole<int64_t>(*text, 10);
}

std::optional<uint32_t> ReadHex(const fs::path& path) {
  const std::optional<std::string> text = ReadTrimmed(path);
  if (!text) return std::nullopt;
  std::string_view digits = *text;
  if (digits.starts_with("0x") || digits.starts_with("0X")) digits.remove_prefix(2);
  return ParseWhole<uint32_t>(digits, 16);
}

std::vector<PciDevice> PciListing::OfVendor(uint32_t vendor) const {
  std::vector<PciDevice> out;
  for (const PciDevice& device : accelerators) {
    if (device.vendor == vendor) out.push_back(device);
  }
  return out;
}

PciListing ListPciAccelerators(const fs::path& root) {
  PciListing listing;
  listing.devices_dir = root / "sys" / "bus" / "pci" / "devices";
  fs::directory_iterator it(listing.devices_dir, listing.error);
  for (; !listing.error && it != fs::directory_iterator(); it.increment(listing.error)) {
    const fs::path dir = it->path();
    const std::optional<uint32_t> pci_class = ReadHex(dir / "class");
    const std::optional<uint32_t> vendor = ReadHex(dir / "vendor");
    if (!pci_class || !vendor || !IsAccelerator(*pci_class, *vendor)) continue;
    listing.accelerators.push_back(
        {dir.filename().string(), dir, *vendor, ReadHex(dir / "device").value_or(0)});
  }
  // The sysfs names sort in bus order: fixed-width hex domain:bus:device.function.
  std::sort(listing.accelerators.begin(), listing.accelerators.end(),
            [](const PciDevice& a, const PciDevice& b) { return a.bus_id < b.bus_id; });
  return listing;
}

std::string NormalizeBusId(std::string_view bus_id) {
  std::string lower(bus_id);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  // "domain:bus:device.function" with a domain of 4 or 8 hex digits.
  const size_t colon = lower.find(':');
  if (colon == std::string::npos || colon < 4 || lower.size() - colon != 8) return lower;
  const std::string_view domain = std::string_view{lower}.substr(0, colon);
  const std::optional<uint32_t> value = ParseWhole<uint32_t>(domain, 16);
  if (!value || *value > 0xffff) return lower;
  char head[5];
  std::snprintf(head, sizeof(head), "%04x", *value);
  return head + lower.substr(colon);
}

std::string BusIdList(const std::vector<PciDevice>& devices) {
  std::string out = "(";
  for (size_t i = 0; i < devices.size() && i < kMaxListedBusIds; ++i) {
    if (i > 0) out += ", ";
    out += devices[i].bus_id;
  }
  if (devices.size() > kMaxListedBusIds) {
    out += ", and " + std::to_string(devices.size() - kMaxListedBusIds) + " more";
  }
  return out + ")";
}

void ReadHwmon(const fs::path& device_dir, Gpu* gpu) {
  std::error_code error;
  fs::directory_iterator it(device_dir / "hwmon", error);
  for (; !error && it != fs::directory_iterator(); it.increment(error)) {
    const fs::path hwmon = it->path();
    if (const auto millidegrees = ReadInt(hwmon / "temp1_input")) {
      gpu->temperature_c = static_cast<double>(*millidegrees) / 1000.0;
    }
    auto microwatts = ReadInt(hwmon / "power1_average");
    if (!microwatts) microwatts = ReadInt(hwmon / "power1_input");
    if (microwatts) gpu->power_w = static_cast<double>(*microwatts) / 1e6;
    if (const auto cap = ReadInt(hwmon / "power1_cap"); cap && *cap > 0) {
      gpu->power_limit_w = static_cast<double>(*cap) / 1e6;
    }
    if (gpu->temperature_c || gpu->power_w) return;
  }
}

double PercentToRatio(std::optional<int64_t> percent) {
  if (!percent) return 0.0;
  return std::clamp(static_cast<double>(*percent) / 100.0, 0.0, 1.0);
}

}  // namespace gpurm::sysfs
