#include <string>

#include "container/atomic_file.h"
#include "container/out_of_memory.h"
#include "modelpress/pack_reader.h"
#include "modelpress/tensor.h"

namespace modelpress::pack {
namespace {

const char* NpyDescr(int32_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat32: return "<f4";
    case DType::kFloat16: return "<f2";
    case DType::kFloat64: return "<f8";
    case DType::kInt8: return "|i1";
    case DType::kUint8: return "|u1";
    case DType::kInt16: return "<i2";
    case DType::kUint16: return "<u2";
    case DType::kInt32: return "<i4";
    case DType::kUint32: return "<u4";
    case DType::kInt64: return "<i8";
    case DType::kUint64: return "<u8";
    case DType::kBool: return "|b1";
    case DType::kComplex64: return "<c8";
    case DType::kComplex128: return "<c16";
    case DType::kBfloat16: return "<u2";
    case DType::kFloat8E4M3FN: case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2: case DType::kFloat8E5M2FNUZ:
      return "|u1";
    default: return nullptr;
  }
}

}  // namespace

Status WriteTensorNpy(const Reader& reader, const TensorInfo& tensor, const std::filesystem::path& path) {
  return ReportOutOfMemory(reader.name() + ": tensor '" + tensor.name + "'", [&]() -> Status {
    std::vector<std::byte> data(tensor.bytes);
    MP_RETURN_IF_ERROR(reader.ReadTensor(tensor, data));
    return WriteTensorNpy(tensor, data, path, reader.name());
  });
}

Status WriteTensorNpy(const TensorInfo& tensor, std::span<const std::byte> data, const std::filesystem::path& path,
                      const std::string& source) {
  return ReportOutOfMemory(path.string(), [&]() -> Status {
    const char* descr = NpyDescr(tensor.dtype);
    if (descr == nullptr) {
      return Unsupported(source + ": tensor '" + tensor.name + "' has a data type .npy cannot hold");
    }
    if (data.size() != tensor.bytes) {
      return InvalidArgument(source + ": tensor '" + tensor.name + "' has " + std::to_string(data.size()) +
                             " bytes of data, not " + std::to_string(tensor.bytes));
    }
    std::string shape = "(";
    for (size_t i = 0; i < tensor.shape.size(); ++i) shape += std::to_string(tensor.shape[i]) + ", ";
    if (tensor.shape.size() > 1) shape.resize(shape.size() - 2);
    else if (tensor.shape.size() == 1) shape.pop_back();
    shape += ")";
    std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
    // Magic, version 1.0, header length; the header is padded with spaces and
    // ends in a newline so the data starts on a 64-byte boundary.
    const size_t prefix = 10;
    const size_t total = (prefix + header.size() + 1 + 63) / 64 * 64;
    if (total - prefix > 65535) return Unsupported(source + ": tensor '" + tensor.name + "' has too many dimensions for .npy 1.0");
    header.append(total - prefix - header.size() - 1, ' ');
    header.push_back('\n');
    std::string out = "\x93NUMPY";
    out.push_back(1);
    out.push_back(0);
    out.push_back(static_cast<char>(header.size() & 0xff));
    out.push_back(static_cast<char>(header.size() >> 8));
    out += header;
    out.append(reinterpret_cast<const char*>(data.data()), data.size());
    return WriteFileAtomically(path, out.data(), out.size());
  });
}

Status WriteGraphSection(const Reader& reader, const std::filesystem::path& path) {
  return ReportOutOfMemory(reader.name() + ": graph section", [&]() -> Status {
    MP_ASSIGN_OR_RETURN(std::string graph, reader.ReadSkeleton());
    return WriteFileAtomically(path, graph.data(), graph.size());
  });
}

}  // namespace modelpress::pack
