#include "codec/tensor_codec.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>

#include "modelpress/tensor.h"

namespace modelpress::pack {
namespace {

template <class U>
constexpr U Inverse(Transform t, U v) {
  constexpr int kBits = sizeof(U) * 8;
  switch (t) {
    case Transform::kNone: return v;
    case Transform::kRotateSign: return static_cast<U>(v >> 1 | v << (kBits - 1));
    case Transform::kZigZag: return static_cast<U>((v >> 1) ^ static_cast<U>(0 - (v & 1)));
  }
  return v;
}

// Element i's byte k goes to planes[k * n + i], after the transform. The
// transform is a template argument so each loop is branch-free.
template <class U, Transform T>
void SplitTyped(const uint8_t* elems, size_t n, uint8_t* planes) {
  for (size_t i = 0; i < n; ++i) {
    U v;
    std::memcpy(&v, elems + i * sizeof(U), sizeof(U));
    v = ApplyTransform(T, v);
    for (size_t k = 0; k < sizeof(U); ++k) planes[k * n + i] = static_cast<uint8_t>(v >> (8 * k));
  }
}

template <class U, Transform T>
void MergeTyped(const uint8_t* const* planes, size_t n, uint8_t* elems) {
  for (size_t i = 0; i < n; ++i) {
    U v = 0;
    for (size_t k = 0; k < sizeof(U); ++k) v = static_cast<U>(v | static_cast<U>(planes[k][i]) << (8 * k));
    v = Inverse(T, v);
    std::memcpy(elems + i * sizeof(U), &v, sizeof(U));
  }
}

template <class U>
void SplitAs(Transform t, const uint8_t* elems, size_t n, uint8_t* planes) {
  switch (t) {
    case Transform::kNone: return SplitTyped<U, Transform::kNone>(elems, n, planes);
    case Transform::kRotateSign: return SplitTyped<U, Transform::kRotateSign>(elems, n, planes);
    case Transform::kZigZag: return SplitTyped<U, Transform::kZigZag>(elems, n, planes);
  }
}

template <class U>
void MergeAs(Transform t, const uint8_t* const* planes, size_t n, uint8_t* elems) {
  switch (t) {
    case Transform::kNone: return MergeTyped<U, Transform::kNone>(planes, n, elems);
    case Transform::kRotateSign: return MergeTyped<U, Transform::kRotateSign>(planes, n, elems);
    case Transform::kZigZag: return MergeTyped<U, Transform::kZigZag>(planes, n, elems);
  }
}

// Splits n elements of es bytes into byte planes (element i's byte k goes to
// planes[k * n + i]) after the transform. Elements wider than 8 bytes take
// no transform.
void Split(size_t es, Transform t, const uint8_t* elems, size_t n, uint8_t* planes) {
  switch (es) {
    case 1: return SplitAs<uint8_t>(t, elems, n, planes);
    case 2: return SplitAs<uint16_t>(t, elems, n, planes);
    case 4: return SplitAs<uint32_t>(t, elems, n, planes);
    case 8: return SplitAs<uint64_t>(t, elems, n, planes);
    default:
      for (size_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < es; ++k) planes[k * n + i] = elems[i * es + k];
      }
  }
}

// The inverse of Split, from one pointer per plane.
void Merge(size_t es, Transform t, const uint8_t* const* planes, size_t n, uint8_t* elems) {
  switch (es) {
    case 1: return MergeAs<uint8_t>(t, planes, n, elems);
    case 2: return MergeAs<uint16_t>(t, planes, n, elems);
    case 4: return MergeAs<uint32_t>(t, planes, n, elems);
    case 8: return MergeAs<uint64_t>(t, planes, n, elems);
    default:
      for (size_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < es; ++k) elems[i * es + k] = planes[k][i];
      }
  }
}

// Stream kinds (the key of shared tables): what the stream holds, with the
// data type and byte plane where its statistics depend on them.
enum : uint32_t { kKindWhole = 1, kKindPlane = 2, kKindValuePlane = 3, kKindGaps = 4, kKindBitmap = 5, kKindGroups = 6 };
constexpr StreamKind Kind(uint32_t what, uint32_t dtype = 0, uint32_t k = 0) {
  return what << 24 | (dtype & 0xffff) << 8 | (k & 0xff);
}

