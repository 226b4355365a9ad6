#include "core/gpu_model.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

namespace gpurm {
namespace {

// How a name is read
// ------------------
// A name is split into upper-case alphanumeric words ("NVIDIA A100-SXM4-80GB"
// -> NVIDIA A100 SXM4 80GB). Everything from a "MIG" word on is a MIG profile.
// The rest is normalised (see Normalise) and every word must then be
// accounted for: exactly one model word (a family's canonical name or an
// alias), vendor and filler words, form-factor/variant words and at most one
// memory size. A word that is none of these ("Laptop", "D", "Atlas") makes the
// whole name unknown: a name we only half understand is not guessed at.
// Model words are matched whole, so "A1000" is not "A100" and "T40" is not "T4".

// A model family: the canonical name requests match on and what all its
// devices share.
struct Family {
  std::string_view canonical;
  Vendor vendor;
  bool bf16;
  // Memory in GB for a name that states none. 0 when the family ships in
  // several sizes and the name alone cannot tell (A100: 40 or 80 GB): such a
  // device gets its size from gpu_memory_specs or stays unknown.
  double spec_gb;
};

// clang-format off
constexpr auto kFamilies = std::to_array<Family>({
    // NVIDIA, memory from NVIDIA's product data sheets. bf16 from Ampere on.
    {"K80",            Vendor::kNvidia, false, 12},   // Per GPU; a K80 board has two.
    {"P40",            Vendor::kNvidia, false, 24},
    {"P100",           Vendor::kNvidia, false, 0},    // 12 or 16 GB.
    {"V100",           Vendor::kNvidia, false, 0},    // 16 or 32 GB, in every form factor.
    {"V100S",          Vendor::kNvidia, false, 32},   // A product of its own, not a V100.
    {"T4",             Vendor::kNvidia, false, 16},
    {"RTX6000",        Vendor::kNvidia, false, 24},   // Quadro RTX 6000 (Turing).
    {"RTX8000",        Vendor::kNvidia, false, 48},   // Quadro RTX 8000 (Turing).
    {"A10",            Vendor::kNvidia, true,  24},
    {"A10G",           Vendor::kNvidia, true,  24},   // AWS's A10 variant.
    {"A30",            Vendor::kNvidia, true,  24},
    {"A40",            Vendor::kNvidia, true,  48},
    {"A100",           Vendor::kNvidia, true,  0},    // 40 or 80 GB, PCIe and SXM4 alike.
    {"A800",           Vendor::kNvidia, true,  0},    // 40 or 80 GB.
    {"A6000",          Vendor::kNvidia, true,  48},   // RTX A6000.
    {"RTX3090",        Vendor::kNvidia, true,  24},
    {"RTX3090TI",      Vendor::kNvidia, true,  24},
    {"RTX4060",        Vendor::kNvidia, true,  8},
    {"RTX4060TI",      Vendor::kNvidia, true,  0},    // 8 or 16 GB.
    {"RTX4070",        Vendor::kNvidia, true,  12},
    {"RTX4070SUPER",   Vendor::kNvidia, true,  12},
    {"RTX4070TI",      Vendor::kNvidia, true,  12},
    {"RTX4070TISUPER", Vendor::kNvidia, true,  16},
    {"RTX4080",        Vendor::kNvidia, true,  16},
    {"RTX4080SUPER",   Vendor::kNvidia, true,  16},
    {"RTX4090",        Vendor::kNvidia, true,  24},
    {"RTX4090D",       Vendor::kNvidia, true,  24},   // The RTX 4090 for China: fewer SMs.
    {"RTX5050",        Vendor::kNvidia, true,  8},
    {"RTX5060",        Vendor::kNvidia, true,  8},
    {"RTX5060TI",      Vendor::kNvidia, true,  0},    // 8 or 16 GB.
    {"RTX5070",        Vendor::kNvidia, true,  12},
    {"RTX5070TI",      Vendor::kNvidia, true,  16},
    {"RTX5080",        Vendor::kNvidia, true,  16},
    {"RTX5090",        Vendor::kNvidia, true,  32},
    {"RTX5090D",       Vendor::kNvidia, true,  32},
    {"RTX6000ADA",     Vendor::kNvidia, true,  48},
    {"RTXPRO4000",     Vendor::kNvidia, true,  24},   // RTX PRO 4000 Blackwell.
    {"RTXPRO4500",     Vendor::kNvidia, true,  32},   // RTX PRO 4500 Blackwell.
    {"RTXPRO5000",     Vendor::kNvidia, true,  0},    // RTX PRO 5000 Blackwell: 48 or 72 GB.
    {"RTXPRO6000",     Vendor::kNvidia, true,  96},   // RTX PRO 6000 Blackwell, every edition.
    {"L4",             Vendor::kNvidia, true,  24},
    {"L20",            Vendor::kNvidia, true,  48},
    {"L40",            Vendor::kNvidia, true,  48},
    {"L40S",           Vendor::kNvidia, true,  48},
    {"H20",            Vendor::kNvidia, true,  96},
    {"H100",           Vendor::kNvidia, true,  80},   // PCIe and SXM; NVL is an alias below.
    {"H800",           Vendor::kNvidia, true,  80},
    {"H200",           Vendor::kNvidia, true,  141},  // SXM and NVL.
    {"GH200",          Vendor::kNvidia, true,  0},    // 96 GB HBM3 or 144 GB HBM3e.
    {"B100",           Vendor::kNvidia, true,  192},
    {"B200",           Vendor::kNvidia, true,  180},  // DGX/HGX B200: 1,440 GB for 8 GPUs.
    {"GB200",          Vendor::kNvidia, true,  186},  // Per GPU: 372 GB per superchip of two.
    {"B300",           Vendor::kNvidia, true,  288},  // Blackwell Ultra.
    {"GB300",          Vendor::kNvidia, true,  288},
    // AMD, memory from AMD's data sheets. bf16 from MI200 on. An MI250/MI250X
    // shows up as two devices (one per GCD) of 64 GB each, and memory here is
    // per device.
    {"MI100",          Vendor::kAmd,    false, 32},
    {"MI210",          Vendor::kAmd,    true,  64},
    {"MI250",          Vendor::kAmd,    true,  64},
    {"MI250X",         Vendor::kAmd,    true,  64},
    {"MI300A",         Vendor::kAmd,    true,  128},  // APU: memory shared with its CPU cores.
    {"MI300X",         Vendor::kAmd,    true,  192},
    {"MI325X",         Vendor::kAmd,    true,  256},
    {"MI350X",         Vendor::kAmd,    true,  288},
    {"MI355X",         Vendor::kAmd,    true,  288},
    {"W7800",          Vendor::kAmd,    true,  0},    // Radeon PRO W7800: 32 or 48 GB.
    {"W7900",          Vendor::kAmd,    true,  48},   // Radeon PRO W7900.
    // Intel, memory from Intel's data sheets. bf16 on Max (Ponte Vecchio) and
    // Battlemage; Flex is not counted on for it.
    {"MAX1100",        Vendor::kIntel,  true,  48},
    {"MAX1550",        Vendor::kIntel,  true,  128},  // Whole card, as xpu-smi reports it.
    {"FLEX170",        Vendor::kIntel,  false, 16},
    {"B580",           Vendor::kIntel,  true,  12},   // Arc B580.
    {"B60",            Vendor::kIntel,  true,  24},   // Arc Pro B60.
    // Huawei Ascend. bf16 from 910B on.
    {"ASCEND910",      Vendor::kHuawei, false, 32},
    {"ASCEND910B",     Vendor::kHuawei, true,  64},
    {"ASCEND310P",     Vendor::kHuawei, false, 0},    // 24 or 48 GB per chip, by card.
});
// clang-format on

// A spelling of a family other than its canonical name.
struct Alias {
  std::string_view word;
  std::string_view canonical;
  // When not empty, the alias applies only if this word is in the name too;
  // the word then is (part of) the variant and not read as anything else.
  std::string_view qualifier;
  // Memory in GB that this SKU always has. It counts as stated by the name,
  // so gpu_memory_specs (keyed by family) does not override it. 0 = none.
  double sku_gb;
  // The word names one variant of the family (Ascend's 910B4), not just
  // another spelling of it: it becomes (part of) the variant, so a request
  // for it matches that variant only.
  bool names_variant;
};

// Ascend words are listed without the "ASCEND" prefix, which Normalise strips.
// "910B" means the 2023 Ascend 910B family (npu-smi: 910B1..910B4), as users
// and Kubernetes labels use it today, not the first generation's "910B" bin.
// "PRO6000" is "RTX PRO 6000" (Normalise joins "PRO 6000"; RTX is a filler).
// clang-format off
constexpr auto kAliases = std::to_array<Alias>({
    {"RTXA6000",    "A6000",      "",      0,  false},
    {"PRO4000",     "RTXPRO4000", "",      0,  false},
    {"PRO4500",     "RTXPRO4500", "",      0,  false},
    {"PRO5000",     "RTXPRO5000", "",      0,  false},
    {"PRO6000",     "RTXPRO6000", "",      0,  false},
    {"H100",        "H100",       "NVL",   94, false},
    {"GH200",       "GH200",      "480GB", 96, false},  // "480GB" is the Grace CPU's memory.
    {"910",         "ASCEND910",  "",      0,  false},
    {"910A",        "ASCEND910",  "",      0,  true},
    {"910PROA",     "ASCEND910",  "",      0,  true},
    {"910PROB",     "ASCEND910",  "",      0,  true},
    {"910PREMIUMA", "ASCEND910",  "",      0,  true},
    {"910B",        "ASCEND910B", "",      0,  false},
    {"910B1",       "ASCEND910B", "",      0,  true},
    {"910B2",       "ASCEND910B", "",      0,  true},
    {"910B2C",      "ASCEND910B", "",      0,  true},
    {"910B3",       "ASCEND910B", "",      0,  true},
    {"910B4",       "ASCEND910B", "",      32, true},
    {"310P",        "ASCEND310P", "",      0,  false},
    {"310P1",       "ASCEND310P", "",      0,  true},
    {"310P3",       "ASCEND310P", "",      0,  true},
});
// clang-format on

// Words that carry no model information. Some name a vendor: a name whose
// vendor words contradict its model's vendor is not recognised.
struct FillerWord {
  std::string_view word;
  Vendor vendor;
};

// clang-format off
constexpr auto kFillerWords = std::to_array<FillerWord>({
    {"NVIDIA", Vendor::kNvidia},  {"TESLA", Vendor::kNvidia},  {"GEFORCE", Vendor::kNvidia},
    {"QUADRO", Vendor::kNvidia},  {"RTX", Vendor::kNvidia},    {"BLACKWELL", Vendor::kNvidia},
    {"AMD", Vendor::kAmd},        {"INSTINCT", Vendor::kAmd},  {"RADEON", Vendor::kAmd},
    {"INTEL", Vendor::kIntel},    {"ARC", Vendor::kIntel},     {"HUAWEI", Vendor::kHuawei},
    {"ASCEND", Vendor::kHuawei},
    // Vendor-neutral: "Intel(R) Data Center GPU", "RTX 6000 Ada Generation",
    // "Radeon PRO W7900", "RTX PRO 6000 Blackwell Server Edition".
    {"R", Vendor::kUnknown},      {"TM", Vendor::kUnknown},    {"DATA", Vendor::kUnknown},
    {"CENTER", Vendor::kUnknown}, {"GPU", Vendor::kUnknown},   {"NPU", Vendor::kUnknown},
    {"GENERATION", Vendor::kUnknown}, {"PRO", Vendor::kUnknown}, {"EDITION", Vendor::kUnknown},
    {"GRAPHICS", Vendor::kUnknown},
});

// Form factor, memory type and deployment words, kept as the variant.
// "SHARED" is what GPU Feature Discovery appends under time-slicing.
constexpr auto kVariantWords = std::to_array<std::string_view>({
    "SXM", "SXM2", "SXM3", "SXM4", "SXM5", "SXM6", "PCIE", "NVL", "FHHL", "DGXS", "LS",
    "HBM2", "HBM2E", "HBM3", "HBM3E", "OAM", "SHARED", "WORKSTATION", "SERVER", "MAXQ",
});
// clang-format on

// Series words written apart from their number ("RTX 4090", "Max 1550",
// "RTX PRO 6000").
constexpr auto kSeriesPrefixes = std::to_array<std::string_view>({"RTX", "MAX", "FLEX", "PRO"});
// Suffixes written apart from their model ("RTX 3090 Ti", "RTX 6000 Ada",
// "RTX 4090 D", "RTX 4080 SUPER").
constexpr auto kModelSuffixes = std::to_array<std::string_view>({"TI", "ADA", "D", "SUPER"});

template <typename Container, typename T>
bool Contains(const Container& container, const T& value) {
  for (const auto& element : container) {
    if (element == value) return true;
  }
  return false;
}

bool IsAlnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
char ToUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// A maximal run of ASCII letters and digits, upper-cased, with its position.
struct Word {
  std::string text;
  size_t begin;
  size_t end;
};

std::vector<Word> SplitWords(std::string_view text) {
  std::vector<Word> words;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsAlnum(text[i])) {
      ++i;
      continue;
    }
    Word word{"", i, i};
    while (i < text.size() && IsAlnum(text[i])) word.text += ToUpper(text[i++]);
    word.end = i;
    words.push_back(std::move(word));
  }
  return words;
}

