// Internal state of a Model, shared by the load, view and save code.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/mapped_file.h"
#include "modelpress/onnx_io.h"

namespace modelpress {

// The resolved external bytes of one tensor.
struct ExternalSpan {
  std::shared_ptr<MappedFile> file;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Model::Impl {
  std::unique_ptr<onnx::ModelProto> proto;
  std::string source;
  std::filesystem::path base_dir;  // canonical, or empty
  std::vector<TensorEntry> tensors;
  std::unordered_map<std::string, size_t> by_name;
  std::unordered_map<const onnx::TensorProto*, ExternalSpan> external;
  std::map<std::filesystem::path, std::shared_ptr<MappedFile>> files;  // by canonical path

  // Maps the external data of `t` (validated) into `external`.
  Status ResolveExternal(const onnx::TensorProto& t, const std::string& name);
};

// Checks that the data of `t` matches its declared type and shape (without
// resolving external data) and returns the element count.
Result<int64_t> ValidateTensorLayout(const onnx::TensorProto& t, const std::string& where);

// A view of `t`, with `ext` giving its bytes when stored externally.
Result<TensorView> MakeView(const onnx::TensorProto& t, const ExternalSpan* ext, const std::string& where);

}  // namespace modelpress
