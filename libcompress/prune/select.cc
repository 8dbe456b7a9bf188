#include "prune/select.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>

#include "modelpress/parallel.h"

namespace modelpress::prune_detail {
namespace {

// Elements per unit of parallel work.
constexpr int64_t kChunk = int64_t{1} << 18;

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

namespace {

// Per chunk: keys below the threshold, keys equal to it, keys equal to 0.
struct ChunkCounts {
  std::vector<int64_t> below, at, zero_keys;
  uint32_t threshold = 0;  // keys below it are pruned; at least 1 (magnitude 0 always goes)
  int64_t ties = 0;        // how many keys equal to it are pruned, first in order
};

}  // namespace

int64_t PruneSmallest(std::span<Segment> segments, int64_t k, int threads, std::shared_ptr<Selection>* selection) {
  auto decision = std::make_shared<Selection>();
  int64_t total = 0;
  for (size_t s = 0; s < segments.size(); ++s) {
    decision->weights_.push_back(segments[s].weights);
    decision->first_chunk_.push_back(decision->chunks_.size());
    const int64_t n = segments[s].weights.size();
    for (int64_t b = 0; b < n; b += kChunk) decision->chunks_.push_back({s, b, std::min(n, b + kChunk)});
    total += n;
  }
  decision->first_chunk_.push_back(decision->chunks_.size());
  const std::vector<Selection::Chunk>& chunks = decision->chunks_;
  const int64_t nchunks = static_cast<int64_t>(chunks.size());
  const size_t nc = chunks.size();
  auto for_each_key = [&](int64_t c, auto&& f) { ForEachKey(segments[chunks[c].segment], chunks[c].begin, chunks[c].end, f); };
  if (threads <= 0) threads = DefaultThreads();

  ChunkCounts counts{std::vector<int64_t>(nc, 0), std::vector<int64_t>(nc, 0), std::vector<int64_t>(nc, 0)};
  // Given the k-th smallest key `key` and how many keys are below it, sets
  // the threshold and the ties.
  auto decide = [&](uint32_t key, int64_t below_key, int64_t equal_key) {
    counts.threshold = key;
    counts.ties = k - below_key;
    if (counts.ties == equal_key) {
      // Every element equal to the key goes: no order among them needed.
      ++counts.threshold;
      counts.ties = 0;
    }
    if (counts.threshold == 0) {
      // Fewer than the zeros: every zero goes (they always do), nothing else.
      counts.threshold = 1;
      counts.ties = 0;
    }
  };

  // Chooses the threshold with one read-only pass when possible: a
  // deterministic sample of the keys brackets the k-th smallest in [lo, hi);
  // the pass counts, per chunk, keys below lo and keeps the few keys in
  // [lo, hi), which are enough to place the threshold and count every
  // chunk's share. Returns false when the bracket missed (or held too many
  // keys); the caller then selects by radix instead.
  auto select_by_sample = [&]() -> bool {
    constexpr int64_t kSamples = int64_t{1} << 17;
    if (total < 8 * kSamples) return false;
    std::vector<uint32_t> sample;
    sample.reserve(kSamples);
    const int64_t stride = total / kSamples;  // one key from the middle of every stride
    size_t seg = 0;
    int64_t seg_start = 0;
    for (int64_t j = 0; j < kSamples; ++j) {
      const int64_t g = j * stride + stride / 2;
      while (g >= seg_start + segments[seg].weights.size()) seg_start += segments[seg++].weights.size();
      ForEachKey(segments[seg], g - seg_start, g - seg_start + 1, [&](int64_t, uint32_t key) { sample.push_back(key); });
    }
    // The rank of the k-th key in the sample, widened by about four standard
    // deviations of a binomial count on each side.
    const double q = static_cast<double>(k) / static_cast<double>(total);
    const double spread = 4.0 * std::sqrt(static_cast<double>(kSamples) * q * (1.0 - q)) + 16.0;
    const auto rank_lo = static_cast<int64_t>(std::max(0.0, q * kSamples - spread));
    const auto rank_hi = static_cast<int64_t>(std::min(static_cast<double>(kSamples - 1), q * kSamples + spread));
    std::nth_element(sample.begin(), sample.begin() + rank_lo, sample.end());
    const uint32_t lo = sample[rank_lo];
    std::nth_element(sample.begin() + rank_lo, sample.begin() + rank_hi, sample.end());
    const uint32_t hi = rank_hi >= kSamples - 1 ? 0xffffffffu : sample[rank_hi];
    if (hi <= lo) return false;

    constexpr size_t kMaxKept = static_cast<size_t>(kChunk / 64);
    std::vector<int64_t> below_lo(nc, 0);
    std::vector<std::vector<uint32_t>> kept(nc);
    std::atomic<bool> overflow{false};
    ParallelFor(nchunks, [&](int64_t c) {
      int64_t n = 0, zeros = 0;
      bool full = false;
      std::vector<uint32_t>& mine = kept[c];
      const uint32_t low = lo, width = hi - lo;  // locals: the loop must not reload them
      auto visit = [&](uint32_t key) {
        n += key < low;
        zeros += key == 0;
        if (key - low >= width) return;  // outside [lo, hi), one unsigned comparison
        if (mine.size() < kMaxKept) mine.push_back(key);
        else full = true;
      };
      const Segment& seg = segments[chunks[c].segment];
      if (seg.weights.dtype() == DType::kFloat32 && seg.weights.contiguous() && seg.previous_keep.empty()) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(seg.weights.bytes().data());
        for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) visit(w[i] & 0x7fffffffu);
      } else {
        for_each_key(c, [&](int64_t, uint32_t key) { visit(key); });
      }
      below_lo[c] = n;
      counts.zero_keys[c] = zeros;
      if (full) overflow = true;
    }, threads);
    if (overflow) return false;
    int64_t below_all = 0;
    std::vector<uint32_t> bracket;
    for (size_t c = 0; c < nc; ++c) {
      below_all += below_lo[c];
      bracket.insert(bracket.end(), kept[c].begin(), kept[c].end());
    }
    const int64_t rank = k - below_all;  // the k-th key's rank within the bracket
    if (rank < 0 || rank >= static_cast<int64_t>(bracket.size())) return false;
    std::nth_element(bracket.begin(), bracket.begin() + rank, bracket.end());
    const uint32_t key = bracket[rank];
    const int64_t below_key = below_all + std::count_if(bracket.begin(), bracket.end(), [&](uint32_t x) { return x < key; });
    decide(key, below_key, std::count(bracket.begin(), bracket.end(), key));
    for (size_t c = 0; c < nc; ++c) {
      int64_t lt = below_lo[c], eq = 0;
      for (uint32_t x : kept[c]) {
        lt += x < counts.threshold;
        eq += x == counts.threshold;
      }
      counts.below[c] = lt;
      counts.at[c] = eq;
    }
    return true;
  };