// "80GB", "16G" -> 80, 16 (GB as vendors label cards, i.e. GiB). nullopt for
// anything else.
std::optional<double> ParseSizeWord(std::string_view word) {
  const size_t unit = word.find('G');
  if (unit == std::string_view::npos || unit == 0) return std::nullopt;
  const std::string_view suffix = word.substr(unit);
  if (suffix != "G" && suffix != "GB") return std::nullopt;
  const std::string_view digits = word.substr(0, unit);
  if (!AllDigits(digits) || digits.size() > 6) return std::nullopt;
  int value = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (value <= 0) return std::nullopt;
  return static_cast<double>(value);
}

// Joins words that vendors and users write apart or together, so that both
// spellings give the same word: "RTX 4090" -> RTX4090, "RTX 3090 Ti" ->
// RTX3090TI, "80 GB" -> 80GB, "Ascend910B" -> 910B.
std::vector<std::string> Normalise(std::vector<Word> words) {
  std::vector<std::string> out;
  for (Word& word : words) {
    std::string text = std::move(word.text);
    constexpr std::string_view kAscend = "ASCEND";
    if (text.size() > kAscend.size() && text.starts_with(kAscend) &&
        IsDigit(text[kAscend.size()])) {
      text.erase(0, kAscend.size());
    }
    if (!out.empty()) {
      std::string& previous = out.back();
      const bool series_number = Contains(kSeriesPrefixes, previous) && IsDigit(text[0]);
      const bool model_suffix = Contains(kModelSuffixes, text);
      const bool size_unit = AllDigits(previous) && (text == "G" || text == "GB");
      const bool max_q = previous == "MAX" && text == "Q";  // "Max-Q", a variant.
      if (series_number || model_suffix || size_unit || max_q) {
        previous += text;
        continue;
      }
    }
    out.push_back(std::move(text));
  }
  return out;
}

