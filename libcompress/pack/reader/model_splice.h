// Puts tensor data back into the graph section without protobuf: the graph
// section is a ModelProto serialized by protobuf with the indexed tensors'
// data fields left out, so restoring the model means inserting each data
// field where protobuf would have written it (fields go in number order) and
// growing the lengths of the messages that enclose it. The result is the
// bytes protobuf's deterministic serialization gives for the filled-in model.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "modelpress/pack_reader.h"

namespace modelpress::pack {

// The restored model as pieces to write in order: spans of the graph
// section, generated field headers, and tensor data. Pieces point into the
// graph section, the data passed to SpliceModel and `owned`.
struct SplicedModel {
  std::vector<std::span<const uint8_t>> pieces;
  std::deque<std::vector<uint8_t>> owned;
  uint64_t size = 0;
};

// Finds the TensorProto of each tensor of `tensors` in `graph` (the
// initializers, then the `value` of each Constant node named by its output,
// the same tensors pack takes payloads from), checks that its type, shape and
// storage agree with the index and that it holds no data, and splices in
// data[i], the packed bytes of tensors[i] (unused for external storage).
// On failure returns false with `error` naming the tensor and what is wrong.
bool SpliceModel(std::span<const uint8_t> graph, std::span<const TensorInfo> tensors,
                 std::span<const std::span<const uint8_t>> data, SplicedModel* out, std::string* error);

// A tensor whose data the graph section holds.
struct InlineTensor {
  TensorInfo info;                // storage 0 (raw_data) or 1 (typed field); no payload
  std::span<const uint8_t> raw;   // storage 0: the raw_data bytes, inside the graph section
  std::vector<uint8_t> typed;     // storage 1: the typed field's entries, packed little-endian
  std::span<const uint8_t> data() const { return info.storage == 0 ? raw : std::span<const uint8_t>(typed); }
};

// The initializers and Constant values of `graph` (the first of each name,
// as SpliceModel sees them) that hold their data in the graph, in graph
// order: those of a data type with a fixed element size and not stored
// externally. Fails, naming the tensor, when the data does not fit the
// tensor's shape and type.
bool FindInlineTensors(std::span<const uint8_t> graph, std::vector<InlineTensor>* out, std::string* error);

}  // namespace modelpress::pack
