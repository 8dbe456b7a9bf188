#include "container/stream.h"

#include <algorithm>
#include <cstring>

#include "container/zstd_frame.h"
#include "entropy/huffman.h"

namespace modelpress::pack {

const char* StreamModeName(StreamMode m) {
  switch (m) {
    case StreamMode::kRaw: return "raw";
    case StreamMode::kConstant: return "const";
    case StreamMode::kHuffman: return "huff";
    case StreamMode::kZstd: return "zstd";
    case StreamMode::kHuffmanLanes: return "huff4";
    case StreamMode::kSharedHuffman: return "shared";
  }
  return "?";
}

void PutVarint(uint64_t v, std::vector<uint8_t>* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

bool GetVarint(std::span<const uint8_t>* in, uint64_t* v) {
  uint64_t r = 0;
  for (size_t i = 0; i < 10 && i < in->size(); ++i) {
    const uint8_t b = (*in)[i];
    if (i == 9 && b > 1) return false;  // would overflow 64 bits
    r |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = r;
      *in = in->subspan(i + 1);
      return true;
    }
  }
  return false;
}

namespace {

size_t VarintBytes(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// zstd is only worth a full run when a sample shows it beating Huffman: it
// wins on structured data (shapes, repeated rows), rarely on weights.
constexpr size_t kZstdSample = 16 * 1024;
constexpr size_t kRefineLosersUpTo = 4 * 1024;
constexpr size_t kRefineSample = 16 * 1024;

}  // namespace

StreamPlan PlanStream(std::span<const uint8_t> data, const StreamOptions& options) {
  const uint64_t n = data.size();
  StreamPlan plan;
  plan.bytes = 1 + VarintBytes(n);
  if (n > 0 && std::all_of(data.begin(), data.end(), [&](uint8_t b) { return b == data[0]; })) {
    plan.mode = StreamMode::kConstant;
    plan.bytes += 1;
    plan.counted = true;
    plan.counts[data[0]] = n;
    return plan;
  }
  size_t best = n;
  const bool huffman = n > 0 && !options.force_zstd && options.try_huffman;
  const bool lanes = n >= kHuffmanLanesFrom;
  std::array<Histogram, kHuffmanLanes> lane_counts;
  if (huffman && lanes) {
    for (int j = 0; j < kHuffmanLanes; ++j) {
      lane_counts[j] = CountBytes(data.subspan(LaneStart(n, j), LaneStart(n, j + 1) - LaneStart(n, j)));
      for (int s = 0; s < 256; ++s) plan.counts[s] += lane_counts[j][s];
    }
    plan.counted = true;
  } else if (huffman) {
    plan.counts = CountBytes(data);
    plan.counted = true;
  }
  const Histogram& h = plan.counts;
  if (huffman && BuildCodeLengths(h, kHuffmanMaxBits, &plan.lengths)) {
    size_t huff = TableBytes(plan.lengths);
    if (lanes) {
      for (int j = 0; j < kHuffmanLanes; ++j) {
        plan.lane_bytes[j] = (EncodedBits(lane_counts[j], plan.lengths) + 7) / 8;
        huff += VarintBytes(plan.lane_bytes[j]) + plan.lane_bytes[j];
      }
    } else {
      plan.huffman_payload = (EncodedBits(h, plan.lengths) + 7) / 8;
      huff += VarintBytes(plan.huffman_payload) + plan.huffman_payload;
    }
    if (huff < best) {
      best = huff;
      plan.mode = lanes ? StreamMode::kHuffmanLanes : StreamMode::kHuffman;
    }
  }
  if (n > 0 && (options.try_zstd || options.force_zstd)) {
    bool worth = true;
    if (!options.force_zstd && n > kZstdSample) {
      const auto sample = data.first(kZstdSample);
      const Histogram hs = CountBytes(sample);
      CodeLengths ls{};
      const uint64_t huff_sample = BuildCodeLengths(hs, kHuffmanMaxBits, &ls) ? (EncodedBits(hs, ls) + 7) / 8 : kZstdSample;
      const uint64_t zs = ZstdCompress(sample, std::min(options.zstd_level, kRankingZstdLevel)).size();
      // The sample's size scaled to the whole stream, less a margin for
      // matches the sample cannot show.
      const long double predicted = static_cast<long double>(zs) * n / kZstdSample * 3 / 4;
      worth = zs < huff_sample * 98 / 100 && predicted < static_cast<long double>(options.zstd_worth_below);
    }
    if (worth) {
      std::vector<uint8_t> frame = ZstdCompress(data, options.zstd_level, options.graph_dictionary);
      const size_t z = VarintBytes(frame.size()) + frame.size();
      if (!frame.empty()) {
        plan.zstd_tried = frame.size();
        plan.zstd_level = options.zstd_level;
      }
      if (!frame.empty() && z < best) {
        best = z;
        plan.mode = StreamMode::kZstd;
        plan.zstd_frame = std::move(frame);
      }
    }
  }
  plan.bytes += best;
  return plan;
}

namespace {

// Bytes of the codes of a planned stream of n bytes with `table`, or 0 when
// mode 5 cannot code it (see SharedStreamBytes).
uint64_t SharedPayloadBytes(const StreamPlan& plan, uint64_t n, const SharedTableRef& table) {
  if (!plan.counted || !table.lengths || n == 0 || n >= kHuffmanLanesFrom) return 0;
  for (int s = 0; s < 256; ++s) {
    if (plan.counts[s] != 0 && (*table.lengths)[s] == 0) return 0;
  }
  return (EncodedBits(plan.counts, *table.lengths) + 7) / 8;
}

uint64_t Mode5Bytes(uint64_t n, const SharedTableRef& table, uint64_t payload) {
  return 1 + VarintBytes(n) + VarintBytes(table.id) + VarintBytes(payload) + payload;
}

}  // namespace

uint64_t SharedStreamBytes(const StreamPlan& plan, uint64_t n, const SharedTableRef& table) {
  const uint64_t payload = SharedPayloadBytes(plan, n, table);
  return payload == 0 ? 0 : Mode5Bytes(n, table, payload);
}

uint64_t OfferSharedTable(uint64_t n, const SharedTableRef& table, StreamPlan* plan) {
  const uint64_t payload = SharedPayloadBytes(*plan, n, table);
  if (payload == 0) return 0;
  const uint64_t bytes = Mode5Bytes(n, table, payload);
  if (bytes >= plan->bytes) return 0;
  const uint64_t saved = plan->bytes - bytes;
  plan->mode = StreamMode::kSharedHuffman;
  plan->bytes = bytes;
  plan->lengths = *table.lengths;
  plan->shared_id = table.id;
  plan->huffman_payload = payload;
  plan->zstd_frame.clear();
  return saved;
}

void RefineStream(std::span<const uint8_t> data, const StreamOptions& options, StreamPlan* plan) {
  const uint64_t header = 1 + VarintBytes(data.size());
  const uint64_t body = plan->bytes - header;
  if (plan->zstd_tried == 0 || plan->zstd_level >= options.zstd_level) return;
  if (plan->zstd_tried > body + body * 15 / 100) return;
  // A large stream that zstd lost at the ranking level is rarely won back by
  // a higher level, and trying costs more than the rest of the stream's work.
  if (plan->mode != StreamMode::kZstd && data.size() > kRefineLosersUpTo) return;
  // On a large stream, a sample tells whether the level pays for its time:
  // high levels mostly shrink what small streams spend on their tables.
  if (data.size() > kRefineSample) {
    const auto sample = data.first(kRefineSample);
    const size_t low = ZstdCompress(sample, plan->zstd_level).size();
    const size_t high = ZstdCompress(sample, options.zstd_level).size();
    if (high == 0 || high >= low * 99 / 100) return;
  }
  std::vector<uint8_t> frame = ZstdCompress(data, options.zstd_level, options.graph_dictionary);
  const uint64_t z = VarintBytes(frame.size()) + frame.size();
  if (frame.empty() || z >= body) return;
  plan->mode = StreamMode::kZstd;
  plan->bytes = header + z;
  plan->zstd_frame = std::move(frame);
}

void WriteStream(std::span<const uint8_t> data, const StreamPlan& plan, std::vector<uint8_t>* out) {
  out->push_back(static_cast<uint8_t>(plan.mode));
  PutVarint(data.size(), out);
  switch (plan.mode) {
    case StreamMode::kRaw: out->insert(out->end(), data.begin(), data.end()); break;
    case StreamMode::kConstant: out->push_back(data[0]); break;
    case StreamMode::kHuffman:
      WriteTable(plan.lengths, out);
      PutVarint(plan.huffman_payload, out);
      HuffmanEncode(data, plan.lengths, plan.huffman_payload, out);
      break;
    case StreamMode::kHuffmanLanes:
      WriteTable(plan.lengths, out);
      for (uint64_t b : plan.lane_bytes) PutVarint(b, out);
      for (int j = 0; j < kHuffmanLanes; ++j) {
        const uint64_t at = LaneStart(data.size(), j);
        HuffmanEncode(data.subspan(at, LaneStart(data.size(), j + 1) - at), plan.lengths, plan.lane_bytes[j], out);
      }
      break;
    case StreamMode::kZstd:
      PutVarint(plan.zstd_frame.size(), out);
      out->insert(out->end(), plan.zstd_frame.begin(), plan.zstd_frame.end());
      break;
    case StreamMode::kSharedHuffman:
      PutVarint(plan.shared_id, out);
      PutVarint(plan.huffman_payload, out);
      HuffmanEncode(data, plan.lengths, plan.huffman_payload, out);
      break;
  }
}

StreamMode EncodeStream(std::span<const uint8_t> data, const StreamOptions& options, std::vector<uint8_t>* out) {
  const StreamPlan plan = PlanStream(data, options);
  WriteStream(data, plan, out);
  return plan.mode;
}

bool PeekStreamSize(std::span<const uint8_t> in, uint64_t* n) {
  if (in.empty()) return false;
  in = in.subspan(1);
  return GetVarint(&in, n);
}

bool PeekStreamMode(std::span<const uint8_t> in, StreamMode* mode) {
  if (in.empty() || in[0] >= kStreamModes) return false;
  *mode = static_cast<StreamMode>(in[0]);
  return true;
}

bool RawStreamView(std::span<const uint8_t>* in, uint64_t n, const uint8_t** view, std::string* error) {
  std::span<const uint8_t> p = *in;
  uint64_t declared = 0;
  if (p.empty() || p[0] != static_cast<uint8_t>(StreamMode::kRaw) || (p = p.subspan(1), !GetVarint(&p, &declared))) {
    *error = "stream header is truncated";
    return false;
  }
  if (declared != n) {
    *error = "stream declares " + std::to_string(declared) + " bytes where " + std::to_string(n) + " are expected";
    return false;
  }
  if (p.size() < n) {
    *error = "raw stream is truncated";
    return false;
  }
  *view = p.data();
  *in = p.subspan(n);
  return true;
}

bool DecodeStream(std::span<const uint8_t>* in, std::span<uint8_t> out, std::string* error, StreamMode* mode_out,
                  const StreamContext& context) {
  const SharedTables* tables = context.tables;
  std::span<const uint8_t> p = *in;
  uint64_t n = 0;
  if (p.empty() || (p = p.subspan(1), !GetVarint(&p, &n))) {
    *error = "stream header is truncated";
    return false;
  }
  const uint8_t mode = (*in)[0];
  if (mode >= kStreamModes) {
    *error = "stream mode " + std::to_string(mode) + " is unknown";
    return false;
  }
  if (n != out.size()) {
    *error = "stream declares " + std::to_string(n) + " bytes where " + std::to_string(out.size()) + " are expected";
    return false;
  }
  if (mode_out) *mode_out = static_cast<StreamMode>(mode);
  switch (static_cast<StreamMode>(mode)) {
    case StreamMode::kRaw:
      if (p.size() < n) {
        *error = "raw stream is truncated";
        return false;
      }
      if (n) std::memcpy(out.data(), p.data(), n);
      p = p.subspan(n);
      break;
    case StreamMode::kConstant:
      if (p.empty()) {
        *error = "constant stream is truncated";
        return false;
      }
      std::fill(out.begin(), out.end(), p[0]);
      p = p.subspan(1);
      break;
    case StreamMode::kHuffman:
    case StreamMode::kSharedHuffman: {
      CodeLengths lengths{};
      if (static_cast<StreamMode>(mode) == StreamMode::kHuffman) {
        if (!ReadTable(&p, &lengths, error)) return false;
      } else {
        uint64_t id = 0;
        const uint64_t held = tables ? tables->size() : 0;
        if (!GetVarint(&p, &id)) {
          *error = "shared-table stream is truncated";
          return false;
        }
        if (id >= held) {
          *error = "stream uses shared code table " + std::to_string(id) + ", but the index holds " + std::to_string(held);
          return false;
        }
        lengths = (*tables)[id];
      }
      uint64_t payload = 0;
      if (!GetVarint(&p, &payload) || payload > p.size()) {
        *error = "Huffman stream is truncated";
        return false;
      }
      // Every code is at least one bit: a shorter payload cannot hold n symbols.
      if (payload < (n + 7) / 8) {
        *error = "Huffman stream of " + std::to_string(payload) + " bytes cannot hold " + std::to_string(n) + " symbols";
        return false;
      }
      HuffmanDecoder decoder(lengths);
      if (!decoder.Decode(p.first(payload), out, error)) return false;
      p = p.subspan(payload);
      break;
    }
    case StreamMode::kHuffmanLanes: {
      CodeLengths lengths{};
      if (!ReadTable(&p, &lengths, error)) return false;
      LaneSpans lanes;
      uint64_t bytes[kHuffmanLanes];
      uint64_t total = 0;
      for (int j = 0; j < kHuffmanLanes; ++j) {
        // Every code is at least one bit: a lane cannot be shorter than its symbols in bits.
        const uint64_t symbols = LaneStart(n, j + 1) - LaneStart(n, j);
        if (!GetVarint(&p, &bytes[j]) || bytes[j] > p.size() || bytes[j] < (symbols + 7) / 8) {
          *error = "Huffman lane " + std::to_string(j) + " size is missing or impossible for its " +
                   std::to_string(symbols) + " symbols";
          return false;
        }
      }
      for (int j = 0; j < kHuffmanLanes; ++j) {
        if (bytes[j] > p.size() - total) {
          *error = "Huffman lanes are truncated";
          return false;
        }
        lanes[j] = p.subspan(total, bytes[j]);
        total += bytes[j];
      }
      HuffmanDecoder decoder(lengths);
      if (!decoder.DecodeLanes(lanes, out, error)) return false;
      p = p.subspan(total);
      break;
    }
    case StreamMode::kZstd: {
      uint64_t size = 0;
      if (!GetVarint(&p, &size) || size > p.size()) {
        *error = "zstd stream is truncated";
        return false;
      }
      if (!ZstdDecompress(p.first(size), out, error, context.graph_dictionary)) return false;
      p = p.subspan(size);
      break;
    }
  }
  *in = p;
  return true;
}

}  // namespace modelpress::pack
