// Reading .mpk artifacts (docs/artifact_format.md) without ONNX or protobuf:
// the part of modelpress an edge device embeds. Link modelpress::pack_reader
// (needs only libzstd; xxHash is used header-only).
//
//   auto r = modelpress::pack::Reader::Open("model.mpk");
//   if (!r.ok()) ...;
//   const auto* t = r->FindTensor("fc1.weight");
//   std::vector<std::byte> buf(t->bytes);
//   Status s = r->ReadTensor(*t, buf);
//
// No call throws: memory the system refuses (a tensor declaring more than a
// small device has) gives kResourceExhausted, naming the artifact and the
// tensor, like any other failure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelpress/status.h"

namespace modelpress::pack {

// How a tensor's payload is encoded (stored in the artifact; values are on-disk codes).
enum class Encoder : uint8_t {
  kWhole = 0,         // one byte stream over the packed elements (raw, constant, Huffman or zstd)
  kPlanes = 1,        // elements transformed, split into byte planes, one stream per plane
  kSparseGaps = 2,    // zero positions as Huffman-coded gaps between nonzeros + nonzero values as planes
  kSparseBitmap = 3,  // zero positions as an entropy-coded bitmap + nonzero values as planes
  kNM = 4,            // the nonzero pattern of each group of M along one axis + nonzero values as planes
};

// "whole", "planes", "sparse-gaps", "sparse-bitmap", "nm".
std::string_view EncoderName(Encoder e);

// One tensor of the artifact, as its index describes it.
struct TensorInfo {
  std::string name;                  // the graph value name
  int32_t dtype = 0;                 // ONNX TensorProto.DataType (same values as modelpress::DType)
  std::vector<int64_t> shape;        // dimensions
  uint64_t element_count = 0;        // product of the dimensions
  uint64_t bytes = 0;                // decoded size: element_count * element size
  Encoder encoder = Encoder::kWhole; // how it is stored
  uint64_t stored_bytes = 0;         // bytes of its payload in the artifact
  uint8_t storage = 0;               // where the ONNX model keeps it: 0 raw_data, 1 typed field, 2 external file
  uint32_t external_file = 0;        // index into ArtifactInfo::files when storage is 2
  uint64_t external_offset = 0;      // byte offset in that file when storage is 2
};

// An external data file of the packed model.
struct ExternalFileInfo {
  std::string name;                  // location relative to the model's folder
  uint64_t size = 0;                 // bytes of the whole file
  uint64_t checksum = 0;             // XXH3-64 of the whole file
  uint64_t residue_stored = 0;       // stored bytes of the parts no tensor covers
};

struct ArtifactInfo {
  uint16_t version_major = 0;        // format version of the file
  uint16_t version_minor = 0;
  uint64_t file_size = 0;            // bytes of the artifact
  uint64_t index_bytes = 0;          // bytes of the index section
  uint64_t skeleton_stored = 0;      // stored bytes of the graph skeleton section
  uint64_t skeleton_bytes = 0;       // its decoded bytes
  bool graph_dictionary = false;     // the graph and index sections use the built-in zstd dictionary
  uint64_t onnx_size = 0;            // bytes of the packed .onnx file
  uint64_t onnx_checksum = 0;        // XXH3-64 of the packed .onnx file
  bool exact_onnx = false;           // an unpacked .onnx must hash to onnx_checksum (checked by unpack)
  std::vector<ExternalFileInfo> files;  // external data files, in index order
  size_t shared_tables = 0;          // code tables the index holds for streams of several tensors
  uint64_t shared_table_bytes = 0;   // their bytes in the index (before the index's zstd)
};

struct ReaderOptions {
  // Largest decoded tensor accepted, in bytes (default 4 GiB). Tensors that
  // declare more are refused at Open, before anything is allocated.
  uint64_t max_tensor_bytes = uint64_t{4} << 30;
  // Largest decoded graph skeleton or external-file residue, in bytes
  // (default 2 GiB, protobuf's own limit for a model).
  uint64_t max_section_bytes = uint64_t{2} << 30;
};

// An open artifact. Open validates the header, footer and index (checksums,
// every offset and size against the file, names, shapes, limits) so later
// reads only need to check the one section they touch. Reads are const and
// may run concurrently from several threads.
class Reader {
 public:
  // Maps `path` read-only.
  static Result<Reader> Open(const std::filesystem::path& path, const ReaderOptions& options = {});
  // Reads from memory the caller keeps alive and unchanged while the Reader lives.
  static Result<Reader> FromMemory(std::span<const std::byte> data, const ReaderOptions& options = {},
                                   std::string name = "<memory>");

