// NumPy .npy files (format versions 1.0-3.0): the inputs, labels and outputs
// that `modelpress eval` and the tests exchange with other tools.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress {

// A whole .npy array in memory: little-endian, C order, packed.
struct NpyArray {
  DType dtype = DType::kUndefined;  // float32, float64, int64, int32, int8, uint8 or bool
  std::vector<int64_t> shape;       // dims; empty for a scalar
  std::vector<std::byte> data;      // element count * element size bytes

  int64_t size() const { return static_cast<int64_t>(data.size() / DTypeSize(dtype)); }
  template <class T>
  const T* as() const {
    return reinterpret_cast<const T*>(data.data());
  }
};

// Parses .npy bytes. Corrupt for bad magic, a malformed header, a declared
// size that does not match the bytes; Unsupported for Fortran order,
// big-endian data and other dtypes. `name` (usually the file) starts every
// message.
Result<NpyArray> ParseNpy(std::string_view bytes, const std::string& name);

// Reads a .npy file; IoError when it cannot be read, then as ParseNpy.
Result<NpyArray> ReadNpy(const std::filesystem::path& path);

// The .npy (version 1.0) bytes of `a`, as numpy.save writes them.
Result<std::string> EncodeNpy(const NpyArray& a);

// Writes `a` to `path` through a temporary file renamed into place.
Status WriteNpy(const std::filesystem::path& path, const NpyArray& a);

}  // namespace modelpress