const Family* FindFamily(std::string_view canonical) {
  for (const Family& family : kFamilies) {
    if (family.canonical == canonical) return &family;
  }
  return nullptr;
}

bool IsModelWord(std::string_view word) {
  if (FindFamily(word) != nullptr) return true;
  for (const Alias& alias : kAliases) {
    if (alias.word == word) return true;
  }
  return false;
}

// What one product text says. family is null when it was not recognised.
struct Reading {
  const Family* family = nullptr;
  std::string variant;
  // Memory the name states (a size word, a SKU's fixed size or, for a MIG
  // device, its profile's size).
  std::optional<double> stated_gb;
  // The size word alone ("40GB"), also for a MIG device (the whole GPU's).
  std::optional<double> size_word_gb;
  bool mig = false;
  // The vendor its vendor words name, even when the model is not recognised;
  // kUnknown when there are none or they disagree.
  Vendor vendor_word = Vendor::kUnknown;
};

enum class Role { kUnclaimed, kFiller, kModel, kVariant, kSize };

// A MIG device ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", as GPU Feature Discovery
// labels it) is a slice: its memory is the profile's ("1g.5gb": 5 GB), never
// the whole GPU's, and nullopt when the profile cannot be read.
struct MigProfile {
  std::string variant;  // "MIG-" and the profile as NVIDIA spells it ("1g.5gb").
  std::optional<double> gb;
};

