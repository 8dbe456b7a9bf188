#include "entropy/huffman.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace modelpress::pack {
namespace {

// Canonical codes, MSB-first, of every symbol present.
std::array<uint16_t, 256> CanonicalCodes(const CodeLengths& lengths) {
  int count[kHuffmanMaxBits + 1] = {};
  for (uint8_t l : lengths) ++count[l];
  count[0] = 0;
  uint16_t next[kHuffmanMaxBits + 2] = {};
  uint32_t code = 0;
  for (int len = 1; len <= kHuffmanMaxBits; ++len) {
    code = (code + count[len - 1]) << 1;
    next[len] = static_cast<uint16_t>(code);
  }
  std::array<uint16_t, 256> codes{};
  for (int s = 0; s < 256; ++s) {
    if (lengths[s] != 0) codes[s] = next[lengths[s]]++;
  }
  return codes;
}

uint16_t Reverse(uint16_t code, int len) {
  uint16_t r = 0;
  for (int i = 0; i < len; ++i) r = static_cast<uint16_t>((r << 1) | ((code >> i) & 1));
  return r;
}

uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// The 64 bits from byte `byte` on, zero past the end of `in`.
uint64_t LoadTail(std::span<const uint8_t> in, size_t byte) {
  uint64_t v = 0;
  if (byte < in.size()) std::memcpy(&v, in.data() + byte, std::min<size_t>(8, in.size() - byte));
  return v;
}

}  // namespace

bool BuildCodeLengths(const Histogram& counts, int max_bits, CodeLengths* lengths) {
  // Leaves sorted by weight, ties by symbol. Weights are below 2^56 (counts
  // of bytes), so weight and symbol pack into one key.
  std::array<uint64_t, 256> leaves;
  size_t n = 0;
  for (int s = 0; s < 256; ++s) {
    if (counts[s] >= uint64_t{1} << 56) return false;
    if (counts[s] != 0) leaves[n++] = counts[s] << 8 | static_cast<uint64_t>(s);
  }
  if (n < 2 || max_bits < 1 || max_bits > 16 || n > (size_t{1} << max_bits)) return false;
  std::sort(leaves.begin(), leaves.begin() + static_cast<long>(n));
  auto weight_of = [&](size_t i) { return leaves[i] >> 8; };

  // Package-merge (Larmore & Hirschberg). Level 1's list is the leaves;
  // level j's is the leaves merged with pairs ("packages") of level j-1's
  // list. Taking the 2n-2 lightest items of the last level, each leaf's code
  // length is the number of levels in which it is taken. Since every list is
  // sorted and packages of a level are taken as a prefix, remembering which
  // positions of each merged list are leaves is enough to count. A level's
  // list holds at most n leaves and n - 1 packages.
  constexpr size_t kMaxList = 511;
  std::array<std::array<uint64_t, kMaxList>, 2> lists;  // the previous level's and this level's
  std::array<std::array<uint8_t, kMaxList>, 16> is_leaf;
  size_t prev_size = n;
  for (size_t i = 0; i < n; ++i) {
    lists[0][i] = weight_of(i);
    is_leaf[0][i] = 1;
  }
  for (int j = 1; j < max_bits; ++j) {
    const uint64_t* prev = lists[(j - 1) & 1].data();
    uint64_t* cur = lists[j & 1].data();
    const size_t packages = prev_size / 2;
    size_t a = 0, b = 0, k = 0;
    while (a < n || b < packages) {
      const uint64_t package = b < packages ? prev[2 * b] + prev[2 * b + 1] : 0;
      if (b == packages || (a < n && weight_of(a) <= package)) {
        cur[k] = weight_of(a++);
        is_leaf[j][k++] = 1;
      } else {
        cur[k] = package;
        is_leaf[j][k++] = 0;
        ++b;
      }
    }
    prev_size = k;
  }
  std::array<uint8_t, 256> len{};
  size_t take = 2 * n - 2;
  for (int j = max_bits - 1; j >= 0 && take > 0; --j) {
    size_t leaves_taken = 0;
    for (size_t i = 0; i < take; ++i) leaves_taken += is_leaf[j][i];
    for (size_t i = 0; i < leaves_taken; ++i) ++len[i];
    take = 2 * (take - leaves_taken);
  }
  lengths->fill(0);
  for (size_t i = 0; i < n; ++i) (*lengths)[leaves[i] & 0xFF] = len[i];
  return true;
}

uint64_t EncodedBits(const Histogram& counts, const CodeLengths& lengths) {
  uint64_t bits = 0;
  for (int s = 0; s < 256; ++s) bits += counts[s] * lengths[s];
  return bits;
}