  // Radix select on the 32-bit keys: the high 16 bits, then the low 16 bits
  // within the bucket holding the k-th smallest key. Histograms are per part
  // (integer sums: their order does not matter). The same two read-only
  // passes count, per chunk, what the decision will prune, so nothing needs a
  // third pass except chunks with unusually many keys in the threshold's
  // bucket.
  auto select_by_radix = [&]() {
    using Histogram = std::array<int64_t, 65536>;
    const size_t nparts = static_cast<size_t>(std::clamp<int64_t>(nchunks, 1, threads));
    auto histogram = [&](auto&& per_chunk) {
      std::vector<Histogram> parts(nparts);
      ParallelFor(static_cast<int64_t>(nparts), [&](int64_t p) {
        parts[p].fill(0);
        for (int64_t c = p; c < nchunks; c += static_cast<int64_t>(nparts)) per_chunk(c, parts[p]);
      }, threads);
      Histogram sum{};
      for (const auto& h : parts) {
        for (size_t b = 0; b < sum.size(); ++b) sum[b] += h[b];
      }
      return sum;
    };
    // Finds the bucket holding the element of rank `rank` (0-based) and the count below it.
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
    const Histogram high = histogram([&](int64_t c, Histogram& h) {
      int64_t zeros = 0;
      for_each_key(c, [&](int64_t, uint32_t key) {
        ++h[key >> 16];
        zeros += key == 0;
      });
      counts.zero_keys[c] = zeros;
    });
    int64_t below_high = 0;
    const int hb = locate(high, k, &below_high);
    // Per chunk: keys in lower buckets, and the low halves of the keys in
    // bucket hb (up to an eighth of the chunk; more are counted again later).
    constexpr size_t kKeptLows = static_cast<size_t>(kChunk / 8);
    std::vector<int64_t> lower(nc, 0);
    std::vector<std::vector<uint16_t>> lows(nc);
    std::vector<uint8_t> overflow(nc, 0);
    const Histogram low = histogram([&](int64_t c, Histogram& h) {
      int64_t n = 0;
      std::vector<uint16_t>& mine = lows[c];
      for_each_key(c, [&](int64_t, uint32_t key) {
        const int b = static_cast<int>(key >> 16);
        n += b < hb;
        if (b != hb) return;
        ++h[key & 0xffffu];
        if (mine.size() < kKeptLows) mine.push_back(static_cast<uint16_t>(key));
        else overflow[c] = 1;
      });
      lower[c] = n;
    });
    int64_t below_low = 0;
    const int lb = locate(low, k - below_high, &below_low);
    decide((static_cast<uint32_t>(hb) << 16) | static_cast<uint32_t>(lb), below_high + below_low, low[lb]);
    const uint32_t bucket_start = static_cast<uint32_t>(hb) << 16;
    ParallelFor(nchunks, [&](int64_t c) {
      int64_t lt = lower[c], eq = 0;
      if (overflow[c]) {
        lt = 0;
        for_each_key(c, [&](int64_t, uint32_t key) {
          lt += key < counts.threshold;
          eq += key == counts.threshold;
        });
      } else {
        for (uint16_t l : lows[c]) {
          const uint32_t key = bucket_start | l;
          lt += key < counts.threshold;
          eq += key == counts.threshold;
        }
      }
      counts.below[c] = lt;
      counts.at[c] = eq;
    }, threads);
  };