// Removes everything from a "MIG" word on from `words` and reads it.
std::optional<MigProfile> TakeMigProfile(std::string_view text, std::vector<Word>* words) {
  size_t mig = 0;
  while (mig < words->size() && (*words)[mig].text != "MIG") ++mig;
  if (mig == words->size()) return std::nullopt;
  MigProfile profile{"MIG", std::nullopt};
  if (mig + 1 < words->size()) {
    profile.variant += '-';
    for (size_t c = (*words)[mig + 1].begin; c < words->back().end; ++c) {
      profile.variant += ToLower(text[c]);
    }
  }
  // "<compute>g.<memory>gb", optionally followed by "+me" and the like.
  if (mig + 2 < words->size() && ParseSizeWord((*words)[mig + 1].text).has_value()) {
    profile.gb = ParseSizeWord((*words)[mig + 2].text);
  }
  words->resize(mig);
  return profile;
}

// Claims the filler words. Returns the vendor they name (kUnknown when none
// does), or nullopt when they contradict each other.
std::optional<Vendor> ClaimFillers(const std::vector<std::string>& tokens,
                                   std::vector<Role>* roles) {
  Vendor named = Vendor::kUnknown;
  bool contradictory = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    for (const FillerWord& filler : kFillerWords) {
      if (filler.word != tokens[i]) continue;
      (*roles)[i] = Role::kFiller;
      if (filler.vendor != Vendor::kUnknown) {
        contradictory = contradictory || (named != Vendor::kUnknown && named != filler.vendor);
        named = filler.vendor;
      }
      break;
    }
  }
  if (contradictory) return std::nullopt;
  return named;
}

