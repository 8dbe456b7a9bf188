// Mask computation on plain tensors, and sparsity schedules.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "modelpress/prune.h"
#include "modelpress/sparsity.h"
#include "prune/common.h"
#include "prune/select.h"

namespace modelpress {

Status CheckSparsity(double sparsity) {
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    return InvalidArgument("sparsity " + std::to_string(sparsity) + " is outside [0, 1)");
  }
  return Status::Ok();
}

int64_t TargetCount(double sparsity, int64_t n) {
  // A decimal sparsity is rarely exact in binary (0.7 is 0.69999999999999996),
  // so a product within a relative 1e-9 of an integer counts as that integer.
  const long double x = static_cast<long double>(sparsity) * static_cast<long double>(n);
  const long double nearest = std::round(x);
  const long double k = std::fabs(x - nearest) <= 1e-9L * std::max<long double>(1.0L, x) ? nearest : std::floor(x);
  return std::min<int64_t>(n, static_cast<int64_t>(k));
}

namespace {

Status CheckMaskInput(const MaskInput& in, size_t keep_size) {
  if (DTypeSize(in.weights.dtype()) == 0) return InvalidArgument("cannot prune " + DTypeName(in.weights.dtype()) + " tensors");
  if (keep_size != static_cast<size_t>(in.weights.size())) {
    return InvalidArgument("mask has " + std::to_string(keep_size) + " elements for a tensor of " +
                           std::to_string(in.weights.size()));
  }
  if (!in.previous_keep.empty() && in.previous_keep.size() != static_cast<size_t>(in.weights.size())) {
    return InvalidArgument("previous mask has " + std::to_string(in.previous_keep.size()) + " elements for a tensor of " +
                           std::to_string(in.weights.size()));
  }
  return Status::Ok();
}

}  // namespace

Status UnstructuredMask(const MaskInput& input, double sparsity, std::span<uint8_t> keep, int threads) {
  return GlobalMasks(std::span(&input, 1), sparsity, std::span(&keep, 1), threads);
}

Status GlobalMasks(std::span<const MaskInput> inputs, double sparsity, std::span<const std::span<uint8_t>> keeps,
                   int threads) {
  MP_RETURN_IF_ERROR(CheckSparsity(sparsity));
  if (inputs.size() != keeps.size()) return InvalidArgument("one mask is needed per tensor");
  std::vector<prune_detail::Segment> segments;
  int64_t total = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    MP_RETURN_IF_ERROR(CheckMaskInput(inputs[i], keeps[i].size()));
    segments.push_back({inputs[i].weights, inputs[i].previous_keep, keeps[i].data(), nullptr});
    total += inputs[i].weights.size();
  }
  prune_detail::PruneSmallest(segments, TargetCount(sparsity, total), threads);
  return Status::Ok();
}

Status NMMask(const MaskInput& input, int reduction_axis, int n, int m, std::span<uint8_t> keep) {
  if (m <= 0 || n < 0 || n > m) {
    return InvalidArgument("N:M needs 0 <= N <= M and M > 0 (got " + std::to_string(n) + ":" + std::to_string(m) + ")");
  }
  if (m > 64) return InvalidArgument("N:M groups larger than 64 are not supported (M = " + std::to_string(m) + ")");
  MP_RETURN_IF_ERROR(CheckMaskInput(input, keep.size()));
  MP_ASSIGN_OR_RETURN(const AxisSplit s, SplitAtAxis(input.weights.shape(), reduction_axis));
  if (s.length % m != 0) {
    return InvalidArgument("reduction axis length " + std::to_string(s.length) + " is not a multiple of M = " +
                           std::to_string(m));
  }
  const TensorView& w = input.weights;
  const bool forced = !input.previous_keep.empty();
  std::array<std::pair<uint32_t, int>, 64> group;
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t g = 0; g < s.length; g += m) {
      for (int64_t i = 0; i < s.inner; ++i) {
        for (int j = 0; j < m; ++j) {
          const int64_t idx = (o * s.length + g + j) * s.inner + i;
          const uint32_t key =
              forced && input.previous_keep[idx] == 0 ? 0u : prune_detail::MagnitudeKey(w.dtype(), w.bits(idx));
          // Larger magnitude first; among equals, the lower index first.
          group[j] = {key, j};
          keep[idx] = 0;
        }
        std::partial_sort(group.begin(), group.begin() + n, group.begin() + m, [](const auto& a, const auto& b) {
          return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        for (int j = 0; j < n; ++j) {
          const int64_t idx = (o * s.length + g + group[j].second) * s.inner + i;
          // An element pruned before never comes back, even when that leaves fewer than N.
          keep[idx] = forced && input.previous_keep[idx] == 0 ? 0 : 1;
        }
      }
    }
  }
  return Status::Ok();
}

int ReductionAxisFor(LayerKind kind, int rank) {
  switch (kind) {
    case LayerKind::kLinear: return 1;
    case LayerKind::kConv: return 1;
    case LayerKind::kMatMul: return rank - 2;
    case LayerKind::kConvTranspose: return 0;
  }
  return -1;
}

Status ApplyMask(const MutableTensorView& weights, std::span<const uint8_t> keep) {
  const size_t es = DTypeSize(weights.dtype);
  if (es == 0 || keep.size() * es != weights.bytes.size()) {
    return InvalidArgument("mask of " + std::to_string(keep.size()) + " elements does not fit the tensor");
  }
  for (size_t i = 0; i < keep.size(); ++i) {
    if (keep[i] == 0) std::memset(weights.bytes.data() + i * es, 0, es);
  }
  return Status::Ok();
}

double PolynomialSchedule::SparsityAt(int64_t step) const {
  if (step <= begin_step) return initial;
  if (step >= end_step || end_step <= begin_step) return final;
  const int64_t f = frequency > 0 ? frequency : 1;
  const int64_t quantized = begin_step + (step - begin_step) / f * f;
  const double progress = static_cast<double>(quantized - begin_step) / static_cast<double>(end_step - begin_step);
  return final + (initial - final) * std::pow(1.0 - progress, power);
}

double IterativeSchedule::SparsityAt(int round) const {
  if (round <= 0) return 0.0;
  return std::min(target, 1.0 - std::pow(1.0 - fraction, round));
}

int IterativeSchedule::Rounds() const {
  if (target <= 0.0) return 0;
  if (fraction <= 0.0 || fraction >= 1.0) return fraction >= 1.0 ? 1 : 0;
  int r = 0;
  while (SparsityAt(r) < target - 1e-12 && r < 10000) ++r;
  return r;
}

}  // namespace modelpress
