#include "modelpress/sparsity.h"

#include <algorithm>
#include <cstring>
#include <atomic>

#include "modelpress/parallel.h"

namespace modelpress {
namespace {

// Zeros among elements [begin, end) of packed little-endian words of type W
// whose bits outside `magnitude` (the sign) are ignored.
template <class W>
int64_t CountZeroWords(const std::byte* data, size_t stride, int64_t begin, int64_t end, W magnitude) {
  int64_t zeros = 0;
  for (int64_t i = begin; i < end; ++i) {
    W w;
    std::memcpy(&w, data + static_cast<size_t>(i) * stride, sizeof(W));
    zeros += (w & magnitude) == 0;
  }
  return zeros;
}

}  // namespace

int64_t CountZeros(const TensorView& t) {
  const int64_t n = t.size();
  if (n == 0) return 0;
  const std::byte* data = t.bytes().empty() ? nullptr : t.bytes().data();
  // Fast paths for packed floats (sign ignored) and plain integers; the rest
  // go element by element through IsZero.
  auto count = [&](int64_t begin, int64_t end) -> int64_t {
    if (data != nullptr) {
      switch (t.dtype()) {
        case DType::kFloat32: return CountZeroWords<uint32_t>(data, 4, begin, end, 0x7fffffffu);
        case DType::kFloat16: case DType::kBfloat16: return CountZeroWords<uint16_t>(data, 2, begin, end, 0x7fffu);
        case DType::kFloat64: return CountZeroWords<uint64_t>(data, 8, begin, end, 0x7fffffffffffffffull);
        case DType::kInt8: case DType::kUint8: case DType::kBool: return CountZeroWords<uint8_t>(data, 1, begin, end, 0xffu);
        case DType::kInt32: case DType::kUint32: return CountZeroWords<uint32_t>(data, 4, begin, end, 0xffffffffu);
        case DType::kInt64: case DType::kUint64: return CountZeroWords<uint64_t>(data, 8, begin, end, ~uint64_t{0});
        default: break;
      }
    }
    int64_t zeros = 0;
    for (int64_t i = begin; i < end; ++i) zeros += t.IsZero(i) ? 1 : 0;
    return zeros;
  };
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (chunks == 1) return count(0, n);
  std::atomic<int64_t> total{0};
  ParallelFor(chunks, [&](int64_t c) { total += count(c * kChunk, std::min(n, (c + 1) * kChunk)); });
  return total;
}

Result<AxisSplit> SplitAtAxis(std::span<const int64_t> shape, int axis) {
  const int rank = static_cast<int>(shape.size());
  const int requested = axis;
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) {
    return InvalidArgument("axis " + std::to_string(requested) + " is out of range for shape " + ShapeToString(shape));
  }
  AxisSplit s;
  for (int d = 0; d < rank; ++d) {
    if (d < axis) s.outer *= shape[d];
    if (d > axis) s.inner *= shape[d];
  }
  s.length = shape[axis];
  return s;
}

NMCheck CheckNM(const TensorView& t, int axis, int n, int m) {
  NMCheck r;
  if (m <= 0 || n < 0 || n > m) {
    r.reason = "invalid N:M";
    return r;
  }
  auto split = SplitAtAxis(t.shape(), axis);
  if (!split.ok()) {
    r.reason = "no reduction axis";
    return r;
  }
  const AxisSplit s = *split;
  if (s.length % m != 0) {
    r.reason = "reduction length " + std::to_string(s.length) + " is not a multiple of " + std::to_string(m);
    return r;
  }
  r.applicable = true;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t g = 0; g < s.length; g += m) {
      for (int64_t i = 0; i < s.inner; ++i) {
        int nonzeros = 0;
        for (int64_t l = g; l < g + m; ++l) nonzeros += t.IsZero((o * s.length + l) * s.inner + i) ? 0 : 1;
        ++r.groups;
        r.violating += nonzeros > n ? 1 : 0;
      }
    }
  }
  return r;
}

}  // namespace modelpress
