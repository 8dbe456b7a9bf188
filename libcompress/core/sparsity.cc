#include "modelpress/sparsity.h"

namespace modelpress {

int64_t CountZeros(const TensorView& t) {
  int64_t zeros = 0;
  for (int64_t i = 0; i < t.size(); ++i) zeros += t.IsZero(i) ? 1 : 0;
  return zeros;
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
