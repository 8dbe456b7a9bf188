#include <climits>
#include <cstring>
#include <map>
#include <optional>

#include "container/atomic_file.h"
#include "container/checksum.h"
#include "container/index.h"
#include "modelpress/pack.h"
#include "onnx/parallel.h"
#include "onnx/skeleton.h"

namespace modelpress::pack {
namespace {

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// External data locations come from the artifact: the same rules the loader
// applies (relative, no "..") keep a hostile artifact from writing outside
// the output folder.
Status CheckLocation(const std::string& name, const std::string& where) {
  const std::filesystem::path p(name);
  if (name.empty() || p.is_absolute() || name.front() == '/' || name.front() == '\\') {
    return PermissionDenied(where + ": external data location " + Quote(name) + " is not a relative path");
  }
  for (const auto& part : p) {
    if (part == ".." || part == ".") return PermissionDenied(where + ": external data location " + Quote(name) + " contains '..' or '.'");
  }
  if (name.find('\\') != std::string::npos || name.find('\0') != std::string::npos || name.back() == '/') {
    return PermissionDenied(where + ": external data location " + Quote(name) + " is not a plain relative file path");
  }
  return Status::Ok();
}

}  // namespace

Result<UnpackReport> UnpackModel(const std::filesystem::path& artifact, const std::filesystem::path& onnx_path,
                                 const UnpackOptions& options) {
  MP_ASSIGN_OR_RETURN(Reader reader, Reader::Open(artifact));
  const std::string src = reader.name();
  const ArtifactInfo& info = reader.info();
  MP_ASSIGN_OR_RETURN(std::string skeleton, reader.ReadSkeleton());
  onnx::ModelProto model;
  if (skeleton.size() > INT_MAX || !model.ParseFromString(skeleton)) {
    return Corrupt(src + ": graph section is not an ONNX model");
  }
  skeleton.clear();
  skeleton.shrink_to_fit();

  std::map<std::string, onnx::TensorProto*, std::less<>> protos;
  for (const NamedTensor& t : EnumerateTensors(model)) protos.emplace(t.name, t.proto);
  const std::vector<TensorInfo>& tensors = reader.tensors();
  std::vector<onnx::TensorProto*> targets(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = tensors[i];
    const std::string where = src + ": tensor " + Quote(t.name);
    auto it = protos.find(t.name);
    if (it == protos.end()) return Corrupt(where + " is not in the graph");
    onnx::TensorProto* p = it->second;
    if (p->data_type() != t.dtype || p->dims_size() != static_cast<int>(t.shape.size()) ||
        !std::equal(t.shape.begin(), t.shape.end(), p->dims().begin())) {
      return Corrupt(where + ": type or shape in the index disagrees with the graph");
    }
    const bool external = p->data_location() == onnx::TensorProto::EXTERNAL;
    if (p->has_raw_data() || TypedEntries(*p) != 0 || external != (t.storage == static_cast<uint8_t>(StorageKind::kExternal))) {
      return Corrupt(where + ": the graph already holds its data, or its storage disagrees with the index");
    }
    targets[i] = p;
  }

  // Decode every tensor. Payloads of external tensors are kept for their files.
  std::vector<std::string> decoded(tensors.size());
  std::vector<Status> errors(tensors.size());
  ParallelFor(tensors.size(), ResolveThreads(options.threads), [&](size_t i) {
    std::string buf(tensors[i].bytes, '\0');
    errors[i] = reader.ReadTensor(tensors[i], std::as_writable_bytes(std::span(buf)));
    if (!errors[i].ok()) return;
    const auto bytes = std::span(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
    switch (static_cast<StorageKind>(tensors[i].storage)) {
      case StorageKind::kRaw: targets[i]->set_raw_data(std::move(buf)); break;
      case StorageKind::kTyped: FillTyped(targets[i], bytes); break;
      case StorageKind::kExternal: decoded[i] = std::move(buf); break;
    }
  });
  for (const Status& s : errors) MP_RETURN_IF_ERROR(s);

  UnpackReport report;
  // External files: residue and tensor bytes in file order, checked against
  // the whole-file checksum before anything is renamed into place.
  const std::filesystem::path dir = onnx_path.parent_path();
  std::vector<std::unique_ptr<AtomicFile>> outputs;
  for (size_t f = 0; f < info.files.size(); ++f) {
    const ExternalFileInfo& fi = info.files[f];
    const std::string where = src + ": external file " + Quote(fi.name);
    MP_RETURN_IF_ERROR(CheckLocation(fi.name, src));
    const std::filesystem::path out = dir / fi.name;
    if (out.lexically_normal() == onnx_path.lexically_normal()) {
      return Corrupt(where + " has the name of the output model");
    }
    MP_ASSIGN_OR_RETURN(std::string residue, reader.ReadResidue(f));
    std::vector<size_t> order;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].storage == static_cast<uint8_t>(StorageKind::kExternal) && tensors[i].external_file == f) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].external_offset < tensors[b].external_offset; });
    if (out.has_parent_path()) {
      std::error_code ec;
      std::filesystem::create_directories(out.parent_path(), ec);
      if (ec) return IoError(out.parent_path().string() + ": cannot create folder: " + ec.message());
    }
    auto file = std::make_unique<AtomicFile>(out);
    MP_RETURN_IF_ERROR(file->Open());
    StreamingChecksum sum;
    uint64_t pos = 0, used = 0;
    auto emit = [&](const char* p, uint64_t n) -> Status {
      sum.Update(p, n);
      pos += n;
      return file->Write(p, n);
    };
    for (size_t i : order) {
      const uint64_t begin = tensors[i].external_offset, end = begin + tensors[i].bytes;
      if (begin > pos) {
        if (begin - pos > residue.size() - used) return Corrupt(where + ": residue is shorter than the gaps between tensors");
        MP_RETURN_IF_ERROR(emit(residue.data() + used, begin - pos));
        used += begin - pos;
      }
      if (end > pos) MP_RETURN_IF_ERROR(emit(decoded[i].data() + (pos - begin), end - pos));
    }
    MP_RETURN_IF_ERROR(emit(residue.data() + used, residue.size() - used));
    if (pos != fi.size || sum.Digest() != fi.checksum) {
      return Corrupt(where + ": restored bytes do not match the packed file's size and checksum");
    }
    outputs.push_back(std::move(file));
  }
  // The model is serialized straight into its temporary file, checked as it
  // goes, and renamed into place only when its size and checksum match.
  auto model_file = std::make_unique<AtomicFile>(onnx_path);
  MP_RETURN_IF_ERROR(model_file->Open());
  StreamingChecksum sum;
  uint64_t written = 0;
  Status write_status = Status::Ok();
  const bool serialized = SerializeDeterministic(model, [&](const void* p, size_t n) {
    sum.Update(p, n);
    written += n;
    write_status = model_file->Write(p, n);
    return write_status.ok();
  });
  MP_RETURN_IF_ERROR(write_status);
  if (!serialized) return Internal(src + ": cannot serialize the restored model");
  if (info.exact_onnx) {
    if (written != info.onnx_size || sum.Digest() != info.onnx_checksum) {
      return Corrupt(src + ": the restored model does not match the checksum of the packed file");
    }
    report.byte_exact_checked = true;
  }
  for (auto& f : outputs) {
    MP_RETURN_IF_ERROR(f->Commit());
    report.written.push_back(f->path());
  }
  MP_RETURN_IF_ERROR(model_file->Commit());
  report.written.insert(report.written.begin(), onnx_path);
  return report;
}

}  // namespace modelpress::pack
