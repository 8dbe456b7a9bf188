// Fixed on-disk records of the .mpk artifact (docs/artifact_format.md is the
// normative description; this header and container/index.h must agree with
// it). All integers are little-endian; records are read with memcpy, never
// by casting file bytes.
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
inline constexpr uint16_t kVersionMajor = 2;  // a reader refuses other majors
inline constexpr uint16_t kVersionMinor = 1;  // a reader accepts any minor of its major

// FileHeader.flags: the graph and index sections' zstd frames were
// compressed with the built-in graph dictionary (2.1). Other bits reserved.
inline constexpr uint32_t kHeaderGraphDictionary = 1u;

struct FileHeader {
  uint8_t magic[8];           // kMagic
  uint16_t version_major;     // kVersionMajor
  uint16_t version_minor;     // kVersionMinor
  uint32_t flags;             // kHeaderGraphDictionary; other bits reserved, 0
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

// A stored section: bytes [offset, offset + size) of the file (placed by
// the index, not stored as such).
struct SectionRef {
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t checksum = 0;      // XXH3-64 of the stored bytes (payloads: its low 32 bits)
  bool short_checksum = false;  // compare only the low 32 bits
};

}  // namespace modelpress::pack