// The alias `model_word` stands for, nullptr when it is a canonical name with
// no alias applying. A qualified alias (H100 + NVL) wins over a plain one and
// claims its qualifier as a variant word.
const Alias* ChooseAlias(std::string_view model_word, const std::vector<std::string>& tokens,
                         std::vector<Role>* roles) {
  const Alias* plain = nullptr;
  for (const Alias& alias : kAliases) {
    if (alias.word != model_word) continue;
    if (alias.qualifier.empty()) {
      if (plain == nullptr) plain = &alias;
      continue;
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      if ((*roles)[i] == Role::kUnclaimed && tokens[i] == alias.qualifier) {
        (*roles)[i] = Role::kVariant;
        return &alias;
      }
    }
  }
  return plain;
}

Reading Read(std::string_view text) {
  Reading reading;
  std::vector<Word> words = SplitWords(text);
  const std::optional<MigProfile> mig = TakeMigProfile(text, &words);
  const std::vector<std::string> tokens = Normalise(std::move(words));
  std::vector<Role> roles(tokens.size(), Role::kUnclaimed);
  const std::optional<Vendor> named_vendor = ClaimFillers(tokens, &roles);
  reading.vendor_word = named_vendor.value_or(Vendor::kUnknown);

  // The first model word. A second one ("MI250X/MI250") stays unclaimed and
  // so makes the name unknown below, as any unknown word does.
  size_t model = 0;
  while (model < tokens.size() &&
         (roles[model] != Role::kUnclaimed || !IsModelWord(tokens[model]))) {
    ++model;
  }
  if (model == tokens.size()) return reading;
  roles[model] = Role::kModel;
  const Alias* alias = ChooseAlias(tokens[model], tokens, &roles);
  const Family* family = FindFamily(alias != nullptr ? alias->canonical : tokens[model]);
  if (family == nullptr || !named_vendor.has_value() ||
      (*named_vendor != Vendor::kUnknown && *named_vendor != family->vendor)) {
    return reading;
  }

  std::optional<double> size_word_gb;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (roles[i] != Role::kUnclaimed) continue;
    if (Contains(kVariantWords, tokens[i])) {
      roles[i] = Role::kVariant;
      continue;
    }
    const std::optional<double> size = ParseSizeWord(tokens[i]);
    if (!size.has_value() || size_word_gb.has_value()) return reading;  // An unknown word.
    roles[i] = Role::kSize;
    size_word_gb = size;
  }

  if (alias != nullptr && alias->names_variant) reading.variant = alias->word;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (roles[i] != Role::kVariant) continue;
    if (!reading.variant.empty()) reading.variant += '-';
    reading.variant += tokens[i];
  }
  reading.size_word_gb = size_word_gb;
  if (mig.has_value()) {
    if (!reading.variant.empty()) reading.variant += '-';
    reading.variant += mig->variant;
    reading.stated_gb = mig->gb;  // The size word, if any, is the whole GPU's.
  } else if (size_word_gb.has_value()) {
    reading.stated_gb = size_word_gb;
  } else if (alias != nullptr && alias->sku_gb > 0) {
    reading.stated_gb = alias->sku_gb;
  }
  reading.mig = mig.has_value();
  reading.family = family;
  return reading;
}