// The whole-stream candidate of a multi-byte tensor tries Huffman coding up
// to this size only (EncodeTensor).
constexpr size_t kWholeHuffmanUpTo = 64 * 1024;

// A buffer that is not zero-filled: every byte is written before it is read.
std::unique_ptr<uint8_t[]> Scratch(size_t n) { return std::unique_ptr<uint8_t[]>(new uint8_t[n]); }

// The shared table on offer for streams of `kind`, if any.
const SharedTableRef* TableFor(const SharedTableMap* shared, StreamKind kind) {
  if (!shared) return nullptr;
  const auto it = shared->find(kind);
  return it == shared->end() ? nullptr : &it->second;
}

// One candidate payload, sized before it is written: literal bytes and
// planned streams in payload order. Only the winner is written, so a losing
// candidate costs its histograms but no entropy coding. Candidates may
// share pieces (the sparse candidates share their value planes) and the
// data those view.
class Candidate {
 public:
  explicit Candidate(Encoder encoder) : encoder_(encoder) {}

  Encoder encoder() const { return encoder_; }
  // Bytes without shared tables.
  uint64_t bytes() const { return bytes_; }

  void Byte(uint8_t b) { Literal({b}); }
  void Varint(uint64_t v) {
    std::vector<uint8_t> bytes;
    PutVarint(v, &bytes);
    Literal(std::move(bytes));
  }
  // Keeps `data` alive as long as the candidate (and those it is appended
  // to); returns a view of it.
  std::span<const uint8_t> Own(std::vector<uint8_t> data) {
    auto owned = std::make_shared<std::vector<uint8_t>>(std::move(data));
    keep_.push_back(owned);
    return *owned;
  }
  std::span<const uint8_t> Own(std::unique_ptr<uint8_t[]> data, size_t n) {
    std::shared_ptr<uint8_t[]> owned(std::move(data));
    keep_.push_back(owned);
    return {owned.get(), n};
  }
  // `data` must outlive the candidate (or be Own()ed by it). Planned with
  // zstd at kRankingZstdLevel at most, unless small enough for the requested
  // level to be cheap (on a few hundred bytes, high levels code literals
  // compactly enough to change the ranking); Write() brings the winner's
  // zstd streams to the requested level.
  void Stream(std::span<const uint8_t> data, const StreamOptions& so, StreamKind kind) {
    auto p = std::make_shared<Piece>();
    p->data = data;
    p->options = so;
    p->kind = kind;
    StreamOptions ranking = so;
    if (data.size() > kSmallStream) ranking.zstd_level = std::min(so.zstd_level, kRankingZstdLevel);
    p->plan = PlanStream(data, ranking);
    bytes_ += p->plan.bytes;
    pieces_.push_back(std::move(p));
  }

  // Adds the pieces of `other` (sharing them, and what it owns) to the end of this one.
  void Append(const Candidate& other) {
    bytes_ += other.bytes_;
    pieces_.insert(pieces_.end(), other.pieces_.begin(), other.pieces_.end());
    keep_.insert(keep_.end(), other.keep_.begin(), other.keep_.end());
  }

  // The plan of the i-th stream from the end (0: the last added).
  const StreamPlan& PlanFromEnd(size_t i) const {
    size_t seen = 0;
    for (auto p = pieces_.rbegin(); p != pieces_.rend(); ++p) {
      if ((*p)->stream() && seen++ == i) return (*p)->plan;
    }
    std::abort();  // callers ask for streams they added
  }

  // Appends the histograms of the streams that were counted, by kind: views
  // of the pieces' own, valid while a candidate holds the pieces.
  void Counts(std::vector<std::pair<StreamKind, const Histogram*>>* out) const {
    for (const auto& p : pieces_) {
      if (p->stream() && p->plan.counted) out->emplace_back(p->kind, &p->plan.counts);
    }
  }

  // Bytes with the tables of `shared` taken where they are smaller, and
  // (when `savings` is given) the bytes each table saves.
  uint64_t Bytes(const SharedTableMap* shared, std::vector<std::pair<uint32_t, uint64_t>>* savings) const {
    if (!shared) return bytes_;
    uint64_t total = bytes_;
    for (const auto& p : pieces_) {
      const SharedTableRef* t = p->stream() ? TableFor(shared, p->kind) : nullptr;
      if (!t) continue;
      const uint64_t with = SharedStreamBytes(p->plan, p->data.size(), *t);
      if (with == 0 || with >= p->plan.bytes) continue;
      total -= p->plan.bytes - with;
      if (savings) savings->emplace_back(t->id, p->plan.bytes - with);
    }
    return total;
  }

