// A file written in its final folder and renamed into place by Commit(); a
// failure leaves no partial output. It is written unnamed (O_TMPFILE) where
// the filesystem allows, so that not even a killed process leaves anything
// behind, else under a hidden temporary name removed when destroyed
// uncommitted. (The same idea as onnx_io/save.cc's TempFile, which is
// private to that file and sits in the ONNX-linked library.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <vector>

#include "modelpress/status.h"

namespace modelpress::pack {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path final_path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  Status Open();
  // Buffered: an error may show at a later Write or at Commit.
  Status Write(const void* data, size_t size);
  // Flushes and hands what was written so far, mapped, to `check`; its
  // error is returned.
  Status CheckWritten(const std::function<Status(std::span<const uint8_t>)>& check);
  // Flushes and closes the temporary, then renames it to the final path.
  Status Commit();
  const std::filesystem::path& path() const { return final_; }

 private:
  Status WriteAll(const char* p, size_t size);
  Status Flush();

  std::filesystem::path final_, tmp_;
  std::vector<char> buffer_;
  int fd_ = -1;
  bool named_ = false;  // the temporary name exists (removed unless committed)
  bool committed_ = false;
};

// Writes `size` bytes to `path` atomically.
Status WriteFileAtomically(const std::filesystem::path& path, const void* data, size_t size);

}  // namespace modelpress::pack
