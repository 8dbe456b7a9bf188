// Tensor encoders: every one is lossless, and the chosen one is the smallest.
#include "codec/tensor_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "modelpress/tensor.h"

namespace modelpress::pack {
namespace {

constexpr int32_t kF32 = static_cast<int32_t>(DType::kFloat32);
constexpr int32_t kI8 = static_cast<int32_t>(DType::kInt8);

template <class T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::vector<uint8_t> Decode(const EncodedTensor& e, int32_t dtype, const std::vector<int64_t>& shape, size_t bytes) {
  std::vector<uint8_t> out(bytes, 0xAB);
  std::string error;
  EXPECT_TRUE(DecodeTensor(e.encoder, dtype, shape, e.payload, out, &error)) << error;
  return out;
}

// A 90%-sparse int8 tensor like a pruned, quantized weight.
std::vector<int8_t> SparseInt8(size_t n, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> w(0, 30);
  std::bernoulli_distribution keep(density);
  std::vector<int8_t> v(n, 0);
  for (auto& x : v) {
    if (keep(rng)) {
      int q = static_cast<int>(std::nearbyint(w(rng)));
      q = std::clamp(q, -127, 127);
      x = static_cast<int8_t>(q == 0 ? 1 : q);
    }
  }
  return v;
}

TEST(TensorCodec, EveryEncoderRoundTripsFloatsBitForBit) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0, 0.05f);
  std::vector<float> v(4096);
  for (auto& x : v) x = d(rng);
  v[3] = -0.0f;
  v[4] = std::numeric_limits<float>::quiet_NaN();
  v[5] = std::numeric_limits<float>::infinity();
  v[6] = std::numeric_limits<float>::denorm_min();
  for (size_t i = 100; i < 3000; ++i) v[i] = 0;  // enough zeros for the sparse encoders to be tried
  const std::vector<int64_t> shape{64, 64};
  const auto bytes = Bytes(v);
  EncodeOptions o;
  const EncodedTensor e = EncodeTensor(kF32, shape, bytes, o);
  EXPECT_EQ(Decode(e, kF32, shape, bytes.size()), bytes);
  EXPECT_LT(e.payload.size(), bytes.size());
}

TEST(TensorCodec, SparseInt8IsWithinThreePercentOfTheOrder0Bound) {
  const auto v = SparseInt8(1 << 18, 0.1, 5);
  const std::vector<int64_t> shape{512, 512};
  const auto bytes = Bytes(v);
  const EncodedTensor e = EncodeTensor(kI8, shape, bytes, {});
  EXPECT_EQ(Decode(e, kI8, shape, bytes.size()), bytes);
  EXPECT_TRUE(e.encoder == Encoder::kSparseGaps || e.encoder == Encoder::kSparseBitmap) << EncoderName(e.encoder);
  const double bound_bytes = EntropyBoundBits(kI8, std::as_bytes(std::span(bytes))) / 8;
  EXPECT_LT(static_cast<double>(e.payload.size()), bound_bytes * 1.03);
  EXPECT_GT(static_cast<double>(e.payload.size()), bound_bytes * 0.9);  // an order-0 coder cannot beat it by much
}

TEST(TensorCodec, LongZeroRunsNeedFillerGaps) {
  std::vector<int8_t> v(100000, 0);
  v[0] = 5;
  v[300] = -3;    // gap of 299: one filler
  v[99999] = 7;   // gap of ~99698: many fillers
  const std::vector<int64_t> shape{100000};
  const auto bytes = Bytes(v);
  const EncodedTensor e = EncodeTensor(kI8, shape, bytes, {});
  EXPECT_EQ(Decode(e, kI8, shape, bytes.size()), bytes);
  EXPECT_LT(e.payload.size(), 2000u);
}

TEST(TensorCodec, TwoFourSparseTensorsUseTheNMEncoderAlongTheirAxis) {
  // [out=32, in=64] with 2 of every 4 along axis 1 kept, chosen at random.
  std::mt19937 rng(3);
  std::vector<int8_t> v(32 * 64, 0);
  for (int o = 0; o < 32; ++o) {
    for (int g = 0; g < 16; ++g) {
      int a = static_cast<int>(rng() % 4), b = static_cast<int>(rng() % 3);
      if (b >= a) ++b;
      v[o * 64 + g * 4 + a] = static_cast<int8_t>(rng() % 100 + 1);
      v[o * 64 + g * 4 + b] = static_cast<int8_t>(-(static_cast<int>(rng() % 100) + 1));
    }
  }
  const std::vector<int64_t> shape{32, 64};
  const auto bytes = Bytes(v);
  const EncodedTensor e = EncodeTensor(kI8, shape, bytes, {});
  EXPECT_EQ(Decode(e, kI8, shape, bytes.size()), bytes);
  EXPECT_EQ(e.encoder, Encoder::kNM);
  EXPECT_EQ(e.payload[0], 1);  // axis 1
}

