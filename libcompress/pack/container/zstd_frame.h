// zstd frames for the graph skeleton and for tensor streams where zstd wins.
// The only code that includes <zstd.h> is zstd_frame.cc.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace modelpress::pack {

// Compresses `in` into one frame that records its content size.
std::vector<uint8_t> ZstdCompress(std::span<const uint8_t> in, int level);

// Decompresses one frame into exactly `out` (whose size the caller has
// already checked). Fails, without writing past `out`, when the frame is
// malformed, is not exactly one frame, or does not declare and produce
// exactly out.size() bytes; the message says which.
bool ZstdDecompress(std::span<const uint8_t> frame, std::span<uint8_t> out, std::string* error);

// Highest level zstd accepts.
int ZstdMaxLevel();

}  // namespace modelpress::pack