  // Writes the payload, its streams taking the tables of `shared` where
  // they are smaller, and records what each table saved. Pieces are
  // finalised in place, so a candidate (and those sharing its pieces) is
  // written once.
  void Write(const SharedTableMap* shared, EncodedTensor* t) {
    std::vector<uint8_t>& out = t->payload;
    uint64_t bytes = 0;
    for (const auto& p : pieces_) {
      if (!p->stream()) {
        bytes += p->literal.size();
        continue;
      }
      if (const SharedTableRef* table = TableFor(shared, p->kind)) {
        if (const uint64_t saved = OfferSharedTable(p->data.size(), *table, &p->plan)) {
          t->shared_savings.emplace_back(table->id, saved);
        }
      }
      RefineStream(p->data, p->options, &p->plan);
      bytes += p->plan.bytes;
    }
    // HuffmanEncode stores 8 bytes at a time and needs that many past the
    // end: without them the last stream would double the vector.
    out.reserve(bytes + 8);
    for (const auto& p : pieces_) {
      if (p->stream()) {
        WriteStream(p->data, p->plan, &out);
      } else {
        out.insert(out.end(), p->literal.begin(), p->literal.end());
      }
    }
  }

 private:
  static constexpr size_t kSmallStream = 1024;

  struct Piece {
    std::vector<uint8_t> literal;
    std::span<const uint8_t> data;
    StreamOptions options;
    StreamKind kind = 0;
    StreamPlan plan;
    bool stream() const { return literal.empty(); }
  };
  void Literal(std::vector<uint8_t> bytes) {
    bytes_ += bytes.size();
    auto p = std::make_shared<Piece>();
    p->literal = std::move(bytes);
    pieces_.push_back(std::move(p));
  }

  Encoder encoder_;
  uint64_t bytes_ = 0;
  std::vector<std::shared_ptr<Piece>> pieces_;
  std::vector<std::shared_ptr<const void>> keep_;  // data the pieces view
};

// The transform byte and one stream per byte plane of `elems` (streams of
// kind Kind(what, dtype, k)).
void AddPlanes(std::span<const uint8_t> elems, size_t es, Transform t, const StreamOptions& so, uint32_t what,
               int32_t dtype, Candidate* c) {
  if (es > 8) t = Transform::kNone;
  c->Byte(static_cast<uint8_t>(t));
  const size_t n = elems.size() / es;
  std::unique_ptr<uint8_t[]> planes = Scratch(elems.size());
  Split(es, t, elems.data(), n, planes.get());
  const std::span<const uint8_t> all = c->Own(std::move(planes), elems.size());
  for (size_t k = 0; k < es; ++k) {
    c->Stream(all.subspan(k * n, n), so, Kind(what, static_cast<uint32_t>(dtype), static_cast<uint32_t>(k)));
  }
}

bool DecodePlanes(std::span<const uint8_t>* in, size_t es, std::span<uint8_t> out, std::string* error,
                  std::string* detail, const SharedTables* tables) {
  if (in->empty()) {
    *error = "value planes are truncated";
    return false;
  }
  const uint8_t t = (*in)[0];
  if (t > static_cast<uint8_t>(Transform::kZigZag) || (es > 8 && t != 0)) {
    *error = "value transform " + std::to_string(t) + " is unknown";
    return false;
  }
  *in = in->subspan(1);
  const size_t n = out.size() / es;
  // Raw planes are read where they lie in the payload; the others are
  // decoded into scratch.
  std::unique_ptr<uint8_t[]> scratch;
  std::vector<const uint8_t*> planes(es);
  for (size_t k = 0; k < es; ++k) {
    StreamMode m{};
    if (!PeekStreamMode(*in, &m) || m != StreamMode::kRaw) {
      if (!scratch) scratch = Scratch(out.size());
      planes[k] = scratch.get() + k * n;
      if (!DecodeStream(in, {scratch.get() + k * n, n}, error, &m, StreamContext{tables})) {
        *error = "byte plane " + std::to_string(k) + ": " + *error;
        return false;
      }
    } else if (!RawStreamView(in, n, &planes[k], error)) {
      *error = "byte plane " + std::to_string(k) + ": " + *error;
      return false;
    }
    if (detail) *detail += std::string(k ? "," : "") + StreamModeName(m);
  }
  Merge(es, static_cast<Transform>(t), planes.data(), n, out.data());
  return true;
}