// Reads a whole name. Brackets are tried when the name as a whole is not
// recognised, because rocm-smi and lspci put the marketing name there
// ("Arcturus GL-XL [AMD Instinct MI100]", "GH100 [H200 SXM 141GB] [10de:2335]").
// vendor_word always comes from the whole name.
Reading ReadName(std::string_view name) {
  Reading reading = Read(name);
  const Vendor vendor_word = reading.vendor_word;
  for (size_t open = name.find('['); reading.family == nullptr && open != std::string_view::npos;
       open = name.find('[', open + 1)) {
    const size_t close = name.find(']', open);
    if (close == std::string_view::npos) break;
    reading = Read(name.substr(open + 1, close - open - 1));
  }
  reading.vendor_word = vendor_word;
  return reading;
}

// The configured size for `key`: its own entry, else the entry whose key
// canonicalises the same way ("a100" or "A100-80GB" for "A100"). Entries of
// 0 GB or less are ignored.
std::optional<double> ConfiguredGb(const GpuMemorySpecs& specs, const std::string& key) {
  if (const auto it = specs.find(key); it != specs.end() && it->second > 0) return it->second;
  const std::string canonical_key = CanonicalGpuType(key);
  for (const auto& [spec_key, gb] : specs) {
    if (gb > 0 && CanonicalGpuType(spec_key) == canonical_key) return gb;
  }
  return std::nullopt;
}

}  // namespace

