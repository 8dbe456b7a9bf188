// A self-describing byte stream: the unit every tensor encoder and section
// is built from. Layout: u8 mode, varint n (decoded bytes), then
//   raw (0):      n bytes
//   constant (1): one byte, repeated n times
//   huffman (2):  code table (huffman.h), varint payload bytes, payload
//   zstd (3):     varint frame bytes, one zstd frame of content size n
//   lanes (4):    Huffman in kHuffmanLanes lanes: code table, one varint of
//                 bytes per lane, the lanes' codes one after another
//   shared (5):   Huffman with a code table the index holds for streams of
//                 several tensors: varint table id, varint payload bytes, payload
// The encoder picks the smallest mode; Huffman coding takes lanes from
// kHuffmanLanesFrom bytes on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "entropy/histogram.h"
#include "entropy/huffman.h"

namespace modelpress::pack {

enum class StreamMode : uint8_t { kRaw = 0, kConstant = 1, kHuffman = 2, kZstd = 3, kHuffmanLanes = 4, kSharedHuffman = 5 };
inline constexpr int kStreamModes = 6;
// Streams this long are Huffman-coded in lanes (about 2.8 times faster to
// decode, for a few bytes of lane sizes).
inline constexpr uint64_t kHuffmanLanesFrom = 32 * 1024;
const char* StreamModeName(StreamMode m);

// The artifact's shared code tables (index flag `tables`), by id.
using SharedTables = std::vector<CodeLengths>;

// A shared table by id, as offered to a planned stream (OfferSharedTable).
struct SharedTableRef {
  uint32_t id = 0;
  const CodeLengths* lengths = nullptr;
};

struct StreamOptions {
  int zstd_level = 19;     // level of zstd frames (1..22; default 19)
  bool try_zstd = true;    // consider zstd at all (default true)
  bool force_zstd = false; // always zstd unless raw is smaller (for the graph skeleton; default false)
  bool try_huffman = true; // consider Huffman coding (default true)
  bool graph_dictionary = false;  // zstd frames use the built-in graph dictionary (graph and index sections; default false)
  // A stream over 16 KiB gets a full zstd run only when its 16 KiB sample,
  // scaled to the whole stream, predicts less than 4/3 of this (default: no
  // limit). The tensor encoders pass what a smaller candidate already takes.
  uint64_t zstd_worth_below = UINT64_MAX;
};

// What decoding a stream may need besides its bytes.
struct StreamContext {
  const SharedTables* tables = nullptr;  // the artifact's shared code tables (mode 5)
  bool graph_dictionary = false;         // zstd frames (mode 3) use the built-in graph dictionary
};

// LEB128 unsigned varints, at most 10 bytes.
void PutVarint(uint64_t v, std::vector<uint8_t>* out);
bool GetVarint(std::span<const uint8_t>* in, uint64_t* v);

// The smallest mode for `data` and the exact bytes its stream takes,
// found without writing it: Huffman sizes follow from the histogram; a zstd
// frame, when tried and smaller, is kept for WriteStream.
struct StreamPlan {
  StreamMode mode = StreamMode::kRaw;
  uint64_t bytes = 0;               // the whole stream, header included
  CodeLengths lengths{};            // kHuffman, kSharedHuffman
  uint32_t shared_id = 0;           // kSharedHuffman: the table's id
  uint64_t huffman_payload = 0;     // kHuffman, kSharedHuffman: bytes of the codes
  std::array<uint64_t, kHuffmanLanes> lane_bytes{};  // kHuffmanLanes: bytes of each lane's codes
  std::vector<uint8_t> zstd_frame;  // kZstd
  uint64_t zstd_tried = 0;          // bytes the zstd frame took when it was tried, else 0
  int zstd_level = 0;               // the level it was tried at
  bool counted = false;             // whether `counts` holds the data's byte histogram
  Histogram counts{};               // (counted when Huffman was considered, or the stream is constant)
};
StreamPlan PlanStream(std::span<const uint8_t> data, const StreamOptions& options);

// The bytes the planned stream of `n` bytes would take coded with `table`
// (mode 5), or 0 when that is not possible: its histogram was not counted,
// the table lacks a code for one of its symbols, or n is at least
// kHuffmanLanesFrom (mode 5 has one lane, which would decode slowly).
uint64_t SharedStreamBytes(const StreamPlan& plan, uint64_t n, const SharedTableRef& table);

// Switches `plan` to mode 5 with `table` when that is smaller; returns the
// bytes saved (0: the plan is unchanged).
uint64_t OfferSharedTable(uint64_t n, const SharedTableRef& table, StreamPlan* plan);

// Candidates are ranked with zstd at this level at most: higher levels cost
// far more time than they change the ranking.
inline constexpr int kRankingZstdLevel = 3;

// Tries options.zstd_level on a stream whose zstd trial used a lower level, when
// zstd won, or came within 15% of the winner on a stream of at most 4 KiB,
// and (on streams over 16 KiB) a 16 KiB sample shrinks by at least 1% at
// that level; keeps whichever is smaller (plan.bytes follows).
void RefineStream(std::span<const uint8_t> data, const StreamOptions& options, StreamPlan* plan);

// Appends the stream of `data` as planned (exactly plan.bytes bytes).
void WriteStream(std::span<const uint8_t> data, const StreamPlan& plan, std::vector<uint8_t>* out);

// PlanStream then WriteStream; returns the mode chosen.
StreamMode EncodeStream(std::span<const uint8_t> data, const StreamOptions& options, std::vector<uint8_t>* out);

// Reads the declared decoded size of the stream at the front of `in`
// without consuming it.
bool PeekStreamSize(std::span<const uint8_t> in, uint64_t* n);

// The mode byte of the stream at the front of `in`, if there is one.
bool PeekStreamMode(std::span<const uint8_t> in, StreamMode* mode);

// For a raw stream of n bytes at the front of `in`: points *view at its
// bytes inside `in` instead of copying them, and advances `in`.
bool RawStreamView(std::span<const uint8_t>* in, uint64_t n, const uint8_t** view, std::string* error);

// Decodes the stream at the front of `in` (advancing it) into `out`, whose
// size must equal the stream's declared size. Fails with a reason (without
// writing past `out`) on truncation, unknown modes, bad tables, a shared
// table id the context's tables do not hold, or a size other than out.size().
bool DecodeStream(std::span<const uint8_t>* in, std::span<uint8_t> out, std::string* error, StreamMode* mode = nullptr,
                  const StreamContext& context = {});

}  // namespace modelpress::pack