TEST(TensorCodec, AllEncodersRoundTripOnEveryDtypeWidth) {
  std::mt19937 rng(9);
  for (DType t : {DType::kInt8, DType::kUint8, DType::kFloat16, DType::kBfloat16, DType::kInt16, DType::kInt32,
                  DType::kFloat32, DType::kInt64, DType::kFloat64, DType::kComplex128, DType::kBool}) {
    const int32_t dt = static_cast<int32_t>(t);
    const size_t es = ElementBytes(dt);
    ASSERT_GT(es, 0u);
    for (double density : {1.0, 0.5, 0.1, 0.0}) {
      std::vector<uint8_t> bytes(1000 * es, 0);
      std::bernoulli_distribution keep(density);
      for (size_t i = 0; i < 1000; ++i) {
        if (!keep(rng)) continue;
        for (size_t k = 0; k < es; ++k) bytes[i * es + k] = static_cast<uint8_t>(rng() % (k == 0 ? 256 : 4));
        if (t == DType::kBool) bytes[i] = 1;
      }
      const std::vector<int64_t> shape{10, 100};
      const EncodedTensor e = EncodeTensor(dt, shape, bytes, {});
      EXPECT_EQ(Decode(e, dt, shape, bytes.size()), bytes) << DTypeName(t) << " density " << density;
    }
  }
}

// The encoder derives the bound from the histograms it counted anyway; it
// must be exactly the bound the reader computes from the elements.
TEST(TensorCodec, EncoderBoundEqualsTheReadersBound) {
  std::mt19937 rng(21);
  for (DType t : {DType::kInt8, DType::kUint8, DType::kFloat16, DType::kInt32, DType::kFloat32, DType::kInt64,
                  DType::kComplex128}) {
    const int32_t dt = static_cast<int32_t>(t);
    const size_t es = ElementBytes(dt);
    for (size_t n : {size_t{1000}, size_t{20000}}) {  // 20000 elements of 4+ bytes exceed the whole-stream Huffman limit
      for (double density : {1.0, 0.9, 0.1, 0.0}) {
        for (bool constant : {false, true}) {
          std::vector<uint8_t> bytes(n * es, 0);
          std::bernoulli_distribution keep(density);
          for (size_t i = 0; i < n; ++i) {
            if (!keep(rng)) continue;
            for (size_t k = 0; k < es; ++k) bytes[i * es + k] = constant ? 7 : static_cast<uint8_t>(rng() % (k ? 3 : 256));
          }
          const std::vector<int64_t> shape{static_cast<int64_t>(n)};
          const double expected = EntropyBoundBits(dt, std::as_bytes(std::span(bytes)));
          for (bool sparse : {true, false}) {
            EncodeOptions o;
            o.try_sparse = sparse;
            o.stream.zstd_level = 3;  // the level does not change the bound
            const EncodedTensor e = EncodeTensor(dt, shape, bytes, o);
            EXPECT_EQ(e.bound_bits, expected) << DTypeName(t) << " n " << n << " density " << density << " constant "
                                              << constant << " sparse " << sparse;
          }
        }
      }
    }
  }
}

TEST(TensorCodec, DecoderRejectsDamagedPayloadsWithoutCrashing) {
  const auto v = SparseInt8(20000, 0.1, 8);
  const std::vector<int64_t> shape{200, 100};
  const auto bytes = Bytes(v);
  const EncodedTensor e = EncodeTensor(kI8, shape, bytes, {});
  std::mt19937 rng(4);
  int failures = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto p = e.payload;
    p[rng() % p.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    if (trial % 3 == 0) p.resize(rng() % p.size());
    std::vector<uint8_t> out(bytes.size());
    std::string error;
    if (!DecodeTensor(e.encoder, kI8, shape, p, out, &error)) {
      EXPECT_FALSE(error.empty());
      ++failures;
    }
  }
  // Most damage is caught by the structure alone (the artifact's checksums catch the rest).
  EXPECT_GT(failures, 50);
}

TEST(TensorCodec, EntropyBoundOfKnownSources) {
  // Half zeros, the rest two equally likely values: 1 bit of mask per element
  // plus 1 bit per nonzero.
  std::vector<int8_t> v;
  for (int i = 0; i < 1000; ++i) v.push_back(i % 2 ? 0 : (i % 4 ? 3 : -3));
  const double bits = EntropyBoundBits(kI8, std::as_bytes(std::span(v)));
  EXPECT_NEAR(bits, 1000 + 500, 1e-6);
}

}  // namespace
}  // namespace modelpress::pack