bool IsZeroElem(const uint8_t* p, size_t es) {
  for (size_t k = 0; k < es; ++k) {
    if (p[k]) return false;
  }
  return true;
}

// 1 for each nonzero element (any bit set), 0 for each zero.
std::vector<uint8_t> NonzeroMask(std::span<const uint8_t> packed, size_t es) {
  const size_t n = packed.size() / es;
  std::vector<uint8_t> nz(n);
  auto typed = [&]<class U>(U) {
    for (size_t i = 0; i < n; ++i) {
      U v;
      std::memcpy(&v, &packed[i * sizeof(U)], sizeof(U));
      nz[i] = v != 0;
    }
  };
  switch (es) {
    case 1: typed(uint8_t{}); break;
    case 2: typed(uint16_t{}); break;
    case 4: typed(uint32_t{}); break;
    case 8: typed(uint64_t{}); break;
    default:
      for (size_t i = 0; i < n; ++i) nz[i] = !IsZeroElem(&packed[i * es], es);
  }
  return nz;
}

// Flat index of element j of group g at (o, i) for groups of m along an axis.
struct Groups {
  uint64_t outer = 1, length = 0, inner = 1, m = 4;
  uint64_t count() const { return outer * (length / m) * inner; }
};

bool SplitAxis(std::span<const int64_t> shape, size_t axis, uint64_t m, Groups* g) {
  if (axis >= shape.size() || shape[axis] <= 0 || shape[axis] % static_cast<int64_t>(m) != 0) return false;
  g->outer = 1;
  g->inner = 1;
  for (size_t d = 0; d < axis; ++d) g->outer *= static_cast<uint64_t>(shape[d]);
  for (size_t d = axis + 1; d < shape.size(); ++d) g->inner *= static_cast<uint64_t>(shape[d]);
  g->length = static_cast<uint64_t>(shape[axis]);
  g->m = m;
  return true;
}

// Visits the groups in payload order (o, group, i) and, within each, its m
// element indices in order.
template <class F>
void ForEachGroup(const Groups& g, F&& f) {
  uint64_t idx[8];
  for (uint64_t o = 0; o < g.outer; ++o) {
    for (uint64_t gr = 0; gr < g.length / g.m; ++gr) {
      for (uint64_t i = 0; i < g.inner; ++i) {
        for (uint64_t j = 0; j < g.m; ++j) idx[j] = (o * g.length + gr * g.m + j) * g.inner + i;
        f(idx);
      }
    }
  }
}

// True when no group of 4 along g's axis has more than 2 nonzeros; stops at
// the first group that does.
bool AtMostTwoOfFour(const Groups& g, std::span<const uint8_t> nz) {
  for (uint64_t o = 0; o < g.outer; ++o) {
    for (uint64_t gr = 0; gr < g.length / 4; ++gr) {
      const uint64_t base = (o * g.length + gr * 4) * g.inner;
      for (uint64_t i = 0; i < g.inner; ++i) {
        const uint64_t e = base + i;
        if (nz[e] + nz[e + g.inner] + nz[e + 2 * g.inner] + nz[e + 3 * g.inner] > 2) return false;
      }
    }
  }
  return true;
}

// The nonzero elements of a tensor in order, and both codes of their
// positions (gap symbols and bitmap), gathered in one pass.
struct Nonzeros {
  std::vector<uint8_t> values;  // nnz * es bytes
  std::vector<uint8_t> gaps;
  std::vector<uint8_t> bitmap;
};

template <size_t ES>
void CopyElements(const uint8_t* packed, const uint64_t* idx, size_t count, size_t es, uint8_t* out) {
  if constexpr (ES == 0) {
    for (size_t k = 0; k < count; ++k) std::memcpy(out + k * es, packed + idx[k] * es, es);
  } else {
    for (size_t k = 0; k < count; ++k) std::memcpy(out + k * ES, packed + idx[k] * ES, ES);
  }
}

