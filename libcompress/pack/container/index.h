// The artifact's index: what is in the file and where, as compact records
// (docs/artifact_format.md, "Index"). Sections are not addressed by offset:
// payloads, the graph and the residues lie back to back after the header in
// that order, so their sizes place them. The index is stored as one Stream
// (zstd) between the last section and the footer.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "entropy/huffman.h"

namespace modelpress::pack {

inline constexpr uint64_t kIndexExactOnnx = 1u;     // IndexContents.flags: the unpacked .onnx must hash to onnx_checksum
inline constexpr uint64_t kIndexSharedTables = 2u;  // IndexContents.flags: shared code tables follow the file records (2.1)

// Where the tensor's bytes go in the restored ONNX model.
enum class StorageKind : uint8_t {
  kRaw = 0,       // TensorProto.raw_data
  kTyped = 1,     // the typed repeated field of its data type
  kExternal = 2,  // an external data file (IndexFile) at external_offset
};

struct IndexTensor {
  std::string name;               // graph value name
  int32_t dtype = 0;              // ONNX TensorProto.DataType
  std::vector<int64_t> shape;     // dimensions
  uint8_t encoder = 0;            // Encoder (stored in the low 4 bits of one byte, below...)
  uint8_t storage = 0;            // ... StorageKind in the high 4 bits
  uint64_t external_file = 0;     // kExternal: index into files
  uint64_t external_offset = 0;   // kExternal: byte offset in that file
  uint64_t payload_size = 0;      // stored bytes of the payload
  uint32_t payload_checksum = 0;  // low 32 bits of the payload's XXH3-64
};

struct IndexFile {
  std::string name;               // location relative to the model's folder
  uint64_t size = 0;              // bytes of the whole file
  uint64_t checksum = 0;          // XXH3-64 of the whole file
  uint64_t residue_size = 0;      // stored bytes of its residue section
  uint64_t residue_checksum = 0;  // XXH3-64 of them
};

struct IndexContents {
  uint64_t flags = 0;             // kIndexExactOnnx; other bits reserved, must be 0
  uint64_t onnx_size = 0;         // bytes of the packed .onnx file
  uint64_t onnx_checksum = 0;     // XXH3-64 of it
  uint64_t graph_size = 0;        // stored bytes of the graph section
  uint64_t graph_checksum = 0;    // XXH3-64 of them
  std::vector<IndexFile> files;
  std::vector<CodeLengths> tables;  // shared code tables (Stream mode 5), by id; written with kIndexSharedTables
  std::vector<IndexTensor> tensors;
};

// The index bytes (before they are stored as a Stream).
std::vector<uint8_t> EncodeIndex(const IndexContents& index);

// Parses index bytes. Fails with a reason on truncation, trailing bytes,
// counts the bytes cannot hold, empty names, values out of range (a dtype
// above int32, a rank above kMaxIndexRank, a dimension above int64, an
// unknown storage, an external file out of range, reserved flags), bad or
// missing shared tables, never
// allocating more than a small multiple of `bytes`. Encoders are the
// reader's to check.
inline constexpr uint64_t kMaxIndexRank = 64;
bool DecodeIndex(std::span<const uint8_t> bytes, IndexContents* index, std::string* error);

}  // namespace modelpress::pack
