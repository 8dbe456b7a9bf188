#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <climits>
#include <optional>

#include "onnx_io/model_impl.h"
#include "pack/container/atomic_file.h"

namespace modelpress {
namespace {

// Serialized protobuf bytes into an AtomicFile.
class AtomicFileStream : public google::protobuf::io::CopyingOutputStream {
 public:
  explicit AtomicFileStream(pack::AtomicFile* file) : file_(file) {}
  bool Write(const void* buffer, int size) override {
    if (status_.ok()) status_ = file_->Write(buffer, static_cast<size_t>(size));
    return status_.ok();
  }
  const Status& status() const { return status_; }

 private:
  pack::AtomicFile* file_;
  Status status_ = Status::Ok();
};

// Copies everything of a TensorProto but its data and data location.
void CopyTensorMetadata(const onnx::TensorProto& from, onnx::TensorProto* to) {
  *to->mutable_dims() = from.dims();
  if (from.has_data_type()) to->set_data_type(from.data_type());
  if (from.has_segment()) *to->mutable_segment() = from.segment();
  if (from.has_name()) to->set_name(from.name());
  if (from.has_doc_string()) to->set_doc_string(from.doc_string());
  to->mutable_unknown_fields()->MergeFrom(from.unknown_fields());
}

enum class Action { kKeep, kToExternal, kToInline };

struct Rewrite {
  onnx::TensorProto* tensor;
  const TensorEdit* edit;      // optional, applied to the bytes written
  onnx::TensorProto original;  // the tensor's content while the rewritten form is serialized
  std::string raw;             // inline bytes for kToInline
  uint64_t offset = 0, length = 0;
  Action action = Action::kKeep;
};

constexpr uint64_t kProtobufLimit = INT_MAX;
constexpr uint64_t kEditPiece = uint64_t{1} << 20;  // bytes per call of a TensorEdit writing external data

}  // namespace

Status SaveModel(const Model& model, const std::filesystem::path& path, const SaveOptions& options) {
  Model::Impl& m = *model.impl_;
  onnx::ModelProto& proto = *m.proto;
  const std::string out = path.string();
  if (path.filename().empty()) return InvalidArgument(out + ": output path names no file");
  if (options.alignment == 0) return InvalidArgument("save alignment must be at least 1");
  // Neither output may replace a file the model reads its external data
  // from (the model stays readable through its mapping, but the input on
  // disk would change).
  auto refuse_input = [&](const std::filesystem::path& target) -> Status {
    for (const auto& [input, file] : m.files) {
      if (std::error_code ec; std::filesystem::equivalent(target, input, ec)) {
        return InvalidArgument(target.string() + ": would replace " + input.string() +
                               ", which the model reads its external data from; modelpress never modifies its input");
      }
    }
    return Status::Ok();
  };
  MP_RETURN_IF_ERROR(refuse_input(path));

  std::vector<std::pair<const TensorEntry*, TensorView>> views;
  uint64_t external_bytes = 0;
  for (const TensorEntry& e : m.tensors) {
    auto v = model.View(e);
    if (!v.ok()) {
      if (v.status().code() == StatusCode::kUnsupported) continue;  // kept exactly as loaded
      return v.status();
    }
    if (v->storage() == Storage::kExternal) external_bytes += v->packed_bytes();
    views.emplace_back(&e, std::move(v).value());
  }
  bool externalize = false;
  switch (options.external) {
    case ExternalData::kAlways: externalize = true; break;
    case ExternalData::kNever: externalize = false; break;
    case ExternalData::kAuto:
      externalize = m.external.size() > 0 || proto.ByteSizeLong() + external_bytes > kProtobufLimit - (1u << 20);
      break;
  }

  size_t edits_found = 0;
  std::vector<Rewrite> rewrites;
  for (auto& [e, v] : views) {
    const auto found = options.edits.find(e->name);
    const TensorEdit* edit = found != options.edits.end() ? &found->second : nullptr;
    edits_found += edit != nullptr;
    const bool is_external = v.storage() == Storage::kExternal;
    const bool wants_external =
        externalize && v.packed_bytes() >= options.external_threshold && (e->source == TensorSource::kInitializer || is_external);
    if (wants_external) {
      rewrites.push_back({e->proto, edit, {}, {}, 0, v.packed_bytes(), Action::kToExternal});
    } else if (is_external || edit != nullptr) {
      Rewrite r{e->proto, edit, {}, std::string(v.packed_bytes(), '\0'), 0, 0, Action::kToInline};
      const std::span<std::byte> raw = std::as_writable_bytes(std::span(r.raw));
      v.CopyPackedTo(raw);
      if (edit != nullptr) (*edit)(0, raw, raw);
      rewrites.push_back(std::move(r));
    }
  }
  if (edits_found != options.edits.size()) {
    for (const auto& [name, edit] : options.edits) {
      if (model.FindTensor(name) == nullptr) return InvalidArgument(out + ": an edit names " + name + ", which is no tensor of the model");
    }
    return InvalidArgument(out + ": an edit names a tensor whose bytes cannot be viewed");
  }

  const std::string data_name = options.data_file.empty() ? path.filename().string() + ".data" : options.data_file;
  if (data_name.find('/') != std::string::npos || data_name == "." || data_name == "..") {
    return InvalidArgument(out + ": data file name " + data_name + " must be a plain file name");
  }
  if (std::any_of(rewrites.begin(), rewrites.end(), [](const Rewrite& r) { return r.action == Action::kToExternal; })) {
    if (pack::AtomicFile::WritesInto(path)) {
      return InvalidArgument(out + ": is not a regular file, so no external data file can sit beside it; save the "
                                   "model with its data inside");
    }
    MP_RETURN_IF_ERROR(refuse_input(path.parent_path() / data_name));
  }
  std::optional<pack::AtomicFile> data_file;
  {
    std::vector<std::byte> buffer;
    const std::byte zeros[64] = {};
    uint64_t pos = 0;
    size_t vi = 0;
    for (Rewrite& r : rewrites) {
      if (r.action != Action::kToExternal) continue;
      if (!data_file) {
        data_file.emplace(path.parent_path() / data_name);
        MP_RETURN_IF_ERROR(data_file->Open());
      }
      while (views[vi].first->proto != r.tensor) ++vi;
      const TensorView& v = views[vi].second;
      const uint64_t pad = (options.alignment - pos % options.alignment) % options.alignment;
      for (uint64_t left = pad; left > 0;) {
        const size_t n = std::min<uint64_t>(left, sizeof zeros);
        MP_RETURN_IF_ERROR(data_file->Write(zeros, n));
        left -= n;
      }
      pos += pad;
      r.offset = pos;
      if (r.edit != nullptr && v.contiguous()) {
        // Through a buffer, one piece of whole elements at a time.
        const uint64_t piece = kEditPiece - kEditPiece % v.element_size();
        for (uint64_t at = 0; at < v.packed_bytes(); at += piece) {
          const std::span<const std::byte> in = v.bytes().subspan(at, std::min(piece, v.packed_bytes() - at));
          buffer.resize(in.size());
          (*r.edit)(at, in, buffer);
          MP_RETURN_IF_ERROR(data_file->Write(buffer.data(), buffer.size()));
        }
      } else if (v.contiguous()) {
        MP_RETURN_IF_ERROR(data_file->Write(v.bytes().data(), v.packed_bytes()));
      } else {
        buffer.resize(v.packed_bytes());
        v.CopyPackedTo(buffer);
        if (r.edit != nullptr) (*r.edit)(0, buffer, buffer);
        MP_RETURN_IF_ERROR(data_file->Write(buffer.data(), buffer.size()));
      }
      pos += r.length;
    }
  }

  // Put the rewritten forms in place, serialize, and restore the originals.
  for (Rewrite& r : rewrites) {
    r.original.Swap(r.tensor);
    CopyTensorMetadata(r.original, r.tensor);
    if (r.action == Action::kToInline) {
      r.tensor->set_raw_data(std::move(r.raw));
    } else {
      auto add = [&](const char* key, std::string value) {
        auto* kv = r.tensor->add_external_data();
        kv->set_key(key);
        kv->set_value(std::move(value));
      };
      add("location", data_name);
      add("offset", std::to_string(r.offset));
      add("length", std::to_string(r.length));
      r.tensor->set_data_location(onnx::TensorProto::EXTERNAL);
    }
  }
  Status written = Status::Ok();
  pack::AtomicFile model_file(path);
  const size_t size = proto.ByteSizeLong();
  if (size > kProtobufLimit) {
    written = InvalidArgument(out + ": the model would take " + std::to_string(size) +
                              " bytes, over protobuf's 2 GiB limit; save with external data");
  } else {
    written = model_file.Open();
  }
  if (written.ok()) {
    AtomicFileStream stream(&model_file);
    google::protobuf::io::CopyingOutputStreamAdaptor raw(&stream);
    {
      google::protobuf::io::CodedOutputStream coded(&raw);
      coded.SetSerializationDeterministic(true);
      proto.SerializeWithCachedSizes(&coded);
      if (coded.HadError()) written = IoError(out + ": write failed");
    }
    if (!raw.Flush() && written.ok()) written = IoError(out + ": write failed");
    if (!stream.status().ok()) written = stream.status();
  }
  for (auto it = rewrites.rbegin(); it != rewrites.rend(); ++it) it->tensor->Swap(&it->original);
  MP_RETURN_IF_ERROR(written);
  if (data_file) MP_RETURN_IF_ERROR(data_file->Commit());
  return model_file.Commit();
}

}  // namespace modelpress
