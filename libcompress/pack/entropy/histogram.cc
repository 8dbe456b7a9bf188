#include "entropy/histogram.h"

#include <cmath>

namespace modelpress::pack {

Histogram CountBytes(std::span<const uint8_t> data) {
  // Four interleaved tables break the store-to-load dependency between
  // neighbouring equal bytes (long runs of zeros are common in weights).
  std::array<std::array<uint64_t, 256>, 4> part{};
  size_t i = 0;
  for (; i + 4 <= data.size(); i += 4) {
    ++part[0][data[i]];
    ++part[1][data[i + 1]];
    ++part[2][data[i + 2]];
    ++part[3][data[i + 3]];
  }
  for (; i < data.size(); ++i) ++part[0][data[i]];
  Histogram h{};
  for (int s = 0; s < 256; ++s) h[s] = part[0][s] + part[1][s] + part[2][s] + part[3][s];
  return h;
}

int DistinctSymbols(const Histogram& h) {
  int n = 0;
  for (uint64_t c : h) n += c != 0;
  return n;
}

double EntropyBits(const Histogram& h) {
  uint64_t total = 0;
  for (uint64_t c : h) total += c;
  if (total == 0) return 0;
  double bits = 0;
  const double t = static_cast<double>(total);
  for (uint64_t c : h) {
    if (c != 0) bits -= static_cast<double>(c) * std::log2(static_cast<double>(c) / t);
  }
  return bits;
}

double BinaryEntropyBits(uint64_t ones, uint64_t total) {
  if (ones == 0 || ones >= total) return 0;
  const double p = static_cast<double>(ones) / static_cast<double>(total);
  return static_cast<double>(total) * -(p * std::log2(p) + (1 - p) * std::log2(1 - p));
}

}  // namespace modelpress::pack
