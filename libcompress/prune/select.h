// Exact, deterministic selection of the k smallest magnitudes over one or
// more tensors, in O(1) extra memory (internal to libcompress/prune).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "modelpress/tensor.h"

namespace modelpress::prune_detail {

// One tensor taking part in a selection, and where its decisions go.
struct Segment {
  TensorView weights;
  std::span<const uint8_t> previous_keep;  // optional: 0 forces the element pruned
  uint8_t* keep_out = nullptr;             // optional: receives 1 (kept) / 0 (pruned) per element
  std::byte* zero_out = nullptr;           // optional: packed writable bytes; pruned elements are zeroed
};

// The magnitude of an element as an order-preserving integer: the bits of
// |float32(x)|. NaN sorts above infinity, so NaNs are kept.
uint32_t MagnitudeKey(DType dtype, uint64_t bits);

// Prunes exactly max(k, forced) elements of all segments together, where
// forced counts elements already zero or pruned by previous_keep: the smallest
// keys first, ties by segment order then index. Returns the number pruned.
int64_t PruneSmallest(std::span<Segment> segments, int64_t k, int threads);

}  // namespace modelpress::prune_detail