  if (k > 0 && k < total) {
    if (!select_by_sample()) select_by_radix();
  } else {
    // Nothing to choose: everything, or only zeros and forced elements.
    counts.threshold = k >= total ? 0xffffffffu : 1;
    ParallelFor(nchunks, [&](int64_t c) {
      int64_t zeros = 0;
      for_each_key(c, [&](int64_t, uint32_t key) { zeros += key == 0; });
      counts.zero_keys[c] = zeros;
      counts.below[c] = k >= total ? chunks[c].end - chunks[c].begin : zeros;
    }, threads);
  }
  const uint32_t threshold = counts.threshold;
  const int64_t ties = counts.ties;

  // Ties are pruned in global order: every chunk takes what is left of them.
  std::vector<int64_t>& tie_start = decision->tie_start_;
  tie_start.assign(nc + 1, 0);
  for (size_t c = 0; c < nc; ++c) tie_start[c + 1] = tie_start[c] + (ties > 0 ? counts.at[c] : 0);
  auto ties_in = [&](size_t c) { return std::clamp<int64_t>(ties - tie_start[c], 0, tie_start[c + 1] - tie_start[c]); };
  int64_t sum = 0;
  for (Segment& s : segments) s.zero_keys = s.pruned = 0;
  for (size_t c = 0; c < nc; ++c) {
    Segment& s = segments[chunks[c].segment];
    s.zero_keys += counts.zero_keys[c];
    s.pruned += counts.below[c] + ties_in(c);
    sum += counts.below[c] + ties_in(c);
  }
  decision->threshold_ = threshold;
  decision->ties_ = ties;

  ParallelFor(nchunks, [&](int64_t c) {
    const Segment& seg = segments[chunks[c].segment];
    if (seg.keep_out == nullptr && seg.zero_out == nullptr) return;  // counted only
    const int64_t begin = chunks[c].begin, end = chunks[c].end;
    // The common case, packed float32 zeroed in place with nothing forced.
    if (seg.weights.dtype() == DType::kFloat32 && seg.weights.contiguous() && seg.previous_keep.empty() &&
        seg.keep_out == nullptr) {
      uint32_t* w = reinterpret_cast<uint32_t*>(seg.zero_out);
      decision->ZeroFloat32(chunks[c].segment, begin, w + begin, w + begin, end - begin);
      return;
    }
    const size_t es = seg.weights.element_size();
    int64_t tie_rank = tie_start[c];
    for_each_key(c, [&](int64_t i, uint32_t key) {
      bool prune = key < threshold || key == 0;
      if (key == threshold && !prune) prune = tie_rank++ < ties;
      prune = prune || (!seg.previous_keep.empty() && seg.previous_keep[i] == 0);
      if (seg.keep_out != nullptr) seg.keep_out[i] = prune ? 0 : 1;
      if (prune && seg.zero_out != nullptr) std::memset(seg.zero_out + i * es, 0, es);
    });
  }, threads);
  if (selection != nullptr) *selection = std::move(decision);
  return sum;
}

void Selection::ZeroFloat32(size_t segment, int64_t first, const uint32_t* in, uint32_t* out, int64_t n) const {
  const uint32_t limit = threshold_;  // at least 1: magnitude 0 is always pruned
  for (int64_t pos = first; pos < first + n;) {
    const size_t c = first_chunk_[segment] + static_cast<size_t>(pos / kChunk);
    const int64_t stop = std::min(chunks_[c].end, first + n);
    for (int64_t i = pos; i < stop; ++i) {
      const uint32_t v = in[i - first];
      out[i - first] = (v & 0x7fffffffu) < limit ? 0u : v;
    }
    int64_t rank = tie_start_[c];
    if (ties_ > 0 && rank < ties_ && tie_start_[c + 1] > rank) {
      // This chunk still prunes some ties: count those before `pos` on the
      // original values, then take the next ones in order.
      const std::span<const float> w = weights_[segment].span<float>();
      for (int64_t i = chunks_[c].begin; i < pos; ++i) rank += (std::bit_cast<uint32_t>(w[i]) & 0x7fffffffu) == threshold_;
      for (int64_t i = pos; i < stop && rank < ties_; ++i) {
        if ((in[i - first] & 0x7fffffffu) == threshold_) {
          out[i - first] = 0;
          ++rank;
        }
      }
    }
    pos = stop;
  }
}

}  // namespace modelpress::prune_detail
