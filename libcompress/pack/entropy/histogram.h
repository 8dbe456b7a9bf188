// Stage 1 of the entropy coder: symbol counts, and the order-0 entropy they imply.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace modelpress::pack {

using Histogram = std::array<uint64_t, 256>;

// Occurrences of every byte value in `data`.
Histogram CountBytes(std::span<const uint8_t> data);

// Number of symbols with a nonzero count.
int DistinctSymbols(const Histogram& h);

// Order-0 (memoryless) entropy of the histogram's source, in bits for all
// symbols together: sum of -c * log2(c / total). 0 for fewer than 2 distinct symbols.
double EntropyBits(const Histogram& h);

// The same for a two-symbol source with `ones` of `total` events.
double BinaryEntropyBits(uint64_t ones, uint64_t total);

}  // namespace modelpress::pack
