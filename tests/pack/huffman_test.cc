// The Huffman coder's stages, each against an independent reference.
#include "entropy/huffman.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <queue>
#include <random>

namespace modelpress::pack {
namespace {

uint32_t Kraft(const CodeLengths& l, int max_bits) {
  uint32_t k = 0;
  for (uint8_t x : l) {
    if (x) k += 1u << (max_bits - x);
  }
  return k;
}

// Unlimited Huffman's total bits, by the classic merge of the two lightest.
uint64_t UnlimitedHuffmanBits(const Histogram& h) {
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> q;
  for (uint64_t c : h) {
    if (c) q.push(c);
  }
  uint64_t bits = 0;
  while (q.size() > 1) {
    const uint64_t a = q.top();
    q.pop();
    const uint64_t b = q.top();
    q.pop();
    bits += a + b;
    q.push(a + b);
  }
  return bits;
}

std::vector<uint8_t> Geometric(size_t n, double p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> d(p);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(std::min(d(rng), 255));
  return v;
}

TEST(Huffman, LengthsAreOptimalWhenTheLimitDoesNotBind) {
  const auto data = Geometric(100000, 0.3, 1);
  const Histogram h = CountBytes(data);
  CodeLengths l{};
  ASSERT_TRUE(BuildCodeLengths(h, 16, &l));
  EXPECT_EQ(Kraft(l, 16), 1u << 16);
  EXPECT_EQ(EncodedBits(h, l), UnlimitedHuffmanBits(h));
}

TEST(Huffman, LimitedLengthsRespectTheLimitAndStayComplete) {
  // Fibonacci-like counts force a deep unlimited tree.
  Histogram h{};
  uint64_t a = 1, b = 1;
  for (int s = 0; s < 30; ++s) {
    h[s] = a;
    const uint64_t c = a + b;
    a = b;
    b = c;
  }
  for (int max_bits : {5, 8, kHuffmanMaxBits}) {
    CodeLengths l{};
    ASSERT_TRUE(BuildCodeLengths(h, max_bits, &l));
    for (int s = 0; s < 256; ++s) {
      EXPECT_LE(l[s], max_bits);
      EXPECT_EQ(l[s] != 0, h[s] != 0) << s;
    }
    EXPECT_EQ(Kraft(l, max_bits), 1u << max_bits) << max_bits;
    EXPECT_GE(EncodedBits(h, l), UnlimitedHuffmanBits(h));
  }
  CodeLengths l5{}, l8{};
  ASSERT_TRUE(BuildCodeLengths(h, 5, &l5));
  ASSERT_TRUE(BuildCodeLengths(h, 8, &l8));
  EXPECT_GE(EncodedBits(h, l5), EncodedBits(h, l8));  // a looser limit never costs more
}

TEST(Huffman, RefusesFewerThanTwoSymbolsOrTooManyForTheLimit) {
  Histogram h{};
  CodeLengths l{};
  EXPECT_FALSE(BuildCodeLengths(h, 11, &l));
  h[7] = 10;
  EXPECT_FALSE(BuildCodeLengths(h, 11, &l));
  for (int s = 0; s < 256; ++s) h[s] = 1;
  EXPECT_FALSE(BuildCodeLengths(h, 7, &l));  // 256 symbols need 8 bits
  EXPECT_TRUE(BuildCodeLengths(h, 8, &l));
}

TEST(Huffman, EncodedSizeMeetsGallagersRedundancyBound) {
  // Huffman's redundancy is below p_max + 0.086 bits per symbol (Gallager
  // 1978); the 11-bit limit must not push it over on weight-like data.
  for (double p : {0.1, 0.3, 0.6}) {
    const auto data = Geometric(200000, p, 2);
    const Histogram h = CountBytes(data);
    CodeLengths l{};
    ASSERT_TRUE(BuildCodeLengths(h, kHuffmanMaxBits, &l));
    const double n = static_cast<double>(data.size());
    const double pmax = static_cast<double>(*std::max_element(h.begin(), h.end())) / n;
    EXPECT_LT(static_cast<double>(EncodedBits(h, l)), EntropyBits(h) + n * (pmax + 0.086)) << p;
    EXPECT_GE(static_cast<double>(EncodedBits(h, l)), EntropyBits(h));
  }
}

TEST(Huffman, TableDecoderMatchesReferenceAndInput) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    const size_t n = rng() % 5000 + 1;
    auto data = Geometric(n, 0.05 + 0.04 * (seed % 10), seed);
    data.push_back(static_cast<uint8_t>(rng()));  // at least two symbols usually
    data.push_back(static_cast<uint8_t>(data[0] + 1));
    const Histogram h = CountBytes(data);
    CodeLengths l{};
    ASSERT_TRUE(BuildCodeLengths(h, kHuffmanMaxBits, &l));
    std::vector<uint8_t> table;
    WriteTable(l, &table);
    EXPECT_EQ(table.size(), TableBytes(l));
    std::span<const uint8_t> in = table;
    CodeLengths back{};
    std::string error;
    ASSERT_TRUE(ReadTable(&in, &back, &error)) << error;
    EXPECT_TRUE(in.empty());
    EXPECT_EQ(back, l);
    std::vector<uint8_t> bits;
    HuffmanEncode(data, l, &bits);
    EXPECT_EQ(bits.size(), (EncodedBits(h, l) + 7) / 8);
    std::vector<uint8_t> fast(data.size()), ref(data.size());
    ASSERT_TRUE(HuffmanDecoder(back).Decode(bits, fast, &error)) << error;
    ASSERT_TRUE(HuffmanDecodeReference(bits, back, ref, &error)) << error;
    EXPECT_EQ(fast, data) << "seed " << seed;
    EXPECT_EQ(ref, data) << "seed " << seed;
  }
}

