#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "onnx_io/model_impl.h"

namespace modelpress {

Result<Model> LoadModel(const std::filesystem::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(name + ": no such file");
    return IoError(name + ": cannot open: " + std::strerror(err));
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(name + ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return Corrupt(name + ": empty file, not an ONNX model");
  }
  if (st.st_size > INT_MAX) {
    ::close(fd);
    return Corrupt(name + ": " + std::to_string(st.st_size) +
                   " bytes exceeds the 2 GiB limit of an ONNX protobuf file (large weights belong in external data)");
  }
  onnx::ModelProto proto;
  bool parsed = false;
  {
    google::protobuf::io::FileInputStream raw(fd, 1 << 20);  // 1 MiB reads, not the default 8 KiB
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT_MAX);
    parsed = proto.ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage();
  }
  ::close(fd);
  if (!parsed) return Corrupt(name + ": not a valid ONNX model (protobuf parsing failed: truncated or not an ONNX file)");
  if (!proto.has_graph() || proto.ir_version() <= 0) {
    return Corrupt(name + ": not an ONNX model (no ir_version or no graph)");
  }
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  return Model::FromProto(std::move(proto), dir, name);
}

}  // namespace modelpress