namespace {

int LastSymbol(const CodeLengths& lengths) {
  int last = 0;
  for (int s = 0; s < 256; ++s) {
    if (lengths[s]) last = s;
  }
  return last;
}

// Table body: symbol 0's length in 4 bits, then per symbol a 2-bit op
// relative to the previous length (0 same, 1 one more, 2 one less, 3 escape
// followed by 4 bits absolute), packed LSB first. Neighbouring symbols
// (zigzagged values, gaps) have similar lengths, so most ops are 2 bits.
template <class Emit>
void ForEachTableField(const CodeLengths& lengths, int last, Emit&& emit) {
  emit(lengths[0], 4);
  for (int s = 1; s <= last; ++s) {
    const int d = lengths[s] - lengths[s - 1];
    if (d == 0) {
      emit(0, 2);
    } else if (d == 1) {
      emit(1, 2);
    } else if (d == -1) {
      emit(2, 2);
    } else {
      emit(3, 2);
      emit(lengths[s], 4);
    }
  }
}

}  // namespace

size_t TableBytes(const CodeLengths& lengths) {
  size_t bits = 0;
  ForEachTableField(lengths, LastSymbol(lengths), [&](int, int n) { bits += static_cast<size_t>(n); });
  return 1 + (bits + 7) / 8;
}

void WriteTable(const CodeLengths& lengths, std::vector<uint8_t>* out) {
  const int last = LastSymbol(lengths);
  out->push_back(static_cast<uint8_t>(last));
  uint32_t acc = 0;
  int nbits = 0;
  ForEachTableField(lengths, last, [&](int v, int n) {
    acc |= static_cast<uint32_t>(v) << nbits;
    nbits += n;
    while (nbits >= 8) {
      out->push_back(static_cast<uint8_t>(acc));
      acc >>= 8;
      nbits -= 8;
    }
  });
  if (nbits > 0) out->push_back(static_cast<uint8_t>(acc));
}

bool ReadTable(std::span<const uint8_t>* in, CodeLengths* lengths, std::string* error) {
  if (in->empty()) {
    *error = "Huffman table is truncated";
    return false;
  }
  const int last = (*in)[0];
  size_t bitpos = 8;
  const size_t limit = in->size() * 8;
  bool truncated = false;
  auto get = [&](int n) {
    if (bitpos + static_cast<size_t>(n) > limit) {
      truncated = true;
      return 0;
    }
    int v = 0;
    for (int i = 0; i < n; ++i, ++bitpos) v |= (((*in)[bitpos >> 3] >> (bitpos & 7)) & 1) << i;
    return v;
  };
  lengths->fill(0);
  int prev = get(4);
  (*lengths)[0] = static_cast<uint8_t>(prev);
  bool range_ok = true;
  for (int s = 1; s <= last && !truncated; ++s) {
    const int op = get(2);
    int l = op == 0 ? prev : op == 1 ? prev + 1 : op == 2 ? prev - 1 : get(4);
    if (l < 0 || l > 15) {
      range_ok = false;
      l = 0;
    }
    (*lengths)[s] = static_cast<uint8_t>(l);
    prev = l;
  }
  if (truncated) {
    *error = "Huffman table is truncated";
    return false;
  }
  // The pad bits of the last byte must be zero: one encoding per table.
  if ((bitpos & 7) && ((*in)[bitpos >> 3] >> (bitpos & 7)) != 0) {
    *error = "Huffman table has nonzero pad bits";
    return false;
  }
  if (!range_ok) {
    *error = "Huffman table steps a code length below 0 or above 15";
    return false;
  }
  uint32_t kraft = 0;
  int present = 0;
  for (int s = 0; s <= last; ++s) {
    const int l = (*lengths)[s];
    if (l > kHuffmanMaxBits) {
      *error = "Huffman table gives symbol " + std::to_string(s) + " a " + std::to_string(l) + "-bit code, over the " +
               std::to_string(kHuffmanMaxBits) + "-bit limit";
      return false;
    }
    if (l) {
      kraft += 1u << (kHuffmanMaxBits - l);
      ++present;
    }
  }
  if ((*lengths)[last] == 0 || present < 2) {
    *error = "Huffman table has fewer than two symbols or a zero-length last symbol";
    return false;
  }
  if (kraft != (1u << kHuffmanMaxBits)) {
    *error = kraft > (1u << kHuffmanMaxBits) ? "Huffman table is oversubscribed (not a prefix code)"
                                             : "Huffman table is incomplete (code space left unused)";
    return false;
  }
  *in = in->subspan((bitpos + 7) / 8);
  return true;
}

void HuffmanEncode(std::span<const uint8_t> in, const CodeLengths& lengths, std::vector<uint8_t>* out) {
  HuffmanEncode(in, lengths, (EncodedBits(CountBytes(in), lengths) + 7) / 8, out);
}