TEST(Huffman, LaneDecoderMatchesReferenceOnEverySlice) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{3}, size_t{4}, size_t{7}, size_t{61}, size_t{1000}, size_t{4097}, size_t{30001}}) {
    auto data = Geometric(n, 0.15, static_cast<uint32_t>(n) + 1);
    data.resize(std::max<size_t>(n, 0));
    Histogram h = CountBytes(data);
    h[0] += 1;  // at least two symbols in the table
    h[1] += 1;
    CodeLengths l{};
    ASSERT_TRUE(BuildCodeLengths(h, kHuffmanMaxBits, &l));
    std::vector<std::vector<uint8_t>> bits(kHuffmanLanes);
    LaneSpans lanes;
    for (int j = 0; j < kHuffmanLanes; ++j) {
      const std::span<const uint8_t> slice(data.data() + LaneStart(n, j), LaneStart(n, j + 1) - LaneStart(n, j));
      HuffmanEncode(slice, l, &bits[j]);
      lanes[j] = bits[j];
      std::vector<uint8_t> ref(slice.size());
      std::string error;
      ASSERT_TRUE(HuffmanDecodeReference(bits[j], l, ref, &error)) << error;
      EXPECT_TRUE(std::equal(ref.begin(), ref.end(), slice.begin())) << n << " lane " << j;
    }
    EXPECT_EQ(LaneStart(n, kHuffmanLanes), n);
    std::vector<uint8_t> out(n, 0xAB);
    std::string error;
    ASSERT_TRUE(HuffmanDecoder(l).DecodeLanes(lanes, out, &error)) << error;
    EXPECT_EQ(out, data) << n;
  }
}

TEST(Huffman, DecoderReportsStreamsThatEndEarly) {
  const auto data = Geometric(1000, 0.2, 3);
  const Histogram h = CountBytes(data);
  CodeLengths l{};
  ASSERT_TRUE(BuildCodeLengths(h, kHuffmanMaxBits, &l));
  std::vector<uint8_t> bits;
  HuffmanEncode(data, l, &bits);
  bits.resize(bits.size() / 2);
  std::vector<uint8_t> out(data.size());
  std::string error;
  EXPECT_FALSE(HuffmanDecoder(l).Decode(bits, out, &error));
  EXPECT_NE(error.find("ends before"), std::string::npos) << error;
  EXPECT_FALSE(HuffmanDecodeReference(bits, l, out, &error));
}

TEST(Huffman, ReadTableRejectsBadTables) {
  std::string error;
  auto read_bytes = [&](const std::vector<uint8_t>& t) {
    std::span<const uint8_t> in = t;
    CodeLengths l{};
    error.clear();
    return ReadTable(&in, &l, &error);
  };
  // WriteTable serialises whatever it is given, so it can build bad tables.
  auto table = [](std::initializer_list<std::pair<int, int>> sym_len) {
    CodeLengths l{};
    for (auto [s, n] : sym_len) l[s] = static_cast<uint8_t>(n);
    std::vector<uint8_t> t;
    WriteTable(l, &t);
    return t;
  };
  EXPECT_TRUE(read_bytes(table({{0, 1}, {1, 1}})));
  EXPECT_TRUE(read_bytes(table({{3, 2}, {9, 2}, {200, 2}, {255, 2}})));
  EXPECT_FALSE(read_bytes(table({{0, 1}, {1, 2}})));
  EXPECT_NE(error.find("incomplete"), std::string::npos) << error;
  EXPECT_FALSE(read_bytes(table({{0, 1}, {1, 1}, {2, 1}})));
  EXPECT_NE(error.find("oversubscribed"), std::string::npos) << error;
  EXPECT_FALSE(read_bytes(table({{0, 12}, {1, 1}})));
  EXPECT_NE(error.find("limit"), std::string::npos) << error;
  EXPECT_FALSE(read_bytes(table({{7, 1}})));  // one symbol only
  auto t = table({{0, 2}, {100, 2}, {101, 2}, {250, 2}});
  EXPECT_FALSE(read_bytes(std::vector<uint8_t>(t.begin(), t.end() - 1)));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  EXPECT_FALSE(read_bytes({}));
  // Steps below zero: symbol 0 has length 0, then "one less".
  EXPECT_FALSE(read_bytes({1, 0x20}));
  EXPECT_NE(error.find("below 0"), std::string::npos) << error;
  // Nonzero pad bits after the last field.
  auto padded = table({{0, 1}, {1, 1}});
  padded.back() |= 0x80;
  EXPECT_FALSE(read_bytes(padded));
  EXPECT_NE(error.find("pad"), std::string::npos) << error;
}

}  // namespace
}  // namespace modelpress::pack
