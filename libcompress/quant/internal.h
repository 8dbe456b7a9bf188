// Helpers shared by the files of libcompress/quant (not part of the API).
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace modelpress::quant {

bool IsDefaultDomain(const onnx::NodeProto& n);
// The node's name, or its first output when it has none (what messages and --exclude see).
std::string NodeLabel(const onnx::NodeProto& n);
int64_t IntAttr(const onnx::NodeProto& n, std::string_view name, int64_t fallback);
float FloatAttr(const onnx::NodeProto& n, std::string_view name, float fallback);
// Version of the default ONNX domain the model imports, 0 when none.
int64_t DefaultOpset(const onnx::ModelProto& m);

}  // namespace modelpress::quant
