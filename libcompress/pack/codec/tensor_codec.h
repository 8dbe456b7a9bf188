// Tensor encoders: turn one tensor's packed little-endian elements into a
// payload and back. Each encoder is lossless; EncodeTensor tries those that
// apply and keeps the smallest. Payload layouts are in docs/artifact_format.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "container/stream.h"
#include "modelpress/pack_reader.h"

namespace modelpress::pack {

// Bytes per element of an ONNX data type the artifact can hold, or 0
// (string, sub-byte and unknown types stay in the graph skeleton).
size_t ElementBytes(int32_t dtype);

// Reversible per-element transforms applied before splitting byte planes.
enum class Transform : uint8_t {
  kNone = 0,
  kRotateSign = 1,  // floats: rotate left by one bit so the exponent fills the top byte and the sign the bottom bit
  kZigZag = 2,      // signed integers: (v << 1) ^ (v >> (bits-1)), so small magnitudes have zero high bytes
};

// The transform the planes encoder applies to elements of `dtype`.
Transform TransformFor(int32_t dtype);

// The transform of one element held in U (1, 2, 4 or 8 bytes).
template <class U>
constexpr U ApplyTransform(Transform t, U v) {
  constexpr int kBits = sizeof(U) * 8;
  switch (t) {
    case Transform::kNone: return v;
    case Transform::kRotateSign: return static_cast<U>(v << 1 | v >> (kBits - 1));
    case Transform::kZigZag: return static_cast<U>((v << 1) ^ static_cast<U>(0 - (v >> (kBits - 1))));
  }
  return v;
}

// What a stream of a payload holds, as a key shared tables are chosen by:
// streams of the same kind in different tensors tend to share statistics
// (e.g. the gap symbols of two 90%-sparse tensors, or the nonzero values of
// two int8 weight tensors).
using StreamKind = uint32_t;

// Shared tables on offer, by the kind of stream they are for. Their ids are
// the artifact's.
using SharedTableMap = std::map<StreamKind, SharedTableRef>;

struct EncodeOptions {
  StreamOptions stream;          // per-stream choices (zstd level)
  bool try_sparse = true;        // consider the zero-position encoders (default true)
};

struct EncodedTensor {
  Encoder encoder = Encoder::kWhole;  // the winner
  std::vector<uint8_t> payload;       // its bytes
  double bound_bits = 0;              // the tensor's order-0 bound, as EntropyBoundBits gives it
  // For each of its streams coded with a shared table: the table's id and
  // the bytes it saved against the stream's best other mode.
  std::vector<std::pair<uint32_t, uint64_t>> shared_savings;
};

// The candidate payloads of one tensor, sized but not yet written, so that
// shared tables can be chosen across tensors before any of them is written.
class TensorPlan {
 public:
  struct Impl;
  explicit TensorPlan(std::unique_ptr<Impl> impl);
  TensorPlan(TensorPlan&&) noexcept;
  TensorPlan& operator=(TensorPlan&&) noexcept;
  ~TensorPlan();

  // The histograms of the candidates' streams that were counted (all short
  // ones), by kind: what shared tables are built from. Empty unless planned
  // with keep_all. They point into the plan, valid while it lives.
  const std::vector<std::pair<StreamKind, const Histogram*>>& stream_counts() const;

  // The bytes of the smallest candidate with the tables of `shared` taken
  // wherever they are smaller, and what each table saves in it (by id).
  struct Sizing {
    uint64_t bytes = 0;
    Encoder encoder = Encoder::kWhole;
    std::vector<std::pair<uint32_t, uint64_t>> savings;
  };
  Sizing Size(const SharedTableMap* shared) const;

  // Writes the smallest candidate, as Size chose it. Only once.
  EncodedTensor Write(const SharedTableMap* shared);

 private:
  std::unique_ptr<Impl> impl_;
};

// Plans every encoder that applies. `packed` holds element_count *
// ElementBytes(dtype) bytes and must outlive the plan; `shape` its
// dimensions. With keep_all, every candidate is kept (for shared tables);
// otherwise only the smallest.
TensorPlan PlanTensor(int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> packed,
                      const EncodeOptions& options, bool keep_all);

// PlanTensor then Write without shared tables.
EncodedTensor EncodeTensor(int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> packed,
                           const EncodeOptions& options);

// Decodes a payload into `out` (exactly element_count * ElementBytes(dtype)
// bytes, already checked by the caller). Never writes outside `out` and
// allocates at most out.size() bytes of scratch. `detail`, when given,
// receives the modes of the streams, e.g. "gaps:huff values:huff".
// `tables`: the artifact's shared code tables (none when null).
bool DecodeTensor(Encoder encoder, int32_t dtype, std::span<const int64_t> shape, std::span<const uint8_t> payload,
                  std::span<uint8_t> out, std::string* error, std::string* detail = nullptr,
                  const SharedTables* tables = nullptr);

}  // namespace modelpress::pack