  Reader(Reader&&) noexcept;
  Reader& operator=(Reader&&) noexcept;
  ~Reader();

  const std::string& name() const;
  const ArtifactInfo& info() const;
  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* FindTensor(std::string_view name) const;

  // Decodes one tensor into `out`, which must be exactly t.bytes long (little-endian
  // packed elements). Verifies the payload checksum first. On failure `out`
  // holds unspecified bytes.
  Status ReadTensor(const TensorInfo& t, std::span<std::byte> out) const;
  // As ReadTensor, also returning the modes of the payload's streams (e.g.
  // "planes:huff,huff,raw,raw") for reports.
  Status ReadTensor(const TensorInfo& t, std::span<std::byte> out, std::string* detail) const;

  // Says that t's payload will not be read again soon: where the reader
  // maps a file (Open), the payload's pages are handed back to the kernel,
  // so that reading every tensor once does not leave the whole artifact
  // counted as the process's memory. A later ReadTensor reads them again
  // from the file. No effect on FromMemory readers.
  void ReleasePayload(const TensorInfo& t) const;

  // The serialized ONNX ModelProto whose tensor payloads were removed.
  Result<std::string> ReadSkeleton() const;
  // The bytes of external file `file` that no tensor covers, in file order.
  Result<std::string> ReadResidue(size_t file) const;

 private:
  struct Impl;
  explicit Reader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Order-0 entropy bound of a tensor's decoded bytes, in bits (see
// docs/artifact_format.md, "Entropy bound"): the entropy of its zero mask
// plus, for the nonzero elements, that of their values (1-byte types) or of
// each transformed byte plane (wider types).
double EntropyBoundBits(int32_t dtype, std::span<const std::byte> packed);

}  // namespace modelpress::pack

namespace modelpress::pack {

struct UnpackOptions {
  int threads = 0;  // worker threads for decoding; 0 = one per core (default 0)
  // Decoded tensor data held at once: tensors are decoded ahead of the
  // writing, in the order they are written, within this many bytes (or one
  // tensor, when a tensor is larger). Default 64 MiB.
  uint64_t max_buffered_bytes = uint64_t{64} << 20;
};

struct UnpackReport {
  std::vector<std::filesystem::path> written;  // the .onnx file, then external data files
  bool byte_exact_checked = false;             // the .onnx bytes were checked against the packed file's checksum
  uint64_t peak_buffered_bytes = 0;            // most decoded tensor data held at once
};

// Restores the ONNX model of `artifact` as `onnx`, without protobuf: each
// tensor's data is spliced back into the graph section where protobuf would
// write it, decoded just ahead of its writing (see max_buffered_bytes). External data files go next to `onnx` under their original
// locations (which must be relative and stay inside that folder). Every tensor payload, the graph and every external
// file is checked against its checksum; nothing is written unless all
// checks pass, and every file is written to a temporary and renamed.
Result<UnpackReport> UnpackModel(const std::filesystem::path& artifact, const std::filesystem::path& onnx,
                                 const UnpackOptions& options = {});

// A tensor the graph section holds with its data instead of a payload of
// its own: one smaller than pack's --min-tensor-bytes, or a raw tensor of
// up to --inline-up-to bytes that pack kept there because the artifact came
// out smaller. Reader::tensors() does not list these.
struct GraphTensor {
  TensorInfo info;              // storage 0 (raw_data) or 1 (typed field); stored_bytes 0: the graph section's zstd holds it
  std::vector<std::byte> data;  // its elements, packed little-endian as ReadTensor gives a payload's
};

// Decodes the graph section and returns the tensors it holds with their
// data, in graph order: initializers and Constant values of the main graph
// with a fixed element size that the index does not list. (An external-data
// tensor too small for a payload stays in its file's residue, not here.)
Result<std::vector<GraphTensor>> ReadGraphTensors(const Reader& reader);

// Writes one tensor as a NumPy .npy file (format 1.0, C order), atomically.
// Types NumPy lacks are written as unsigned integers of the same width
// holding the bits: bfloat16 as <u2, the float8 types as |u1.
Status WriteTensorNpy(const Reader& reader, const TensorInfo& tensor, const std::filesystem::path& path);
// The same for a tensor already decoded (`data`: tensor.bytes packed
// little-endian elements); `source` names the artifact in errors.
Status WriteTensorNpy(const TensorInfo& tensor, std::span<const std::byte> data, const std::filesystem::path& path,
                      const std::string& source);

// Writes the decoded graph section (the serialized ModelProto without the
// indexed tensors' data), atomically.
Status WriteGraphSection(const Reader& reader, const std::filesystem::path& path);

}  // namespace modelpress::pack
