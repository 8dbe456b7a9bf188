// Section checksums: XXH3-64 from Debian's libxxhash (header-only use).
#pragma once

#include <cstddef>
#include <cstdint>

namespace modelpress::pack {

uint64_t Checksum(const void* data, size_t size);

// Incremental XXH3-64 for data written in pieces (the same value as Checksum
// over the concatenation).
class StreamingChecksum {
 public:
  StreamingChecksum();
  ~StreamingChecksum();
  StreamingChecksum(const StreamingChecksum&) = delete;
  StreamingChecksum& operator=(const StreamingChecksum&) = delete;
  void Update(const void* data, size_t size);
  uint64_t Digest() const;

 private:
  void* state_;
};

}  // namespace modelpress::pack
