// The ONNX side of the artifact: which TensorProtos carry payloads, and how
// their data is taken out of and put back into the ModelProto.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "modelpress/status.h"

namespace modelpress::pack {

struct NamedTensor {
  std::string name;
  onnx::TensorProto* proto = nullptr;
};

// Initializers, then the `value` tensors of Constant nodes, in graph order:
// the same tensors, in the same order, as Model::tensors().
std::vector<NamedTensor> EnumerateTensors(onnx::ModelProto& model);

// Stores packed little-endian elements in the typed field ONNX uses for the
// tensor's data type (int8/int16 sign-extended, other narrow types
// zero-extended into int32_data; uint32 into uint64_data).
void FillTyped(onnx::TensorProto* t, std::span<const uint8_t> packed);

// True when FillTyped(packed) would give exactly the typed field `t` has.
bool TypedMatches(const onnx::TensorProto& t, std::span<const uint8_t> packed);

// Removes the typed fields' contents.
void ClearTyped(onnx::TensorProto* t);

// Number of entries in all typed fields.
int TypedEntries(const onnx::TensorProto& t);

// Serializes with protobuf's deterministic mode, as SaveModel does.
bool SerializeDeterministic(const onnx::ModelProto& model, std::string* out);

// The same bytes, handed to `sink` in pieces of up to 1 MiB instead of held
// whole. Stops with false when the sink returns false.
bool SerializeDeterministic(const onnx::ModelProto& model, const std::function<bool(const void*, size_t)>& sink);

}  // namespace modelpress::pack
