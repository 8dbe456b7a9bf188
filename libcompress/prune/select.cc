#include "prune/select.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "modelpress/parallel.h"

namespace modelpress::prune_detail {
namespace {

// Elements per unit of parallel work.
constexpr int64_t kChunk = int64_t{1} << 18;

struct Chunk {
  size_t segment;
  int64_t begin, end;
};

std::vector<Chunk> MakeChunks(std::span<const Segment> segments) {
  std::vector<Chunk> chunks;
  for (size_t s = 0; s < segments.size(); ++s) {
    const int64_t n = segments[s].weights.size();
    for (int64_t b = 0; b < n; b += kChunk) chunks.push_back({s, b, std::min(n, b + kChunk)});
  }
  return chunks;
}

// Calls f(index, key) for every element of a chunk.
template <class F>
void ForEachKey(const Segment& seg, int64_t begin, int64_t end, F&& f) {
  const TensorView& w = seg.weights;
  const bool forced = !seg.previous_keep.empty();
  auto key_at = [&](int64_t i, uint32_t magnitude) { return forced && seg.previous_keep[i] == 0 ? 0u : magnitude; };
  if (w.dtype() == DType::kFloat32 && w.contiguous()) {
    const std::span<const float> v = w.span<float>();
    for (int64_t i = begin; i < end; ++i) f(i, key_at(i, std::bit_cast<uint32_t>(v[i]) & 0x7fffffffu));
    return;
  }
  const DType dt = w.dtype();
  for (int64_t i = begin; i < end; ++i) f(i, key_at(i, MagnitudeKey(dt, w.bits(i))));
}

}  // namespace

uint32_t MagnitudeKey(DType dtype, uint64_t bits) {
  float f = 0.0f;
  switch (dtype) {
    case DType::kFloat32: return static_cast<uint32_t>(bits) & 0x7fffffffu;
    case DType::kFloat16: f = HalfToFloat(static_cast<uint16_t>(bits)); break;
    case DType::kBfloat16: return (static_cast<uint32_t>(bits) << 16) & 0x7fffffffu;
    case DType::kFloat64: f = static_cast<float>(std::bit_cast<double>(bits)); break;
    case DType::kInt8: f = static_cast<float>(static_cast<int8_t>(bits)); break;
    case DType::kUint8: f = static_cast<float>(static_cast<uint8_t>(bits)); break;
    case DType::kInt16: f = static_cast<float>(static_cast<int16_t>(bits)); break;
    case DType::kUint16: f = static_cast<float>(static_cast<uint16_t>(bits)); break;
    case DType::kInt32: f = static_cast<float>(static_cast<int32_t>(bits)); break;
    case DType::kUint32: f = static_cast<float>(static_cast<uint32_t>(bits)); break;
    case DType::kInt64: f = static_cast<float>(static_cast<int64_t>(bits)); break;
    case DType::kUint64: f = static_cast<float>(bits); break;
    default: return 0x7fc00000u;  // not a magnitude: never pruned first
  }
  return std::bit_cast<uint32_t>(f) & 0x7fffffffu;
}

int64_t PruneSmallest(std::span<Segment> segments, int64_t k, int threads) {
  const std::vector<Chunk> chunks = MakeChunks(segments);
  const int64_t nchunks = static_cast<int64_t>(chunks.size());

  // Radix select on the 32-bit keys: the high 16 bits, then the low 16 bits
  // within the bucket holding the k-th smallest key. Histograms are per chunk
  // and summed in chunk order, so the result does not depend on threads.
  using Histogram = std::array<int64_t, 65536>;
  auto histogram = [&](auto&& bucket_of) {
    std::vector<Histogram> parts(static_cast<size_t>(std::min<int64_t>(nchunks, 64)));
    for (auto& h : parts) h.fill(0);
    ParallelFor(static_cast<int64_t>(parts.size()), [&](int64_t p) {
      Histogram& h = parts[p];
      for (int64_t c = p; c < nchunks; c += static_cast<int64_t>(parts.size())) {
        ForEachKey(segments[chunks[c].segment], chunks[c].begin, chunks[c].end, [&](int64_t, uint32_t key) {
          const int b = bucket_of(key);
          if (b >= 0) ++h[b];
        });
      }
    }, threads);
    Histogram total{};
    for (const auto& h : parts) {
      for (size_t b = 0; b < total.size(); ++b) total[b] += h[b];
    }
    return total;
  };
  // Finds the bucket holding the element of rank k (0-based) and the count below it.
  auto locate = [](const Histogram& h, int64_t rank, int64_t* below) {
    int64_t acc = 0;
    for (int b = 0; b < 65536; ++b) {
      if (acc + h[b] > rank) {
        *below = acc;
        return b;
      }
      acc += h[b];
    }
    *below = acc;
    return 65536;
  };

  int64_t total = 0;
  for (const Segment& s : segments) total += s.weights.size();
  uint32_t threshold = 0;   // keys below it are pruned
  int64_t ties = 0;         // how many keys equal to it are pruned, first in order
  if (k >= total) {
    threshold = 0xffffffffu;
  } else if (k > 0) {
    const Histogram high = histogram([](uint32_t key) { return static_cast<int>(key >> 16); });
    int64_t below_high = 0;
    const int hb = locate(high, k, &below_high);
    const Histogram low = histogram([hb](uint32_t key) { return static_cast<int>(key >> 16) == hb ? static_cast<int>(key & 0xffffu) : -1; });
    int64_t below_low = 0;
    const int lb = locate(low, k - below_high, &below_low);
    threshold = (static_cast<uint32_t>(hb) << 16) | static_cast<uint32_t>(lb);
    ties = k - below_high - below_low;
    if (ties == low[lb]) {
      // Every element equal to the threshold goes: no order among them needed.
      ++threshold;
      ties = 0;
    }
  }

  // Ties are pruned in global order: count them per chunk, then give every
  // chunk the number of ties before it.
  std::vector<int64_t> tie_start(chunks.size() + 1, 0);
  if (ties > 0) {
    ParallelFor(nchunks, [&](int64_t c) {
      int64_t n = 0;
      ForEachKey(segments[chunks[c].segment], chunks[c].begin, chunks[c].end, [&](int64_t, uint32_t key) { n += key == threshold; });
      tie_start[c + 1] = n;
    }, threads);
    for (size_t c = 0; c < chunks.size(); ++c) tie_start[c + 1] += tie_start[c];
  }
  std::vector<int64_t> pruned(chunks.size(), 0);
  ParallelFor(nchunks, [&](int64_t c) {
    const Segment& seg = segments[chunks[c].segment];
    const int64_t begin = chunks[c].begin, end = chunks[c].end;
    // The common case, packed float32 zeroed in place with nothing forced,
    // as a branch-free loop; ties (rare) in a second pass.
    if (seg.weights.dtype() == DType::kFloat32 && seg.weights.contiguous() && seg.previous_keep.empty() &&
        seg.keep_out == nullptr && seg.zero_out != nullptr && threshold > 0) {
      uint32_t* w = reinterpret_cast<uint32_t*>(seg.zero_out);
      int64_t count = 0;
      for (int64_t i = begin; i < end; ++i) {
        const bool below = (w[i] & 0x7fffffffu) < threshold;
        count += below;
        w[i] = below ? 0u : w[i];
      }
      if (ties > 0) {
        int64_t tie_rank = tie_start[c];
        for (int64_t i = begin; i < end && tie_rank < ties; ++i) {
          if ((w[i] & 0x7fffffffu) == threshold) {
            w[i] = 0;
            ++tie_rank;
            ++count;
          }
        }
      }
      pruned[c] = count;
      return;
    }
    const size_t es = seg.weights.element_size();
    int64_t tie_rank = tie_start[c];
    int64_t count = 0;
    ForEachKey(seg, begin, end, [&](int64_t i, uint32_t key) {
      bool prune = key < threshold || key == 0;
      if (key == threshold && !prune) prune = tie_rank++ < ties;
      prune = prune || (!seg.previous_keep.empty() && seg.previous_keep[i] == 0);
      if (seg.keep_out != nullptr) seg.keep_out[i] = prune ? 0 : 1;
      if (prune && seg.zero_out != nullptr) std::memset(seg.zero_out + i * es, 0, es);
      count += prune;
    });
    pruned[c] = count;
  }, threads);
  int64_t sum = 0;
  for (int64_t p : pruned) sum += p;
  return sum;
}

}  // namespace modelpress::prune_detail
