// Loading, viewing and saving ONNX models.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress {

enum class ExternalData {
  kAuto,    // external when the model was loaded with external data or would not fit in 2 GiB inline
  kAlways,  // tensors of at least `external_threshold` bytes go to the data file
  kNever,   // everything inline; fails when the model would exceed protobuf's 2 GiB
};

// Changes a tensor's bytes while SaveModel copies them out, leaving the model
// itself as it is: `in` holds the packed bytes [offset, offset + in.size()) of
// the tensor as the model has them, `out` (the same size, possibly the same
// memory) receives what is written. Pieces hold whole elements and arrive in
// increasing offset order. This lets a caller change a large tensor that is
// memory-mapped from an external data file without writing into the mapping,
// which would copy every page it touches.
using TensorEdit = std::function<void(uint64_t offset, std::span<const std::byte> in, std::span<std::byte> out)>;

struct SaveOptions {
  ExternalData external = ExternalData::kAuto;  // default: kAuto
  uint64_t external_threshold = 1024;           // bytes; smaller tensors stay inline (default 1024)
  std::string data_file;                        // data file name in the model's folder; default "<model file name>.data"
  uint64_t alignment = 64;                      // bytes; offset alignment of tensors in the data file (default 64)
  std::map<std::string, TensorEdit> edits;      // by tensor name; each must name a tensor of the model
};

// Where a named constant tensor of the graph is declared.
enum class TensorSource {
  kInitializer,   // graph.initializer
  kConstantNode,  // the `value` attribute of a Constant node
};

struct TensorEntry {
  std::string name;                    // the graph value name (a Constant node's output)
  TensorSource source = TensorSource::kInitializer;
  int node_index = -1;                 // index in graph.node for kConstantNode, else -1
  onnx::TensorProto* proto = nullptr;  // owned by the Model
};

// An ONNX model and the index of its constant tensors. Initializer bytes are
// never copied on load: views point into the parsed protobuf or into
// memory-mapped external data files.
class Model {
 public:
  // Wraps a model built in memory. External data locations resolve against
  // `base_dir`; `source` names the model in error messages.
  static Result<Model> FromProto(onnx::ModelProto proto, const std::filesystem::path& base_dir = {},
                                 std::string source = "<memory>");

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const onnx::ModelProto& proto() const;
  // For structural edits; call Reindex() afterwards when tensors were added or removed.
  onnx::ModelProto& mutable_proto();

  // The file the model was loaded from, or "<memory>"; used in messages.
  const std::string& source() const;
  // The folder external data locations resolve against (empty for none).
  const std::filesystem::path& base_dir() const;

  // Initializers, then Constant-node tensors, each in graph order.
  const std::vector<TensorEntry>& tensors() const;
  const TensorEntry* FindTensor(std::string_view name) const;

  // A typed view of a tensor's data wherever it is stored. Unsupported for
  // element types without a fixed byte size (string, 4-bit types).
  Result<TensorView> View(const TensorEntry& entry) const;
  Result<TensorView> View(std::string_view name) const;

  // A writable view of a tensor's packed elements. Data in ONNX's typed
  // fields is first moved into raw_data (one copy); external data is written
  // in this process's private mapping and never in the file.
  Result<MutableTensorView> MutableTensor(std::string_view name);

  // Whether any tensor's data was loaded from an external file.
  bool uses_external_data() const;

  // Rebuilds the tensor index and validates every tensor (sizes against
  // data, external locations); needed after mutable_proto() adds or removes
  // tensors.
  Status Reindex();

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend Status SaveModel(const Model&, const std::filesystem::path&, const SaveOptions&);
};

// Loads `path`. Refuses (with a message naming the file and tensor) files
// that are not ONNX models, truncated files, tensors whose declared size does
// not match their data, external data that is missing, too short, or whose
// location is absolute, contains "..", or resolves outside the model's folder.
Result<Model> LoadModel(const std::filesystem::path& path);

// Writes `model` to `path` (and its data file) with deterministic bytes: the
// same model and options always give the same files. Files are written to
// temporaries in the target folder and renamed, so a failure leaves no
// partial output. The model is logically unchanged; do not use it from
// another thread during the call.
Status SaveModel(const Model& model, const std::filesystem::path& path, const SaveOptions& options = {});

// Newest versions Debian's libonnx (1.12) can check.
inline constexpr int64_t kCheckerMaxIrVersion = 8;
inline constexpr int64_t kCheckerMaxOpset = 17;

struct CheckOutcome {
  bool ran = false;    // false when the model is newer than the checker knows
  std::string notice;  // one line saying why the check was skipped
};

// Runs ONNX's checker on the model; an error names the model and the checker's complaint.
Result<CheckOutcome> CheckModel(const Model& model);

}  // namespace modelpress
