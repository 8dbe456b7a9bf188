// Puts tensor data back into the graph section without protobuf: the graph
// section is a ModelProto serialized by protobuf with the indexed tensors'
// data fields left out, so restoring the model means inserting each data
// field where protobuf would have written it (fields go in number order) and
// growing the lengths of the messages that enclose it. The result is the
// bytes protobuf's deterministic serialization gives for the filled-in model.
#pragma once

#include <cstdint>
#include <cstddef>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include "modelpress/pack_reader.h"

namespace modelpress::pack {

// The restored model as pieces to write in order: spans of the graph
// section, generated field headers, and the data of tensors. A piece either
// holds bytes (pointing into the graph section, into `data` given to
// SpliceModel, or into `owned`) or stands for the packed bytes of
// tensors[tensor], which the caller supplies when writing, so a restore can
// decode tensors as it writes them instead of holding them all.
struct SplicedModel {
  static constexpr size_t kNoTensor = SIZE_MAX;
  struct Piece {
    std::span<const uint8_t> bytes;
    size_t tensor = kNoTensor;  // else: tensors[tensor].bytes of its packed data go here
  };
  std::vector<Piece> pieces;
  std::deque<std::vector<uint8_t>> owned;
  uint64_t size = 0;  // bytes of the restored model, tensor data included
};

// Finds the TensorProto of each tensor of `tensors` in `graph` (the
// initializers, then the `value` of each Constant node named by its output,
// the same tensors pack takes payloads from), checks that its type, shape and
// storage agree with the index and that it holds no data, and splices in its
// data. data[i], the packed bytes of tensors[i], is read only when the
// tensor's typed field is varint-encoded (NeedsDataToSplice), whose length
// depends on the values; every other tensor becomes a tensor piece.
// On failure returns false with `error` naming the tensor and what is wrong.
bool SpliceModel(std::span<const uint8_t> graph, std::span<const TensorInfo> tensors,
                 std::span<const std::span<const uint8_t>> data, SplicedModel* out, std::string* error);

// True when SpliceModel needs the tensor's data (typed storage in a field of
// varints: int32_data, int64_data, uint64_data).
bool NeedsDataToSplice(const TensorInfo& t);

// The model's bytes, joined, with data[i] for tensor pieces of tensors[i].
std::vector<uint8_t> JoinPieces(const SplicedModel& model, std::span<const std::span<const uint8_t>> data);

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
