// The byte stream: mode choice, round trips, and refusal of bad input.
#include "container/stream.h"

#include <gtest/gtest.h>

#include <random>

namespace modelpress::pack {
namespace {

std::vector<uint8_t> RoundTrip(const std::vector<uint8_t>& data, StreamMode* mode, const StreamOptions& o = {}) {
  std::vector<uint8_t> enc;
  *mode = EncodeStream(data, o, &enc);
  std::span<const uint8_t> in = enc;
  std::vector<uint8_t> out(data.size());
  std::string error;
  StreamMode seen{};
  EXPECT_TRUE(DecodeStream(&in, out, &error, &seen)) << error;
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(seen, *mode);
  return out;
}

TEST(Stream, PicksConstantRawHuffmanAndZstdWhereEachIsSmallest) {
  StreamMode m{};
  std::vector<uint8_t> same(1000, 42);
  EXPECT_EQ(RoundTrip(same, &m), same);
  EXPECT_EQ(m, StreamMode::kConstant);

  std::mt19937 rng(7);
  std::vector<uint8_t> noise(4096);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(RoundTrip(noise, &m), noise);
  EXPECT_EQ(m, StreamMode::kRaw);

  std::vector<uint8_t> skewed(20000);
  std::geometric_distribution<int> g(0.3);
  for (auto& b : skewed) b = static_cast<uint8_t>(std::min(g(rng), 255));
  EXPECT_EQ(RoundTrip(skewed, &m), skewed);
  EXPECT_EQ(m, StreamMode::kHuffman);

  std::vector<uint8_t> repeated;
  for (int i = 0; i < 200; ++i) repeated.insert(repeated.end(), noise.begin(), noise.begin() + 100);
  EXPECT_EQ(RoundTrip(repeated, &m), repeated);
  EXPECT_EQ(m, StreamMode::kZstd);

  std::vector<uint8_t> empty;
  EXPECT_EQ(RoundTrip(empty, &m), empty);
}

std::vector<uint8_t> Skewed(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::geometric_distribution<int> g(0.3);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(std::min(g(rng), 255));
  return v;
}

TEST(Stream, LongHuffmanStreamsAreCodedInLanes) {
  for (uint64_t n : {kHuffmanLanesFrom - 1, kHuffmanLanesFrom, kHuffmanLanesFrom + 1, kHuffmanLanesFrom + 2,
                     kHuffmanLanesFrom + 3, uint64_t{100003}}) {
    auto data = Skewed(n, static_cast<uint32_t>(n));
    // Lanes with different statistics: the last quarter is far more skewed.
    for (size_t i = n - n / 4; i < n; ++i) data[i] = data[i] > 2 ? 0 : data[i];
    StreamOptions o;
    o.try_zstd = false;  // (zstd would take the runs of zeros)
    StreamMode m{};
    EXPECT_EQ(RoundTrip(data, &m, o), data) << n;
    EXPECT_EQ(m, n >= kHuffmanLanesFrom ? StreamMode::kHuffmanLanes : StreamMode::kHuffman) << n;
    std::vector<uint8_t> enc;
    const StreamPlan plan = PlanStream(data, o);
    WriteStream(data, plan, &enc);
    EXPECT_EQ(enc.size(), plan.bytes) << n;
  }
}

// Splits a lanes stream into its header (mode, n, table), lane sizes and lanes.
struct LanesParts {
  std::vector<uint8_t> head;
  std::vector<std::vector<uint8_t>> lanes;
  std::vector<uint8_t> Join() const {
    std::vector<uint8_t> out = head;
    for (const auto& l : lanes) PutVarint(l.size(), &out);
    for (const auto& l : lanes) out.insert(out.end(), l.begin(), l.end());
    return out;
  }
};

LanesParts SplitLanes(const std::vector<uint8_t>& enc) {
  std::span<const uint8_t> in = enc;
  in = in.subspan(1);
  uint64_t n = 0;
  EXPECT_TRUE(GetVarint(&in, &n));
  CodeLengths l{};
  std::string error;
  EXPECT_TRUE(ReadTable(&in, &l, &error)) << error;
  LanesParts parts;
  parts.head.assign(enc.begin(), enc.end() - static_cast<std::ptrdiff_t>(in.size()));
  uint64_t sizes[kHuffmanLanes];
  for (auto& b : sizes) EXPECT_TRUE(GetVarint(&in, &b));
  for (uint64_t b : sizes) {
    parts.lanes.emplace_back(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(b));
    in = in.subspan(b);
  }
  EXPECT_TRUE(in.empty());
  return parts;
}

TEST(Stream, DamagedLanesAreRefused) {
  const auto data = Skewed(50000, 3);
  std::vector<uint8_t> enc;
  ASSERT_EQ(EncodeStream(data, {}, &enc), StreamMode::kHuffmanLanes);
  auto decode = [&](const std::vector<uint8_t>& bytes) {
    std::span<const uint8_t> in = bytes;
    std::vector<uint8_t> out(data.size());
    std::string error;
    EXPECT_FALSE(DecodeStream(&in, out, &error));
    return error;
  };
  const LanesParts parts = SplitLanes(enc);
  ASSERT_EQ(parts.Join(), enc);
  for (int j = 0; j < kHuffmanLanes; ++j) {
    LanesParts p = parts;
    p.lanes[j].push_back(0);  // a byte no code needs
    EXPECT_NE(decode(p.Join()).find("past its codes"), std::string::npos) << j;
    p = parts;
    p.lanes[j].resize(p.lanes[j].size() * 3 / 4);  // codes run past the lane
    EXPECT_NE(decode(p.Join()).find("lane " + std::to_string(j)), std::string::npos) << j;
    p = parts;
    p.lanes[j].resize(100);  // fewer bytes than the lane has symbols in bits
    EXPECT_NE(decode(p.Join()).find("impossible"), std::string::npos) << j;
  }
  for (size_t cut = 0; cut < enc.size(); cut += 1 + enc.size() / 40) {
    EXPECT_FALSE(decode(std::vector<uint8_t>(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(cut))).empty());
  }
}

TEST(Stream, RefusesSizeMismatchUnknownModeAndTruncation) {
  std::vector<uint8_t> data(3000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i % 7 == 0 ? i : 0);
  std::vector<uint8_t> enc;
  EncodeStream(data, {}, &enc);
  std::string error;
  {
    std::span<const uint8_t> in = enc;
    std::vector<uint8_t> out(data.size() + 1);
    EXPECT_FALSE(DecodeStream(&in, out, &error));
    EXPECT_NE(error.find("declares"), std::string::npos) << error;
  }
  {
    auto bad = enc;
    bad[0] = 9;
    std::span<const uint8_t> in = bad;
    std::vector<uint8_t> out(data.size());
    EXPECT_FALSE(DecodeStream(&in, out, &error));
    EXPECT_NE(error.find("unknown"), std::string::npos) << error;
  }
  for (size_t cut = 0; cut < enc.size(); cut += 1 + enc.size() / 50) {
    std::span<const uint8_t> in(enc.data(), cut);
    std::vector<uint8_t> out(data.size());
    EXPECT_FALSE(DecodeStream(&in, out, &error)) << "cut at " << cut;
  }
}

TEST(Stream, ZstdFrameDeclaringMoreThanTheStreamIsRefused) {
  // A zstd stream whose frame holds more than the stream's declared size
  // (a decompression bomb) must fail without writing past the buffer.
  std::vector<uint8_t> big(1 << 20, 0);
  big[5] = 1;
  StreamOptions o;
  o.force_zstd = true;
  std::vector<uint8_t> enc;
  ASSERT_EQ(EncodeStream(big, o, &enc), StreamMode::kZstd);
  // Rewrite the declared size to 16 bytes (varint after the mode byte).
  std::vector<uint8_t> bomb{enc[0]};
  PutVarint(16, &bomb);
  std::span<const uint8_t> rest = enc;
  rest = rest.subspan(1);
  uint64_t n;
  ASSERT_TRUE(GetVarint(&rest, &n));
  bomb.insert(bomb.end(), rest.begin(), rest.end());
  std::span<const uint8_t> in = bomb;
  std::vector<uint8_t> out(16);
  std::string error;
  EXPECT_FALSE(DecodeStream(&in, out, &error));
  EXPECT_NE(error.find("zstd"), std::string::npos) << error;
}

TEST(Stream, VarintsRoundTripAndRejectOverlong) {
  for (uint64_t v : {0ull, 1ull, 127ull, 128ull, 300ull, ~0ull}) {
    std::vector<uint8_t> b;
    PutVarint(v, &b);
    std::span<const uint8_t> in = b;
    uint64_t back = 0;
    ASSERT_TRUE(GetVarint(&in, &back));
    EXPECT_EQ(back, v);
    EXPECT_TRUE(in.empty());
  }
  std::vector<uint8_t> overlong(11, 0xff);
  std::span<const uint8_t> in = overlong;
  uint64_t v;
  EXPECT_FALSE(GetVarint(&in, &v));
}

// Mode 5: a stream coded with a table the index holds costs no table bytes;
// it needs the tables to decode and a table with a code for every symbol.
TEST(Stream, SharedTablesSaveTheTableAndAreCheckedOnDecode) {
  std::mt19937 rng(3);
  std::geometric_distribution<int> g(0.3);
  std::vector<uint8_t> data(3000);
  for (auto& b : data) b = static_cast<uint8_t>(std::min(g(rng), 40));
  CodeLengths own{};
  ASSERT_TRUE(BuildCodeLengths(CountBytes(data), kHuffmanMaxBits, &own));
  const SharedTables tables = {CodeLengths{}, own};
  const SharedTableRef ref{1, &tables[1]};
  const StreamPlan alone = PlanStream(data, {});
  ASSERT_EQ(alone.mode, StreamMode::kHuffman);
  StreamPlan plan = alone;
  // The same codes, one byte of id instead of the table.
  EXPECT_EQ(SharedStreamBytes(plan, data.size(), ref), alone.bytes - TableBytes(own) + 1);
  EXPECT_EQ(OfferSharedTable(data.size(), ref, &plan), TableBytes(own) - 1);
  ASSERT_EQ(plan.mode, StreamMode::kSharedHuffman);
  EXPECT_EQ(plan.bytes, alone.bytes - TableBytes(own) + 1);
  std::vector<uint8_t> enc;
  WriteStream(data, plan, &enc);
  EXPECT_EQ(enc.size(), plan.bytes);
  std::vector<uint8_t> out(data.size());
  std::string error;
  std::span<const uint8_t> in = enc;
  StreamMode seen{};
  ASSERT_TRUE(DecodeStream(&in, out, &error, &seen, {&tables})) << error;
  EXPECT_EQ(seen, StreamMode::kSharedHuffman);
  EXPECT_EQ(out, data);
  EXPECT_TRUE(in.empty());
  // Without the tables, or with too few, the id is named.
  in = enc;
  EXPECT_FALSE(DecodeStream(&in, out, &error));
  EXPECT_NE(error.find("shared code table 1, but the index holds 0"), std::string::npos) << error;
  const SharedTables one = {own};
  in = enc;
  EXPECT_FALSE(DecodeStream(&in, out, &error, nullptr, {&one}));
  EXPECT_NE(error.find("holds 1"), std::string::npos) << error;
  // Every truncation is refused.
  for (size_t cut = 0; cut < enc.size(); ++cut) {
    std::span<const uint8_t> part = std::span(enc).first(cut);
    EXPECT_FALSE(DecodeStream(&part, out, &error, nullptr, {&tables})) << cut;
  }
  // A table without a code for a symbol present is not taken; nor is any
  // table by a stream long enough for lanes.
  data.push_back(200);
  plan = PlanStream(data, {});
  EXPECT_EQ(SharedStreamBytes(plan, data.size(), ref), 0u);
  EXPECT_EQ(OfferSharedTable(data.size(), ref, &plan), 0u);
  EXPECT_EQ(plan.mode, StreamMode::kHuffman);
  std::vector<uint8_t> big(kHuffmanLanesFrom);
  for (auto& b : big) b = static_cast<uint8_t>(std::min(g(rng), 40));
  CodeLengths big_lengths{};
  ASSERT_TRUE(BuildCodeLengths(CountBytes(big), kHuffmanMaxBits, &big_lengths));
  plan = PlanStream(big, {});
  EXPECT_EQ(OfferSharedTable(big.size(), {0, &big_lengths}, &plan), 0u);
  EXPECT_EQ(plan.mode, StreamMode::kHuffmanLanes);
}

}  // namespace
}  // namespace modelpress::pack
