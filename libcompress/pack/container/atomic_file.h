// Models, artifacts, external data files and .npy files are written through
// AtomicFile (JSON reports are not): written in their final folder and
// renamed into place by Commit(), so a failure leaves no partial output. It is written unnamed (O_TMPFILE) where the filesystem allows, so
// that not even a killed process leaves anything behind, else under a
// hidden temporary name removed when destroyed uncommitted.
//
// Outputs that are not regular files are written into, never replaced: a
// device (/dev/null), a named pipe or socket, or an open file named through
// /proc (/dev/stdout, /dev/fd/N). Their bytes are gathered in an unnamed
// temporary file in the temporary folder ($TMPDIR, else /tmp) and copied to
// the output at Commit(). A symbolic link to a regular file is replaced
// like a file, and the file it named is left alone (as the external data
// written beside the link's path expects, and so that a link into a
// release folder never overwrites a release).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
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
  // Flushes and closes the temporary, then renames it to the final path (or
  // copies it into an output that is no regular file).
  Status Commit();
  const std::filesystem::path& path() const { return final_; }

  // True when `path` is an output that is written into rather than replaced
  // (see above): files beside it, such as external data, have no place.
  static bool WritesInto(const std::filesystem::path& path);

 private:
  Status WriteAll(const char* p, size_t size);
  Status Flush();
  Status CopyInto();

  std::filesystem::path final_, tmp_;
  std::vector<char> buffer_;
  int fd_ = -1;
  bool named_ = false;  // the temporary name exists (removed unless committed)
  bool committed_ = false;
  bool into_ = false;   // written into final_ at Commit (WritesInto)
};

// Copies what `in` delivers, until its end, to `out`. A failure is named
// `reading` or `writing` (the side that failed) and the system's reason.
Status CopyUntilEnd(int in, int out, const std::string& reading, const std::string& writing);

// An unnamed file in the temporary folder ($TMPDIR, else /tmp), open for
// reading and writing and gone once closed; -1, with `*error` saying why,
// when none can be made.
int OpenUnnamedTemporary(std::string* error);

// Writes `size` bytes to `path` atomically.
Status WriteFileAtomically(const std::filesystem::path& path, const void* data, size_t size);

}  // namespace modelpress::pack
