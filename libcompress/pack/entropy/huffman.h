// Canonical, length-limited Huffman coding of bytes, staged like zstd's
// entropy coders: histogram (histogram.h) -> code lengths -> table -> encode;
// read table -> decode.
//
// Bit order: the stream is read least-significant bit first, each code is
// stored bit-reversed so its first (most significant) canonical bit comes
// first, which lets the decoder index a table with the next kHuffmanMaxBits
// bits. Canonical codes are assigned in order of (length, symbol).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "entropy/histogram.h"

namespace modelpress::pack {

// Longest code. 11 bits keeps the decode table (2 KiB entries) in L1 and
// costs well under 0.1% against unlimited Huffman on weight data.
inline constexpr int kHuffmanMaxBits = 11;

using CodeLengths = std::array<uint8_t, 256>;  // 0 = symbol absent

// Optimal code lengths of at most `max_bits` (package-merge). Requires at
// least two symbols with nonzero counts and 2^max_bits >= distinct symbols;
// returns false otherwise.
bool BuildCodeLengths(const Histogram& counts, int max_bits, CodeLengths* lengths);

// Bits the symbols of `counts` take with `lengths` (table not included).
uint64_t EncodedBits(const Histogram& counts, const CodeLengths& lengths);

// Serialised table: one byte `last` (highest symbol present), then the
// lengths of symbols 0..last delta-coded (docs/artifact_format.md).
void WriteTable(const CodeLengths& lengths, std::vector<uint8_t>* out);
size_t TableBytes(const CodeLengths& lengths);

// Parses a table from the front of `in`, advancing it. Fails (with a reason)
// on truncation, a length above kHuffmanMaxBits, fewer than two symbols, or
// lengths that do not form a complete prefix code.
bool ReadTable(std::span<const uint8_t>* in, CodeLengths* lengths, std::string* error);

// Appends the code of every byte of `in` to `out` (padded with zero bits to
// a whole byte). Every byte of `in` must have a nonzero length.
void HuffmanEncode(std::span<const uint8_t> in, const CodeLengths& lengths, std::vector<uint8_t>* out);
// The same, when the caller already knows the payload's size
// ((EncodedBits + 7) / 8 of the histogram of `in`).
void HuffmanEncode(std::span<const uint8_t> in, const CodeLengths& lengths, uint64_t payload_bytes,
                   std::vector<uint8_t>* out);

// Lanes: a long Huffman stream is coded as kHuffmanLanes independent bit
// streams over consecutive slices of the symbols, so a decoder follows
// several dependency chains at once. Lane j holds n/4 symbols, one more for
// the first n % 4 lanes; LaneStart(n, j) is where its slice begins.
inline constexpr int kHuffmanLanes = 4;
inline constexpr uint64_t LaneStart(uint64_t n, int j) {
  return static_cast<uint64_t>(j) * (n / kHuffmanLanes) + std::min<uint64_t>(static_cast<uint64_t>(j), n % kHuffmanLanes);
}
using LaneSpans = std::array<std::span<const uint8_t>, kHuffmanLanes>;

// Table-driven decoder for one code table.
class HuffmanDecoder {
 public:
  // `lengths` must have passed ReadTable's checks.
  explicit HuffmanDecoder(const CodeLengths& lengths);
  // Decodes exactly out.size() symbols from `in`. Fails when the codes run
  // past the end of `in`.
  bool Decode(std::span<const uint8_t> in, std::span<uint8_t> out, std::string* error) const;
  // Decodes out.size() symbols from lanes (HuffmanEncode of each slice).
  // Fails when a lane's codes run past its end or end before its last byte.
  bool DecodeLanes(const LaneSpans& lanes, std::span<uint8_t> out, std::string* error) const;

 private:
  // Decodes out[i, end) from `in` starting at bit *bitpos; false when the
  // codes run past the end of `in`.
  bool DecodeFrom(std::span<const uint8_t> in, size_t* bitpos, uint8_t* out, size_t i, size_t end) const;

  std::vector<uint16_t> table_;  // next kHuffmanMaxBits bits -> (symbol << 4) | length
};

// Bit-at-a-time canonical decoder: the reference the table decoder is tested against.
bool HuffmanDecodeReference(std::span<const uint8_t> in, const CodeLengths& lengths, std::span<uint8_t> out,
                            std::string* error);

}  // namespace modelpress::pack
