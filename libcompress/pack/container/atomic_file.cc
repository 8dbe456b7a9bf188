#include "container/atomic_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace modelpress::pack {
namespace {

namespace fs = std::filesystem;

// True when `p`, or a symbolic link on the way to what it names, lies under
// /proc or /dev/fd: a file a process has open (/dev/stdout is a link to
// /proc/self/fd/1), which only writing into reaches.
bool NamesOpenFile(fs::path p) {
  for (int hops = 0; hops < 40; ++hops) {
    std::error_code ec;
    const std::string s = fs::absolute(p, ec).lexically_normal().generic_string();
    if (s.starts_with("/proc/") || s.starts_with("/dev/fd/")) return true;
    if (!fs::is_symlink(p, ec)) return false;
    const fs::path target = fs::read_symlink(p, ec);
    if (ec) return false;
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
  return false;
}

fs::path TemporaryFolder() {
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);
  return ec ? fs::path("/tmp") : dir;
}

fs::path HiddenTemporary(const fs::path& beside) {
  static std::atomic<unsigned> counter{0};
  return beside.parent_path() /
         ("." + beside.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
}

}  // namespace

bool AtomicFile::WritesInto(const fs::path& path) {
  // Through /proc even when the file is gone (`-o /dev/stdout` with standard
  // output closed): Open then fails, instead of replacing /dev/stdout.
  if (NamesOpenFile(path)) return true;
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);  // absent: a new regular file
}

AtomicFile::AtomicFile(fs::path final_path) : final_(std::move(final_path)) {}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (named_ && !committed_) ::unlink(tmp_.c_str());
}

Status AtomicFile::Open() {
  if (final_.filename().empty()) return InvalidArgument(final_.string() + ": output path names no file");
  // Found now rather than when renaming, after all the work (and, for
  // unpack, after other outputs were renamed into place).
  if (std::error_code ec; fs::is_directory(final_, ec)) return IoError(final_.string() + ": is a directory");
  if (WritesInto(final_)) {
    into_ = true;
    if (::access(final_.c_str(), W_OK) != 0) return IoError(final_.string() + ": cannot write: " + std::strerror(errno));
    std::string error;
    fd_ = OpenUnnamedTemporary(&error);
    if (fd_ < 0) return IoError(final_.string() + ": " + error);
    return Status::Ok();
  }
  tmp_ = HiddenTemporary(final_);
  // An unnamed file in the target folder (O_TMPFILE) leaves nothing behind
  // however the process ends, even by SIGKILL; it gets a name only at
  // Commit. Where the filesystem or a missing /proc rules that out, a
  // hidden temporary name from the start.
  const fs::path dir = final_.parent_path().empty() ? fs::path(".") : final_.parent_path();
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

Status AtomicFile::CopyInto() {
  // Opened only now: a named pipe's open waits for its reader. A regular
  // file reached through /proc (stdout redirected to a file) is appended
  // to, as the shell's `>` and `>>` leave it.
  struct stat st{};
  const bool regular = ::stat(final_.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  const int out = ::open(final_.c_str(), O_WRONLY | O_CLOEXEC | (regular ? O_APPEND : 0));
  if (out < 0) return IoError(final_.string() + ": cannot write: " + std::strerror(errno));
  Status s = ::lseek(fd_, 0, SEEK_SET) == 0
                 ? CopyUntilEnd(fd_, out, final_.string() + ": cannot read back the temporary file",
                                final_.string() + ": write failed")
                 : IoError(final_.string() + ": cannot read back the temporary file: " + std::strerror(errno));
  if (::close(out) != 0 && s.ok()) s = IoError(final_.string() + ": write failed: " + std::strerror(errno));
  return s;
}

Status AtomicFile::Commit() {
  MP_RETURN_IF_ERROR(Flush());
  if (into_) {
    MP_RETURN_IF_ERROR(CopyInto());
    committed_ = true;
    return Status::Ok();
  }
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

Status CopyUntilEnd(int in, int out, const std::string& reading, const std::string& writing) {
  std::vector<char> piece(1 << 20);
  for (;;) {
    const ssize_t r = ::read(in, piece.data(), piece.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return IoError(reading + ": " + std::strerror(errno));
    if (r == 0) return Status::Ok();
    for (const char* p = piece.data(); p < piece.data() + r;) {
      const ssize_t w = ::write(out, p, static_cast<size_t>(piece.data() + r - p));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return IoError(writing + ": " + std::strerror(errno));
      p += w;
    }
  }
}

int OpenUnnamedTemporary(std::string* error) {
  const fs::path dir = TemporaryFolder();
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return fd;
  std::string name = (dir / ".modelpress-XXXXXX").string();
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot create a temporary file in " + dir.string() + ": " + std::strerror(errno);
    return -1;
  }
  ::unlink(name.c_str());
  return fd;
}

Status WriteFileAtomically(const std::filesystem::path& path, const void* data, size_t size) {
  AtomicFile f(path);
  MP_RETURN_IF_ERROR(f.Open());
  MP_RETURN_IF_ERROR(f.Write(data, size));
  return f.Commit();
}

}  // namespace modelpress::pack