Nonzeros GatherNonzeros(std::span<const uint8_t> packed, std::span<const uint8_t> nz, size_t es, size_t nnz) {
  const size_t n = packed.size() / es;
  Nonzeros z;
  z.values.resize(nnz * es);
  // The bitmap packs eight mask bytes (each 0 or 1) at a time: the multiply
  // moves byte k's bit to bit 56 + k, and the other products land below bit
  // 56 or above bit 63 without carries.
  z.bitmap.resize((n + 7) / 8);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, nz.data() + i, 8);
    z.bitmap[i / 8] = static_cast<uint8_t>((x * 0x0102040810204080ull) >> 56);
  }
  for (; i < n; ++i) z.bitmap[i / 8] |= static_cast<uint8_t>(nz[i] << (i % 8));
  // At most one gap symbol per nonzero plus one per 255 zeros.
  z.gaps.resize(nnz + (n - nnz) / 255 + 1);
  uint8_t* gap_out = z.gaps.data();
  // Indices of the nonzeros, a block at a time, read from the bitmap's set
  // bits (a byte of zeros costs one test).
  constexpr size_t kBlock = 1 << 16;  // a multiple of 8
  std::vector<uint64_t> idx(std::min(n, kBlock));
  uint64_t next = 0;  // gaps: the first index not yet covered
  size_t at = 0;      // nonzeros gathered so far
  for (size_t begin = 0; begin < n; begin += kBlock) {
    const size_t end = std::min(n, begin + kBlock);
    size_t count = 0;
    for (size_t g = begin / 8; g < (end + 7) / 8; ++g) {
      for (unsigned m = z.bitmap[g]; m != 0; m &= m - 1) idx[count++] = g * 8 + static_cast<unsigned>(std::countr_zero(m));
    }
    uint8_t* out = z.values.data() + at * es;
    switch (es) {
      case 1: CopyElements<1>(packed.data(), idx.data(), count, es, out); break;
      case 2: CopyElements<2>(packed.data(), idx.data(), count, es, out); break;
      case 4: CopyElements<4>(packed.data(), idx.data(), count, es, out); break;
      case 8: CopyElements<8>(packed.data(), idx.data(), count, es, out); break;
      default: CopyElements<0>(packed.data(), idx.data(), count, es, out);
    }
    at += count;
    for (size_t k = 0; k < count; ++k) {
      uint64_t gap = idx[k] - next;
      for (; gap >= 255; gap -= 255) *gap_out++ = 255;
      *gap_out++ = static_cast<uint8_t>(gap);
      next = idx[k] + 1;
    }
  }
  z.gaps.resize(static_cast<size_t>(gap_out - z.gaps.data()));
  return z;
}

// The N:M encoder's positions (one pattern byte per group) and its values in
// group order.
void AddNM(std::span<const uint8_t> packed, std::span<const uint8_t> nz, size_t es, Transform t, const Groups& groups,
           const StreamOptions& so, int32_t dtype, Candidate* c) {
  std::vector<uint8_t> values, positions;
  positions.reserve(groups.count());
  c->Byte(static_cast<uint8_t>(groups.m));
  ForEachGroup(groups, [&](const uint64_t* idx) {
    uint8_t mask = 0;
    for (uint64_t j = 0; j < groups.m; ++j) {
      if (nz[idx[j]]) {
        mask |= static_cast<uint8_t>(1u << j);
        values.insert(values.end(), &packed[idx[j] * es], &packed[idx[j] * es] + es);
      }
    }
    positions.push_back(mask);
  });
  c->Varint(values.size() / es);
  const StreamKind kind = Kind(kKindGroups, 0, static_cast<uint32_t>(groups.m));
  c->Stream(c->Own(std::move(positions)), so, kind);
  AddPlanes(values, es, t, so, kKindValuePlane, dtype, c);
}

