// On-disk records of the .mpk artifact (docs/artifact_format.md is the
// normative description; this header must agree with it). All integers are
// little-endian; records are read with memcpy, never by casting file bytes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace modelpress::pack {

static_assert(std::endian::native == std::endian::little, "the artifact records are little-endian and read in place");

// PNG-style magic: the high first byte catches 7-bit transports, CR LF and
// LF catch line-ending conversion, 0x1A stops `type` on DOS, and "MPK"
// names the format to a human with a hex dump.
inline constexpr uint8_t kMagic[8] = {0x89, 'M', 'P', 'K', 0x0D, 0x0A, 0x1A, 0x0A};
inline constexpr uint16_t kVersionMajor = 2;  // a reader refuses majors it does not know
inline constexpr uint16_t kVersionMinor = 0;  // a reader accepts any minor of a major it knows
// Version 1 is version 2 without lane-coded Huffman streams (stream mode 4),
// so a version 2 reader reads it unchanged.
inline constexpr uint16_t kOldestReadableMajor = 1;

struct FileHeader {
  uint8_t magic[8];           // kMagic
  uint16_t version_major;     // kVersionMajor
  uint16_t version_minor;     // kVersionMinor
  uint32_t flags;             // reserved, must be 0
  uint64_t file_size;         // bytes of the whole artifact
  uint64_t checksum;          // XXH3-64 of the 24 bytes above
};
static_assert(sizeof(FileHeader) == 32);

struct Footer {
  uint64_t index_offset;      // where the index section (a Stream of the index bytes) starts
  uint64_t index_size;        // its stored bytes
  uint64_t index_checksum;    // XXH3-64 of the index bytes
  uint64_t checksum;          // XXH3-64 of the 24 bytes above
};
static_assert(sizeof(Footer) == 32);

// A stored section: bytes [offset, offset + size) of the file.
struct SectionRef {
  uint64_t offset;
  uint64_t size;
  uint64_t checksum;          // XXH3-64 of the stored bytes
};
static_assert(sizeof(SectionRef) == 24);

inline constexpr uint32_t kIndexExactOnnx = 1u;  // IndexHeader.flags: the unpacked .onnx must hash to onnx_checksum

struct IndexHeader {
  uint32_t tensor_count;      // TensorRecords that follow
  uint32_t file_count;        // FileRecords after them
  uint64_t dims_count;        // int64 dimensions after the FileRecords
  uint64_t strings_size;      // bytes of the string table at the end of the index
  SectionRef skeleton;        // the ModelProto without tensor payloads, as a Stream
  uint64_t onnx_size;         // bytes of the packed .onnx file
  uint64_t onnx_checksum;     // XXH3-64 of the packed .onnx file
  uint32_t flags;             // kIndexExactOnnx; other bits reserved, must be 0
  uint32_t reserved;          // must be 0
};
static_assert(sizeof(IndexHeader) == 72);

// Where the tensor's bytes go in the restored ONNX model.
enum class StorageKind : uint8_t {
  kRaw = 0,       // TensorProto.raw_data
  kTyped = 1,     // the typed repeated field of its data type
  kExternal = 2,  // an external data file (FileRecord external_file) at external_offset
};

struct TensorRecord {
  SectionRef payload;         // the encoded tensor
  uint64_t element_count;     // product of the dimensions
  uint64_t name_offset;       // into the string table
  uint32_t name_size;         // bytes of the name
  uint32_t dims_offset;       // first dimension, as an index into the dims table
  uint64_t external_offset;   // byte offset in its external data file (kExternal only, else 0)
  uint32_t external_file;     // FileRecord index (kExternal only, else 0)
  uint32_t rank;              // number of dimensions
  int32_t dtype;              // ONNX TensorProto.DataType
  uint8_t encoder;            // Encoder
  uint8_t storage;            // StorageKind
  uint8_t reserved[2];        // must be 0
};
static_assert(sizeof(TensorRecord) == 72);

struct FileRecord {
  uint64_t name_offset;       // into the string table: the location, relative to the model's folder
  uint32_t name_size;         // bytes of the name
  uint32_t reserved;          // must be 0
  uint64_t size;              // bytes of the whole external data file
  uint64_t checksum;          // XXH3-64 of the whole external data file
  SectionRef residue;         // the file's bytes not covered by any tensor, in file order, as a Stream
};
static_assert(sizeof(FileRecord) == 56);

}  // namespace modelpress::pack
