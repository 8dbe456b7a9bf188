#include "codec/tensor_codec.h"

#include <algorithm>
#include <cstring>

#include "modelpress/tensor.h"

namespace modelpress::pack {
namespace {

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

uint64_t LoadElem(const uint8_t* p, size_t es) {
  uint64_t v = 0;
  std::memcpy(&v, p, es);
  return v;
}

void StoreElem(uint8_t* p, size_t es, uint64_t v) { std::memcpy(p, &v, es); }

uint64_t Forward(Transform t, uint64_t v, int bits) {
  const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  switch (t) {
    case Transform::kNone: return v;
    case Transform::kRotateSign: return ((v << 1) | (v >> (bits - 1))) & mask;
    case Transform::kZigZag: {
      const uint64_t sign = (v >> (bits - 1)) & 1;
      return ((v << 1) ^ (sign ? mask : 0)) & mask;
    }
  }
  return v;
}

uint64_t Inverse(Transform t, uint64_t v, int bits) {
  const uint64_t mask = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  switch (t) {
    case Transform::kNone: return v;
    case Transform::kRotateSign: return ((v >> 1) | (v << (bits - 1))) & mask;
    case Transform::kZigZag: return ((v >> 1) ^ ((v & 1) ? mask : 0)) & mask;
  }
  return v;
}

// Appends the transform byte and one stream per byte plane of `elems`.
void EncodePlanes(std::span<const uint8_t> elems, size_t es, Transform t, const StreamOptions& so,
                  std::vector<uint8_t>* out) {
  if (es > 8) t = Transform::kNone;
  out->push_back(static_cast<uint8_t>(t));
  const size_t n = elems.size() / es;
  std::vector<uint8_t> planes(elems.size());
  const int bits = static_cast<int>(es * 8);
  for (size_t i = 0; i < n; ++i) {
    if (t == Transform::kNone) {
      for (size_t k = 0; k < es; ++k) planes[k * n + i] = elems[i * es + k];
    } else {
      const uint64_t v = Forward(t, LoadElem(&elems[i * es], es), bits);
      for (size_t k = 0; k < es; ++k) planes[k * n + i] = static_cast<uint8_t>(v >> (8 * k));
    }
  }
  for (size_t k = 0; k < es; ++k) EncodeStream(std::span(planes).subspan(k * n, n), so, out);
}

bool DecodePlanes(std::span<const uint8_t>* in, size_t es, std::span<uint8_t> out, std::string* error,
                  std::string* detail) {
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
  std::vector<uint8_t> planes(out.size());
  for (size_t k = 0; k < es; ++k) {
    StreamMode m{};
    if (!DecodeStream(in, std::span(planes).subspan(k * n, n), error, &m)) {
      *error = "byte plane " + std::to_string(k) + ": " + *error;
      return false;
    }
    if (detail) *detail += std::string(k ? "," : "") + StreamModeName(m);
  }
  const int bits = static_cast<int>(es * 8);
  const Transform tr = static_cast<Transform>(t);
  for (size_t i = 0; i < n; ++i) {
    if (tr == Transform::kNone) {
      for (size_t k = 0; k < es; ++k) out[i * es + k] = planes[k * n + i];
    } else {
      uint64_t v = 0;
      for (size_t k = 0; k < es; ++k) v |= static_cast<uint64_t>(planes[k * n + i]) << (8 * k);
      StoreElem(&out[i * es], es, Inverse(tr, v, bits));
    }
  }
  return true;
}

bool IsZeroElem(const uint8_t* p, size_t es) {
  for (size_t k = 0; k < es; ++k) {
    if (p[k]) return false;
  }
  return true;
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

void EncodeSparse(Encoder which, std::span<const uint8_t> packed, size_t es, Transform t, const Groups* groups,
                  const StreamOptions& so, std::vector<uint8_t>* out) {
  const size_t n = packed.size() / es;
  std::vector<uint8_t> values, positions;
  values.reserve(packed.size() / 4);
  auto take = [&](size_t i) { values.insert(values.end(), &packed[i * es], &packed[i * es] + es); };
  if (which == Encoder::kSparseGaps) {
    size_t gap = 0;
    for (size_t i = 0; i < n; ++i) {
      if (IsZeroElem(&packed[i * es], es)) {
        ++gap;
        continue;
      }
      for (; gap >= 255; gap -= 255) positions.push_back(255);
      positions.push_back(static_cast<uint8_t>(gap));
      gap = 0;
      take(i);
    }
  } else if (which == Encoder::kSparseBitmap) {
    positions.assign((n + 7) / 8, 0);
    for (size_t i = 0; i < n; ++i) {
      if (!IsZeroElem(&packed[i * es], es)) {
        positions[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
        take(i);
      }
    }
  } else {
    out->push_back(static_cast<uint8_t>(groups->m));
    ForEachGroup(*groups, [&](const uint64_t* idx) {
      uint8_t mask = 0;
      for (uint64_t j = 0; j < groups->m; ++j) {
        if (!IsZeroElem(&packed[idx[j] * es], es)) {
          mask |= static_cast<uint8_t>(1u << j);
          take(idx[j]);
        }
      }
      positions.push_back(mask);
    });
  }
  PutVarint(values.size() / es, out);
  EncodeStream(positions, so, out);
  EncodePlanes(values, es, t, so, out);
}

bool DecodeSparse(Encoder which, std::span<const uint8_t> in, size_t es, std::span<const int64_t> shape,
                  std::span<uint8_t> out, std::string* error, std::string* detail) {
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
  if (!DecodeStream(&in, positions, error, &pm)) {
    *error = "positions: " + *error;
    return false;
  }
  std::vector<uint8_t> values(nnz * es);
  std::string vdetail;
  if (!DecodePlanes(&in, es, values, error, detail ? &vdetail : nullptr)) {
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

EncodedTensor EncodeTensor(int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> packed,
                           const EncodeOptions& options) {
  const size_t es = ElementBytes(dtype);
  const Transform t = TransformFor(dtype);
  EncodedTensor best;
  EncodeStream(packed, options.stream, &best.payload);
  auto consider = [&](Encoder e, std::vector<uint8_t> payload) {
    if (payload.size() < best.payload.size()) best = {e, std::move(payload)};
  };
  if (es > 1 || t != Transform::kNone) {
    std::vector<uint8_t> p;
    EncodePlanes(packed, es, t, options.stream, &p);
    consider(Encoder::kPlanes, std::move(p));
  }
  const size_t n = es ? packed.size() / es : 0;
  if (!options.try_sparse || n == 0) return best;
  size_t zeros = 0;
  for (size_t i = 0; i < n; ++i) zeros += IsZeroElem(&packed[i * es], es);
  // Below one zero in eight, position coding costs more than it saves.
  if (zeros * 8 < n) return best;
  for (Encoder e : {Encoder::kSparseGaps, Encoder::kSparseBitmap}) {
    std::vector<uint8_t> p;
    EncodeSparse(e, packed, es, t, nullptr, options.stream, &p);
    consider(e, std::move(p));
  }
  // N:M along any axis whose groups of 4 hold at most 2 nonzeros (e.g. 2:4
  // pruning along the reduction axis); the group pattern is cheaper than a bitmap.
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    Groups g;
    if (!SplitAxis(shape, axis, 4, &g)) continue;
    bool fits = true;
    ForEachGroup(g, [&](const uint64_t* idx) {
      int nz = 0;
      for (int j = 0; j < 4; ++j) nz += !IsZeroElem(&packed[idx[j] * es], es);
      fits = fits && nz <= 2;
    });
    if (!fits) continue;
    std::vector<uint8_t> p{static_cast<uint8_t>(axis)};
    EncodeSparse(Encoder::kNM, packed, es, t, &g, options.stream, &p);
    consider(Encoder::kNM, std::move(p));
  }
  return best;
}

bool DecodeTensor(Encoder encoder, int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> payload,
                  std::span<uint8_t> out, std::string* error, std::string* detail) {
  const size_t es = ElementBytes(dtype);
  if (es == 0 || out.size() % es != 0) {
    *error = "data type " + std::to_string(dtype) + " cannot be decoded";
    return false;
  }
  switch (encoder) {
    case Encoder::kWhole: {
      StreamMode m{};
      if (!DecodeStream(&payload, out, error, &m)) return false;
      if (detail) *detail = StreamModeName(m);
      break;
    }
    case Encoder::kPlanes: {
      std::string d;
      if (!DecodePlanes(&payload, es, out, error, detail ? &d : nullptr)) return false;
      if (detail) *detail = "planes:" + d;
      break;
    }
    case Encoder::kSparseGaps:
    case Encoder::kSparseBitmap:
    case Encoder::kNM: return DecodeSparse(encoder, payload, es, shape, out, error, detail);
    default: *error = "encoder " + std::to_string(static_cast<int>(encoder)) + " is unknown"; return false;
  }
  if (!payload.empty()) {
    *error = std::to_string(payload.size()) + " bytes follow the encoded tensor";
    return false;
  }
  return true;
}

}  // namespace modelpress::pack