const char* VendorName(Vendor vendor) {
  switch (vendor) {
    case Vendor::kNvidia:
      return "nvidia";
    case Vendor::kAmd:
      return "amd";
    case Vendor::kIntel:
      return "intel";
    case Vendor::kHuawei:
      return "huawei";
    case Vendor::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::optional<Vendor> ParseVendor(std::string_view name) {
  std::string lower;
  for (char c : name) lower += ToLower(c);
  for (Vendor vendor :
       {Vendor::kNvidia, Vendor::kAmd, Vendor::kIntel, Vendor::kHuawei, Vendor::kUnknown}) {
    if (lower == VendorName(vendor)) return vendor;
  }
  if (lower == "ascend" || lower == "npu") return Vendor::kHuawei;
  return std::nullopt;
}

// Memory precedence: the name's own statement (size word, fixed-size SKU, MIG
// profile) > gpu_memory_specs for the family > the family's built-in spec.
GpuModel ParseGpuModel(std::string_view name, const GpuMemorySpecs& memory_specs) {
  GpuModel model;
  model.raw_name = std::string(name);
  Reading reading = ReadName(name);
  if (reading.family == nullptr) {
    model.vendor = reading.vendor_word;
    model.memory_gb = ConfiguredGb(memory_specs, model.raw_name);
    return model;
  }
  const Family& family = *reading.family;
  model.canonical = std::string(family.canonical);
  model.variant = std::move(reading.variant);
  model.vendor = family.vendor;
  model.supports_bf16 = family.bf16;
  if (reading.stated_gb.has_value() || reading.mig) {
    model.memory_gb = reading.stated_gb;
  } else if (const std::optional<double> configured = ConfiguredGb(memory_specs, model.canonical)) {
    model.memory_gb = configured;
  } else if (family.spec_gb > 0) {
    model.memory_gb = family.spec_gb;
  }
  return model;
}

std::string CanonicalGpuType(std::string_view user_type) {
  const Reading reading = ReadName(user_type);
  if (reading.family != nullptr) return std::string(reading.family->canonical);
  std::string out;
  for (char c : user_type) {
    if (IsAlnum(c)) out += ToUpper(c);
  }
  // Stripping can turn an unrecognised spelling into a recognised one
  // ("A-scend 310P3" -> "ASCEND310P3"); answer that family, so the result is
  // its own canonical form (CanonicalGpuType is idempotent).
  const Reading stripped = ReadName(out);
  if (stripped.family != nullptr) return std::string(stripped.family->canonical);
  return out;
}

namespace {

std::vector<std::string> SplitVariant(std::string_view variant) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < variant.size()) {
    size_t end = variant.find('-', start);
    if (end == std::string_view::npos) end = variant.size();
    if (end > start) words.emplace_back(variant.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

}  // namespace

GpuTypePattern::GpuTypePattern(std::string_view requested) : family_(CanonicalGpuType(requested)) {
  const Reading reading = ReadName(requested);
  if (reading.family == nullptr) return;
  variant_words_ = SplitVariant(reading.variant);
  // A MIG profile names its slice's size; a size word next to it is the
  // whole GPU's, which the device (a slice) does not report.
  if (!reading.mig) memory_gb_ = reading.size_word_gb;
}

bool GpuTypePattern::Matches(const GpuModel& model, double device_memory_gb) const {
  const std::string have = model.known() ? model.canonical : CanonicalGpuType(model.raw_name);
  if (have != family_) return false;
  if (!variant_words_.empty()) {
    const std::vector<std::string> device_words = SplitVariant(model.variant);
    for (const std::string& word : variant_words_) {
      if (!Contains(device_words, word)) return false;
    }
  }
  if (memory_gb_.has_value()) {
    const double have_gb = device_memory_gb > 0 ? device_memory_gb : model.memory_gb.value_or(0);
    if (have_gb <= 0) return false;  // Cannot tell, so not the size asked for.
    if (std::abs(have_gb - *memory_gb_) > *memory_gb_ * kLabelledSizeTolerance) return false;
  }
  return true;
}

}  // namespace gpurm
