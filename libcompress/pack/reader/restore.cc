#include <algorithm>
#include <memory>

#include "container/atomic_file.h"
#include "container/checksum.h"
#include "container/index.h"
#include "container/parallel.h"
#include "modelpress/pack_reader.h"
#include "reader/model_splice.h"

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
  MP_ASSIGN_OR_RETURN(const std::string skeleton, reader.ReadSkeleton());
  const std::vector<TensorInfo>& tensors = reader.tensors();

  // Decode every tensor, then splice the data into the graph section.
  std::vector<std::unique_ptr<uint8_t[]>> decoded(tensors.size());
  std::vector<std::span<const uint8_t>> data(tensors.size());
  std::vector<Status> errors(tensors.size());
  // A thread pays for its start (about what decoding 100 kB takes) only on
  // enough data: a small model decodes faster on one.
  constexpr uint64_t kBytesPerThread = 256 << 10;
  uint64_t total = 0;
  for (const TensorInfo& t : tensors) total += t.bytes;
  const int threads = static_cast<int>(std::min<uint64_t>(ResolveThreads(options.threads), 1 + total / kBytesPerThread));
  ParallelFor(tensors.size(), threads, [&](size_t i) {
    decoded[i].reset(new uint8_t[tensors[i].bytes]);  // ReadTensor writes every byte
    data[i] = {decoded[i].get(), tensors[i].bytes};
    errors[i] = reader.ReadTensor(tensors[i], std::as_writable_bytes(std::span(decoded[i].get(), tensors[i].bytes)));
  });
  for (const Status& s : errors) MP_RETURN_IF_ERROR(s);
  SplicedModel model;
  std::string error;
  if (!SpliceModel({reinterpret_cast<const uint8_t*>(skeleton.data()), skeleton.size()}, tensors, data, &model, &error)) {
    return Corrupt(src + ": " + error);
  }

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
      if (end > pos) MP_RETURN_IF_ERROR(emit(reinterpret_cast<const char*>(data[i].data()) + (pos - begin), end - pos));
    }
    MP_RETURN_IF_ERROR(emit(residue.data() + used, residue.size() - used));
    if (pos != fi.size || sum.Digest() != fi.checksum) {
      return Corrupt(where + ": restored bytes do not match the packed file's size and checksum");
    }
    outputs.push_back(std::move(file));
  }
  // The model is written from its pieces into a temporary file and renamed
  // into place only when its size and checksum match.
  auto model_file = std::make_unique<AtomicFile>(onnx_path);
  MP_RETURN_IF_ERROR(model_file->Open());
  StreamingChecksum sum;
  for (std::span<const uint8_t> piece : model.pieces) {
    sum.Update(piece.data(), piece.size());
    MP_RETURN_IF_ERROR(model_file->Write(piece.data(), piece.size()));
  }
  if (info.exact_onnx) {
    if (model.size != info.onnx_size || sum.Digest() != info.onnx_checksum) {
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

Result<std::vector<GraphTensor>> ReadGraphTensors(const Reader& reader) {
  MP_ASSIGN_OR_RETURN(const std::string skeleton, reader.ReadSkeleton());
  std::vector<InlineTensor> found;
  std::string error;
  if (!FindInlineTensors({reinterpret_cast<const uint8_t*>(skeleton.data()), skeleton.size()}, &found, &error)) {
    return Corrupt(reader.name() + ": " + error);
  }
  std::vector<GraphTensor> out;
  for (InlineTensor& t : found) {
    if (reader.FindTensor(t.info.name) != nullptr) continue;  // the index's tensor of that name is the one a reader sees
    const std::span<const std::byte> data = std::as_bytes(t.data());
    out.push_back({std::move(t.info), std::vector<std::byte>(data.begin(), data.end())});
  }
  return out;
}

}  // namespace modelpress::pack
