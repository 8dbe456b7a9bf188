// Exact, deterministic selection of the k smallest magnitudes over one or
// more tensors, in O(1) extra memory per element (internal to libcompress/prune).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "modelpress/tensor.h"

namespace modelpress::prune_detail {

// One tensor taking part in a selection, and where its decisions go. A
// segment with neither keep_out nor zero_out is only counted; its zeroing
// can be applied later with a Selection.
struct Segment {
  TensorView weights;
  std::span<const uint8_t> previous_keep;  // optional: 0 forces the element pruned
  uint8_t* keep_out = nullptr;             // optional: receives 1 (kept) / 0 (pruned) per element
  std::byte* zero_out = nullptr;           // optional: packed writable bytes; pruned elements are zeroed
  int64_t zero_keys = 0;                   // out: elements of magnitude 0 (or forced) before pruning
  int64_t pruned = 0;                      // out: elements pruned, those already zero or forced included
};

// The magnitude of an element as an order-preserving integer: the bits of
// |float32(x)|. NaN sorts above infinity, so NaNs are kept.
uint32_t MagnitudeKey(DType dtype, uint64_t bits);

// What PruneSmallest decided, kept so that segments it only counted can be
// zeroed later, piece by piece (for example while they are written to a file).
class Selection {
 public:
  // Writes elements [first, first + n) of packed float32 segment `segment`
  // from `in` to `out` (which may be the same memory) with the pruned ones
  // zeroed. The segment's weights must still hold their original values.
  void ZeroFloat32(size_t segment, int64_t first, const uint32_t* in, uint32_t* out, int64_t n) const;

 private:
  friend int64_t PruneSmallest(std::span<Segment>, int64_t, int, std::shared_ptr<Selection>*);
  struct Chunk {
    size_t segment;
    int64_t begin, end;
  };
  std::vector<TensorView> weights_;       // per segment
  std::vector<size_t> first_chunk_;       // per segment, then the chunk count
  std::vector<Chunk> chunks_;
  std::vector<int64_t> tie_start_;        // ties pruned before each chunk, then the total
  uint32_t threshold_ = 0;                // keys below it are pruned
  int64_t ties_ = 0;                      // keys equal to it pruned, first in order
};

// Prunes exactly max(k, forced) elements of all segments together, where
// forced counts elements already zero or pruned by previous_keep: the smallest
// keys first, ties by segment order then index. Fills every segment's
// zero_keys and pruned; returns the number pruned. When `selection` is given
// it receives the decision for later use with Selection::ZeroFloat32.
int64_t PruneSmallest(std::span<Segment> segments, int64_t k, int threads,
                      std::shared_ptr<Selection>* selection = nullptr);

}  // namespace modelpress::prune_detail