void HuffmanEncode(std::span<const uint8_t> in, const CodeLengths& lengths, uint64_t payload_bytes,
                   std::vector<uint8_t>* out) {
  const std::array<uint16_t, 256> canon = CanonicalCodes(lengths);
  std::array<uint32_t, 256> entry{};  // reversed code | length << 16
  for (int s = 0; s < 256; ++s) {
    if (lengths[s]) entry[s] = Reverse(canon[s], lengths[s]) | (uint32_t{lengths[s]} << 16);
  }
  const size_t start = out->size();
  // Room for every code plus one whole 8-byte store past the end.
  out->resize(start + payload_bytes + 8);
  uint8_t* dst = out->data() + start;
  size_t pos = 0;
  uint64_t acc = 0;
  int bits = 0;  // < 8 between flushes
  size_t i = 0;
  // Four codes (at most 44 bits) fit above the < 8 pending bits.
  for (; i + 4 <= in.size(); i += 4) {
    for (int k = 0; k < 4; ++k) {
      const uint32_t e = entry[in[i + k]];
      acc |= static_cast<uint64_t>(e & 0xffff) << bits;
      bits += static_cast<int>(e >> 16);
    }
    std::memcpy(dst + pos, &acc, 8);
    pos += static_cast<size_t>(bits >> 3);
    acc >>= bits & ~7;
    bits &= 7;
  }
  for (; i < in.size(); ++i) {
    const uint32_t e = entry[in[i]];
    acc |= static_cast<uint64_t>(e & 0xffff) << bits;
    bits += static_cast<int>(e >> 16);
    std::memcpy(dst + pos, &acc, 8);
    pos += static_cast<size_t>(bits >> 3);
    acc >>= bits & ~7;
    bits &= 7;
  }
  if (bits > 0) dst[pos++] = static_cast<uint8_t>(acc);
  assert(pos == payload_bytes);
  out->resize(start + pos);
}

HuffmanDecoder::HuffmanDecoder(const CodeLengths& lengths) : table_(size_t{1} << kHuffmanMaxBits, 0) {
  const std::array<uint16_t, 256> canon = CanonicalCodes(lengths);
  for (int s = 0; s < 256; ++s) {
    const int l = lengths[s];
    if (l == 0) continue;
    const uint16_t entry = static_cast<uint16_t>((s << 4) | l);
    for (size_t i = Reverse(canon[s], l); i < table_.size(); i += size_t{1} << l) table_[i] = entry;
  }
}

bool HuffmanDecoder::DecodeFrom(std::span<const uint8_t> in, size_t* bitpos_io, uint8_t* out, size_t i,
                                size_t end) const {
  constexpr uint64_t kMask = (1u << kHuffmanMaxBits) - 1;
  const uint16_t* table = table_.data();
  size_t bitpos = *bitpos_io;
  // Fast path: one unaligned load gives >= 57 bits, enough for four codes.
  while (i + 4 <= end && (bitpos >> 3) + 8 <= in.size()) {
    uint64_t bits = Load64(in.data() + (bitpos >> 3)) >> (bitpos & 7);
    for (int k = 0; k < 4; ++k) {
      const uint16_t e = table[bits & kMask];
      out[i++] = static_cast<uint8_t>(e >> 4);
      bits >>= e & 15;
      bitpos += e & 15;
    }
  }
  for (; i < end; ++i) {
    const uint64_t bits = LoadTail(in, bitpos >> 3) >> (bitpos & 7);
    const uint16_t e = table[bits & kMask];
    out[i] = static_cast<uint8_t>(e >> 4);
    bitpos += e & 15;
    if (bitpos > in.size() * 8) break;
  }
  *bitpos_io = bitpos;
  return bitpos <= in.size() * 8;
}

bool HuffmanDecoder::Decode(std::span<const uint8_t> in, std::span<uint8_t> out, std::string* error) const {
  size_t bitpos = 0;
  if (!DecodeFrom(in, &bitpos, out.data(), 0, out.size())) {
    *error = "Huffman stream ends before its " + std::to_string(out.size()) + " symbols";
    return false;
  }
  return true;
}

