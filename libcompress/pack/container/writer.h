// Assembles an artifact from encoded parts (no ONNX knowledge: the ONNX
// packer in onnx/ and the tests feed it).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "container/format.h"
#include "container/index.h"
#include "modelpress/pack_reader.h"
#include "modelpress/status.h"

namespace modelpress::pack {

struct PendingTensor {
  std::string name;                     // graph value name, unique
  int32_t dtype = 0;                    // ONNX data type
  std::vector<int64_t> shape;           // dimensions
  Encoder encoder = Encoder::kWhole;    // how `payload` is encoded
  StorageKind storage = StorageKind::kRaw;  // where the ONNX model keeps it
  uint32_t external_file = 0;           // PendingFile index for kExternal
  uint64_t external_offset = 0;         // offset in that file for kExternal
  std::vector<uint8_t> payload;         // encoded bytes
  std::optional<uint64_t> payload_checksum;  // XXH3-64 of payload, when the caller computed it (in parallel)
  // For ArtifactBytes only: the size of a payload not written yet (then
  // `payload` is empty and payload_checksum stands in for its checksum).
  std::optional<uint64_t> planned_size;
};

struct PendingFile {
  std::string name;                     // location relative to the model's folder
  uint64_t size = 0;                    // bytes of the whole file
  uint64_t checksum = 0;                // XXH3-64 of the whole file
  std::vector<uint8_t> residue;         // a Stream of the bytes no tensor covers
};

struct ArtifactContents {
  std::vector<uint8_t> skeleton;        // a Stream of the serialized ModelProto without payloads
  bool graph_dictionary = false;        // the skeleton's zstd frame uses the graph dictionary; the index will too
  uint64_t onnx_size = 0;               // bytes of the packed .onnx file
  uint64_t onnx_checksum = 0;           // XXH3-64 of it
  bool exact_onnx = false;              // unpack must reproduce exactly those bytes
  std::vector<PendingTensor> tensors;   // in index order
  std::vector<PendingFile> files;       // external data files
  std::vector<CodeLengths> tables;      // shared code tables the payloads' streams use (mode 5), by id
  int index_level = 19;                 // zstd level of the index section
};

// Hands the whole artifact to `sink` in order (header, payload sections,
// graph, residues, index, footer) without assembling it in memory; stops at
// the sink's first error. `size`, when given, receives the artifact's bytes.
Status WriteArtifact(const ArtifactContents& contents, const std::function<Status(const void*, size_t)>& sink,
                     uint64_t* size = nullptr);

// The size WriteArtifact would give, with planned sizes standing in for
// payloads not written yet: exact up to how well the index's zstd frame
// compresses the stand-in checksums.
uint64_t ArtifactBytes(const ArtifactContents& contents);

// The same bytes in one buffer.
std::vector<uint8_t> SerializeArtifact(const ArtifactContents& contents);

}  // namespace modelpress::pack