bool DecodeSparse(Encoder which, std::span<const uint8_t> in, size_t es, std::span<const int64_t> shape,
                  std::span<uint8_t> out, std::string* error, std::string* detail, const SharedTables* tables) {
  const size_t n = out.size() / es;
  Groups groups;
  if (which == Encoder::kNM) {
    if (in.size() < 2) {
      *error = "N:M header is truncated";
      return false;
    }
    const uint8_t axis = in[0], m = in[1];
    if (m < 2 || m > 8 || !SplitAxis(shape, axis, m, &groups)) {
      *error = "N:M groups of " + std::to_string(m) + " along axis " + std::to_string(axis) + " do not fit shape";
      return false;
    }
    in = in.subspan(2);
  }
  uint64_t nnz = 0;
  if (!GetVarint(&in, &nnz) || nnz > n) {
    *error = "count of nonzero values is missing or exceeds the element count";
    return false;
  }
  uint64_t npos = 0;
  if (!PeekStreamSize(in, &npos)) {
    *error = "position stream is truncated";
    return false;
  }
  const uint64_t expected = which == Encoder::kSparseBitmap ? (n + 7) / 8 : which == Encoder::kNM ? groups.count() : 0;
  // Every gap symbol accounts for at least one element.
  if ((which == Encoder::kSparseGaps && npos > n) || (which != Encoder::kSparseGaps && npos != expected)) {
    *error = "position stream declares " + std::to_string(npos) + " bytes, impossible for " + std::to_string(n) + " elements";
    return false;
  }
  std::vector<uint8_t> positions(npos);
  StreamMode pm{};
  if (!DecodeStream(&in, positions, error, &pm, StreamContext{tables})) {
    *error = "positions: " + *error;
    return false;
  }
  std::vector<uint8_t> values(nnz * es);
  std::string vdetail;
  if (!DecodePlanes(&in, es, values, error, detail ? &vdetail : nullptr, tables)) {
    *error = "values: " + *error;
    return false;
  }
  if (!in.empty()) {
    *error = std::to_string(in.size()) + " bytes follow the encoded tensor";
    return false;
  }
  if (detail) *detail = std::string("positions:") + StreamModeName(pm) + " values:" + vdetail;
  std::fill(out.begin(), out.end(), 0);
  uint64_t v = 0;
  auto put = [&](uint64_t i) -> bool {
    if (v >= nnz) return false;
    std::memcpy(&out[i * es], &values[v * es], es);
    ++v;
    return true;
  };
  bool ok = true;
  if (which == Encoder::kSparseGaps) {
    uint64_t pos = 0;
    for (uint8_t s : positions) {
      pos += s;
      if (s == 255) continue;
      if (pos >= n || !put(pos)) {
        ok = false;
        break;
      }
      ++pos;
    }
  } else if (which == Encoder::kSparseBitmap) {
    for (size_t i = 0; i < n && ok; ++i) {
      if (positions[i / 8] >> (i % 8) & 1) ok = put(i);
    }
    if (n % 8 && positions.back() >> (n % 8)) ok = false;
  } else {
    size_t gi = 0;
    ForEachGroup(groups, [&](const uint64_t* idx) {
      const uint8_t mask = positions[gi++];
      if (mask >> groups.m) ok = false;
      for (uint64_t j = 0; j < groups.m && ok; ++j) {
        if (mask >> j & 1) ok = put(idx[j]);
      }
    });
  }
  if (!ok || v != nnz) {
    *error = "positions and the " + std::to_string(nnz) + " nonzero values disagree";
    return false;
  }
  return true;
}

}  // namespace

Transform TransformFor(int32_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat32:
    case DType::kFloat16:
    case DType::kBfloat16:
    case DType::kFloat64: return Transform::kRotateSign;
    case DType::kInt8:  // zigzag orders symbols by magnitude, so the code table's lengths change smoothly
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64: return Transform::kZigZag;
    default: return Transform::kNone;
  }
}

size_t ElementBytes(int32_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kUint8: case DType::kInt8: case DType::kBool:
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ:
      return 1;
    case DType::kUint16: case DType::kInt16: case DType::kFloat16: case DType::kBfloat16: return 2;
    case DType::kFloat32: case DType::kInt32: case DType::kUint32: return 4;
    case DType::kInt64: case DType::kFloat64: case DType::kUint64: case DType::kComplex64: return 8;
    case DType::kComplex128: return 16;
    default: return 0;
  }
}

