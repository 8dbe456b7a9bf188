// Packing an ONNX model into a .mpk artifact and restoring it exactly
// (docs/artifact_format.md). Reading an artifact and restoring the model
// without ONNX or protobuf: modelpress/pack_reader.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "modelpress/pack_reader.h"
#include "modelpress/status.h"

namespace modelpress::pack {

struct PackOptions {
  int level = 19;      // zstd level (1..22) of the graph section and of tensor streams where zstd wins (default 19)
  int threads = 0;     // worker threads for encoding; 0 = one per core (default 0)
  bool verify = true;  // decode every encoded tensor and compare before writing (default true)
  // Tensors smaller than this many bytes stay inside the zstd-compressed graph
  // section, where they cost less than an index record (default 64). They
  // are restored exactly but are not listed by pack::Reader.
  uint64_t min_tensor_bytes = 64;
  // Tensors in raw_data of at most this many bytes also stay in the graph
  // section when that makes the artifact smaller (their index records and
  // stream headers can cost more than coding saves: thresholds 128, 256, ...
  // up to this are tried, and the smallest artifact wins). 0 gives every
  // tensor of at least min_tensor_bytes its own payload (default 512, at
  // most kMaxInlineUpTo).
  uint64_t inline_up_to = 512;
  static constexpr uint64_t kMaxInlineUpTo = 64 * 1024;
};

struct PackedTensorReport {
  std::string name;                   // graph value name
  int32_t dtype = 0;                  // ONNX data type
  std::vector<int64_t> shape;         // dimensions
  uint64_t bytes = 0;                 // packed element bytes
  uint64_t stored_bytes = 0;          // payload bytes in the artifact
  Encoder encoder = Encoder::kWhole;  // the encoder that won
  double bound_bits = 0;              // order-0 entropy bound (EntropyBoundBits)
};

struct PackReport {
  uint64_t input_bytes = 0;           // the .onnx file plus its external data files
  uint64_t artifact_bytes = 0;        // the written artifact
  uint64_t graph_stored_bytes = 0;    // the zstd-compressed graph skeleton
  size_t shared_tables = 0;           // code tables shared by streams of several small tensors
  uint64_t shared_table_bytes = 0;    // their bytes (inside the index)
  bool exact_onnx = false;            // the unpacked .onnx will be byte-identical (the input had modelpress's deterministic bytes)
  std::vector<PackedTensorReport> tensors;      // tensors with their own payload, in model order
  std::vector<std::string> inline_tensors;      // tensors left inside the graph section that could not be packed, with the reason
  size_t graph_tensors = 0;                     // small tensors kept inside the graph section because the artifact is smaller so
};

// Loads `onnx` (and its external data) and writes the artifact `artifact`
// (temporary + rename: no partial file on failure). Errors name the file and tensor.
Result<PackReport> PackModel(const std::filesystem::path& onnx, const std::filesystem::path& artifact,
                             const PackOptions& options = {});

}  // namespace modelpress::pack
