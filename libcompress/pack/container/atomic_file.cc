#include "container/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

namespace modelpress::pack {

AtomicFile::AtomicFile(std::filesystem::path final_path) : final_(std::move(final_path)) {
  static std::atomic<unsigned> counter{0};
  tmp_ = final_.parent_path() /
         ("." + final_.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (named_ && !committed_) ::unlink(tmp_.c_str());
}

Status AtomicFile::Open() {
  if (final_.filename().empty()) return InvalidArgument(final_.string() + ": output path names no file");
  // Found now rather than when renaming, after all the work (and, for
  // unpack, after other outputs were renamed into place).
  if (std::error_code ec; std::filesystem::is_directory(final_, ec)) return IoError(final_.string() + ": is a directory");
  // An unnamed file in the target folder (O_TMPFILE) leaves nothing behind
  // however the process ends, even by SIGKILL; it gets a name only at
  // Commit. Where the filesystem or a missing /proc rules that out, a
  // hidden temporary name from the start.
  const std::filesystem::path dir = final_.parent_path().empty() ? std::filesystem::path(".") : final_.parent_path();
  if (::access("/proc/self/fd", X_OK) == 0) {
    fd_ = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ >= 0) return Status::Ok();
  }
  fd_ = ::open(tmp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) return IoError(final_.string() + ": cannot create: " + std::strerror(errno));
  named_ = true;
  return Status::Ok();
}

Status AtomicFile::WriteAll(const char* p, size_t size) {
  while (size > 0) {
    const ssize_t w = ::write(fd_, p, size);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return IoError(final_.string() + ": write failed: " + std::strerror(errno));
    p += w;
    size -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status AtomicFile::Flush() {
  const Status s = WriteAll(buffer_.data(), buffer_.size());
  buffer_.clear();
  return s;
}

Status AtomicFile::Write(const void* data, size_t size) {
  // Small pieces (index records, tiny tensors) are gathered into one write.
  constexpr size_t kBuffer = 1 << 20;
  const auto* p = static_cast<const char*>(data);
  if (buffer_.size() + size <= kBuffer) {
    buffer_.insert(buffer_.end(), p, p + size);
    return Status::Ok();
  }
  MP_RETURN_IF_ERROR(Flush());
  if (size < kBuffer) {
    buffer_.insert(buffer_.end(), p, p + size);
    return Status::Ok();
  }
  return WriteAll(p, size);
}

Status AtomicFile::CheckWritten(const std::function<Status(std::span<const uint8_t>)>& check) {
  MP_RETURN_IF_ERROR(Flush());
  struct stat st{};
  if (::fstat(fd_, &st) != 0) return IoError(final_.string() + ": cannot read back: " + std::strerror(errno));
  const size_t n = static_cast<size_t>(st.st_size);
  if (n == 0) return check({});
  void* map = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd_, 0);
  if (map == MAP_FAILED) return IoError(final_.string() + ": cannot read back: " + std::strerror(errno));
  Status s = check({static_cast<const uint8_t*>(map), n});
  ::munmap(map, n);
  return s;
}

Status AtomicFile::Commit() {
  MP_RETURN_IF_ERROR(Flush());
  if (!named_) {
    // linkat cannot replace an existing file: the unnamed file is linked
    // under the temporary name, then renamed over the final path.
    const std::string self = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, self.c_str(), AT_FDCWD, tmp_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return IoError(final_.string() + ": cannot name the written file: " + std::strerror(errno));
    }
    named_ = true;
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return IoError(final_.string() + ": write failed: " + std::strerror(errno));
  if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
    return IoError(final_.string() + ": cannot rename into place: " + std::strerror(errno));
  }
  committed_ = true;
  return Status::Ok();
}

Status WriteFileAtomically(const std::filesystem::path& path, const void* data, size_t size) {
  AtomicFile f(path);
  MP_RETURN_IF_ERROR(f.Open());
  MP_RETURN_IF_ERROR(f.Write(data, size));
  return f.Commit();
}

}  // namespace modelpress::pack