struct TensorPlan::Impl {
  std::vector<Candidate> candidates;
  double bound_bits = 0;
  std::vector<std::pair<StreamKind, const Histogram*>> stream_counts;  // into the candidates' pieces
  bool written = false;

  size_t Best(const SharedTableMap* shared) const {
    size_t best = 0;
    uint64_t bytes = UINT64_MAX;
    for (size_t i = 0; i < candidates.size(); ++i) {
      const uint64_t b = candidates[i].Bytes(shared, nullptr);
      if (b < bytes) {
        bytes = b;
        best = i;
      }
    }
    return best;
  }
};

TensorPlan::TensorPlan(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorPlan::TensorPlan(TensorPlan&&) noexcept = default;
TensorPlan& TensorPlan::operator=(TensorPlan&&) noexcept = default;
TensorPlan::~TensorPlan() = default;

const std::vector<std::pair<StreamKind, const Histogram*>>& TensorPlan::stream_counts() const { return impl_->stream_counts; }

TensorPlan::Sizing TensorPlan::Size(const SharedTableMap* shared) const {
  Sizing s;
  const Candidate& best = impl_->candidates[impl_->Best(shared)];
  s.bytes = best.Bytes(shared, &s.savings);
  s.encoder = best.encoder();
  return s;
}

EncodedTensor TensorPlan::Write(const SharedTableMap* shared) {
  if (impl_->written) std::abort();  // pieces were finalised by the first Write
  impl_->written = true;
  Candidate& best = impl_->candidates[impl_->Best(shared)];
  EncodedTensor out;
  out.encoder = best.encoder();
  out.bound_bits = impl_->bound_bits;
  best.Write(shared, &out);
  return out;
}

TensorPlan PlanTensor(int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> packed,
                      const EncodeOptions& options, bool keep_all) {
  const size_t es = ElementBytes(dtype);
  const Transform t = TransformFor(dtype);
  const size_t n = es ? packed.size() / es : 0;
  // Histograms the order-0 bound is computed from: for single bytes the
  // whole stream's, otherwise the planes candidate's (transformed as the
  // bound transforms them).
  std::vector<Histogram> bound_counts;
  auto keep_counts = [&](const Candidate& c, size_t streams) {
    for (size_t k = streams; k-- > 0;) {
      const StreamPlan& p = c.PlanFromEnd(k);
      if (!p.counted) return;
      bound_counts.push_back(p.counts);
    }
  };
  auto impl = std::make_unique<TensorPlan::Impl>();
  std::vector<uint8_t> nz;
  size_t zeros = 0;
  const bool sparse = options.try_sparse && n > 0;
  if (sparse) {
    nz = NonzeroMask(packed, es);
    zeros = n - static_cast<size_t>(std::count(nz.begin(), nz.end(), uint8_t{1}));
  }
  // The candidates that code zero positions come first: on a sparse tensor
  // they are usually far smaller, and what they take bounds the zstd runs
  // the whole and planes candidates are worth (StreamOptions.zstd_worth_below).
  std::vector<Candidate> coded;
  uint64_t smallest_coded = UINT64_MAX;
  // Below one zero in eight, position coding costs more than it saves.
  if (sparse && zeros * 8 >= n) {
    // Gaps and bitmap share the values (and their pieces) and differ only
    // in the position stream.
    Nonzeros z = GatherNonzeros(packed, nz, es, n - zeros);
    Candidate gaps(Encoder::kSparseGaps), bitmap(Encoder::kSparseBitmap), values(Encoder::kPlanes);
    gaps.Stream(gaps.Own(std::move(z.gaps)), options.stream, Kind(kKindGaps));
    bitmap.Stream(bitmap.Own(std::move(z.bitmap)), options.stream, Kind(kKindBitmap));
    AddPlanes(z.values, es, t, options.stream, kKindValuePlane, dtype, &values);
    for (const Candidate* part : {&gaps, &bitmap, &values}) {
      if (keep_all) part->Counts(&impl->stream_counts);
    }
    for (const Candidate* positions : {&gaps, &bitmap}) {
      Candidate c(positions->encoder());
      c.Varint(n - zeros);
      c.Append(*positions);
      c.Append(values);
      coded.push_back(std::move(c));
    }
    // N:M along any axis whose groups of 4 hold at most 2 nonzeros (e.g.
    // 2:4 pruning along the reduction axis); the group pattern is cheaper
    // than a bitmap.
    for (size_t axis = 0; axis < shape.size(); ++axis) {
      Groups g;
      if (!SplitAxis(shape, axis, 4, &g) || !AtMostTwoOfFour(g, nz)) continue;
      Candidate c(Encoder::kNM);
      c.Byte(static_cast<uint8_t>(axis));
      AddNM(packed, nz, es, t, g, options.stream, dtype, &c);
      if (keep_all) c.Counts(&impl->stream_counts);
      coded.push_back(std::move(c));
    }
    for (const Candidate& c : coded) smallest_coded = std::min(smallest_coded, c.bytes());
  }
  // Multi-byte elements: on a large tensor, Huffman coding the interleaved
  // bytes never beats coding each byte plane, so the whole stream only
  // tries zstd (which can win on repeated structure) and raw.
  StreamOptions unpositioned = options.stream;
  unpositioned.zstd_worth_below = smallest_coded;
  StreamOptions whole = unpositioned;
  if (es > 1 && packed.size() >= kWholeHuffmanUpTo) whole.try_huffman = false;
  std::vector<Candidate>& candidates = impl->candidates;
  candidates.emplace_back(Encoder::kWhole);
  candidates[0].Stream(packed, whole, Kind(kKindWhole, static_cast<uint32_t>(dtype)));
  if (es == 1) keep_counts(candidates[0], 1);
  if (keep_all) candidates[0].Counts(&impl->stream_counts);
  // Without keep_all only the smallest candidate so far is kept.
  auto consider = [&](Candidate c) {
    if (keep_all) {
      candidates.push_back(std::move(c));
    } else if (c.bytes() < candidates[0].bytes()) {
      candidates[0] = std::move(c);
    }
  };
  if (es > 1 || t != Transform::kNone) {
    Candidate c(Encoder::kPlanes);
    AddPlanes(packed, es, t, unpositioned, kKindPlane, dtype, &c);
    if (es > 1) keep_counts(c, es);
    if (keep_all) c.Counts(&impl->stream_counts);
    consider(std::move(c));
  }
  for (Candidate& c : coded) consider(std::move(c));
  // A zero element is byte 0 in every plane after any transform, so the
  // nonzero elements' planes are the counted histograms less `zeros` at 0.
  double bound_bits = 0;
  if (sparse && bound_counts.size() == es) {
    bound_bits = BinaryEntropyBits(n - zeros, n);
    for (Histogram& h : bound_counts) {
      h[0] -= zeros;
      bound_bits += EntropyBits(h);
    }
  } else {
    bound_bits = EntropyBoundBits(dtype, std::as_bytes(packed));
  }
  impl->bound_bits = bound_bits;
  return TensorPlan(std::move(impl));
}

EncodedTensor EncodeTensor(int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> packed,
                           const EncodeOptions& options) {
  return PlanTensor(dtype, shape, packed, options, false).Write(nullptr);
}

bool DecodeTensor(Encoder encoder, int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> payload,
                  std::span<uint8_t> out, std::string* error, std::string* detail, const SharedTables* tables) {
  const size_t es = ElementBytes(dtype);
  if (es == 0 || out.size() % es != 0) {
    *error = "data type " + std::to_string(dtype) + " cannot be decoded";
    return false;
  }
  switch (encoder) {
    case Encoder::kWhole: {
      StreamMode m{};
      if (!DecodeStream(&payload, out, error, &m, StreamContext{tables})) return false;
      if (detail) *detail = StreamModeName(m);
      break;
    }
    case Encoder::kPlanes: {
      std::string d;
      if (!DecodePlanes(&payload, es, out, error, detail ? &d : nullptr, tables)) return false;
      if (detail) *detail = "planes:" + d;
      break;
    }
    case Encoder::kSparseGaps:
    case Encoder::kSparseBitmap:
    case Encoder::kNM: return DecodeSparse(encoder, payload, es, shape, out, error, detail, tables);
    default: *error = "encoder " + std::to_string(static_cast<int>(encoder)) + " is unknown"; return false;
  }
  if (!payload.empty()) {
    *error = std::to_string(payload.size()) + " bytes follow the encoded tensor";
    return false;
  }
  return true;
}

}  // namespace modelpress::pack
