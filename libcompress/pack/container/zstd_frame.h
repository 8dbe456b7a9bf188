// zstd frames for the graph skeleton and for tensor streams where zstd wins.
// The only code that includes <zstd.h> is zstd_frame.cc.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace modelpress::pack {

// The built-in graph dictionary (docs/artifact_format.md, "Graph
// dictionary"): a zstd dictionary trained on the graph sections of models
// that are not among the samples or benchmark inputs
// (tools/graph_dictionary/). Part of the format: it never changes under
// this ID.
inline constexpr uint32_t kGraphDictionaryId = 1297107713;  // 0x4D504B01
std::span<const uint8_t> GraphDictionary();

// Digests the graph dictionary for compressing at `level`: once per process
// and level (about as long as compressing a few kilobytes at that level);
// later calls return at once. The packer starts it beside loading the model.
void PrepareGraphDictionary(int level);

// Compresses `in` into one frame that records its content size (not a
// dictionary ID), with the graph dictionary when asked.
std::vector<uint8_t> ZstdCompress(std::span<const uint8_t> in, int level, bool graph_dictionary = false);

// Decompresses one frame into exactly `out` (whose size the caller has
// already checked), with the graph dictionary when asked. Fails, without
// writing past `out`, when the frame is malformed, is not exactly one
// frame, or does not declare and produce exactly out.size() bytes; the
// message says which.
bool ZstdDecompress(std::span<const uint8_t> frame, std::span<uint8_t> out, std::string* error,
                    bool graph_dictionary = false);

// Highest level zstd accepts.
int ZstdMaxLevel();

}  // namespace modelpress::pack
