// Pieces of the pipeline shared between its files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace modelpress::pipeline {

// The size a general-purpose compressor makes of some bytes, for scale in reports.
struct ReferenceSize {
  std::string name;    // e.g. "zstd -19"
  uint64_t bytes = 0;  // compressed size
};

// zstd -19, gzip -9 and xz -9e of `bytes`, as their libraries compress at those levels.
std::vector<ReferenceSize> ReferenceSizes(std::string_view bytes);

}  // namespace modelpress::pipeline