bool HuffmanDecoder::DecodeLanes(const LaneSpans& lanes, std::span<uint8_t> out, std::string* error) const {
  constexpr uint64_t kMask = (1u << kHuffmanMaxBits) - 1;
  const uint16_t* table = table_.data();
  const size_t n = out.size();
  uint8_t* o[kHuffmanLanes];
  size_t bitpos[kHuffmanLanes] = {};
  for (int j = 0; j < kHuffmanLanes; ++j) o[j] = out.data() + LaneStart(n, j);
  // All lanes in step, four codes each per load (at most 44 bits, so 6
  // bytes): four independent chains of table lookups. Each round first
  // works out how many steps every lane has bytes for, then runs them
  // without checks.
  const size_t common = n / kHuffmanLanes;  // symbols every lane has
  size_t i = 0;
  for (;;) {
    size_t steps = (common - i) / 4;
    for (int j = 0; j < kHuffmanLanes; ++j) {
      const size_t used = bitpos[j] >> 3;
      steps = lanes[j].size() >= used + 8 ? std::min(steps, (lanes[j].size() - used - 8) / 6 + 1) : 0;
    }
    if (steps == 0) break;
    const uint8_t *in0 = lanes[0].data(), *in1 = lanes[1].data(), *in2 = lanes[2].data(), *in3 = lanes[3].data();
    size_t p0 = bitpos[0], p1 = bitpos[1], p2 = bitpos[2], p3 = bitpos[3];
    for (const size_t stop = i + steps * 4; i < stop; i += 4) {
      uint64_t b0 = Load64(in0 + (p0 >> 3)) >> (p0 & 7);
      uint64_t b1 = Load64(in1 + (p1 >> 3)) >> (p1 & 7);
      uint64_t b2 = Load64(in2 + (p2 >> 3)) >> (p2 & 7);
      uint64_t b3 = Load64(in3 + (p3 >> 3)) >> (p3 & 7);
      for (int k = 0; k < 4; ++k) {
        const uint16_t e0 = table[b0 & kMask], e1 = table[b1 & kMask], e2 = table[b2 & kMask], e3 = table[b3 & kMask];
        o[0][i + k] = static_cast<uint8_t>(e0 >> 4);
        o[1][i + k] = static_cast<uint8_t>(e1 >> 4);
        o[2][i + k] = static_cast<uint8_t>(e2 >> 4);
        o[3][i + k] = static_cast<uint8_t>(e3 >> 4);
        b0 >>= e0 & 15;
        b1 >>= e1 & 15;
        b2 >>= e2 & 15;
        b3 >>= e3 & 15;
        p0 += e0 & 15;
        p1 += e1 & 15;
        p2 += e2 & 15;
        p3 += e3 & 15;
      }
    }
    bitpos[0] = p0;
    bitpos[1] = p1;
    bitpos[2] = p2;
    bitpos[3] = p3;
  }
  size_t at[kHuffmanLanes], end[kHuffmanLanes];
  for (int j = 0; j < kHuffmanLanes; ++j) {
    at[j] = LaneStart(n, j) + i;
    end[j] = LaneStart(n, j + 1);
  }
  for (int j = 0; j < kHuffmanLanes; ++j) {
    if (!DecodeFrom(lanes[j], &bitpos[j], out.data(), at[j], end[j])) {
      *error = "Huffman lane " + std::to_string(j) + " ends before its " + std::to_string(end[j] - LaneStart(n, j)) +
               " symbols";
      return false;
    }
    // The encoder writes exactly the bytes a lane's codes need.
    if ((bitpos[j] + 7) / 8 != lanes[j].size()) {
      *error = "Huffman lane " + std::to_string(j) + " has " + std::to_string(lanes[j].size() - (bitpos[j] + 7) / 8) +
               " bytes past its codes";
      return false;
    }
  }
  return true;
}

bool HuffmanDecodeReference(std::span<const uint8_t> in, const CodeLengths& lengths, std::span<uint8_t> out,
                            std::string* error) {
  // Canonical decoding: codes of one length are consecutive integers, so a
  // code read so far of length l is a symbol iff it falls in that length's range.
  int count[kHuffmanMaxBits + 1] = {};
  for (uint8_t l : lengths) ++count[l];
  count[0] = 0;
  std::vector<uint8_t> sorted;  // symbols by (length, symbol)
  for (int l = 1; l <= kHuffmanMaxBits; ++l) {
    for (int s = 0; s < 256; ++s) {
      if (lengths[s] == l) sorted.push_back(static_cast<uint8_t>(s));
    }
  }
  size_t bitpos = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t code = 0, first = 0;
    size_t index = 0;
    bool found = false;
    for (int l = 1; l <= kHuffmanMaxBits; ++l) {
      if (bitpos >= in.size() * 8) {
        *error = "Huffman stream ends before its " + std::to_string(out.size()) + " symbols";
        return false;
      }
      code = (code << 1) | ((in[bitpos >> 3] >> (bitpos & 7)) & 1);
      ++bitpos;
      if (code - first < static_cast<uint32_t>(count[l])) {
        out[i] = sorted[index + (code - first)];
        found = true;
        break;
      }
      index += count[l];
      first = (first + count[l]) << 1;
    }
    if (!found) {
      *error = "Huffman stream holds a code that is in no table";
      return false;
    }
  }
  return true;
}

}  // namespace modelpress::pack
