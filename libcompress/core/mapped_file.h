// Read-only-on-disk memory mapping of a whole file (internal to libcompress).
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>

#include "modelpress/status.h"

namespace modelpress {

// The mapping is private and writable: writes (e.g. a pruner zeroing weights
// in an external-data tensor) touch only this process's copy of the touched
// pages and never the file. Unwritten pages cost no memory beyond the page cache.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> Open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<std::byte> bytes() const { return {data_, size_}; }

  // Makes [offset, offset + length) private and writable in one call, rather
  // than one page fault per page on first write. Only a speed-up: writing
  // without it is correct too.
  void PrepareForWrite(size_t offset, size_t length) const;
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::filesystem::path path_;
  std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace modelpress
