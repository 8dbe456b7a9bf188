#include "container/writer.h"

#include <cstring>

#include "container/checksum.h"
#include "container/stream.h"

namespace modelpress::pack {
namespace {

template <class T>
void Append(std::vector<uint8_t>* out, const T& record) {
  const auto* p = reinterpret_cast<const uint8_t*>(&record);
  out->insert(out->end(), p, p + sizeof record);
}

}  // namespace

Status WriteArtifact(const ArtifactContents& c, const std::function<Status(const void*, size_t)>& sink, uint64_t* size) {
  // Sections follow the header in this order: payloads, graph, residues.
  // Their places are known from their sizes, so the index and both ends of
  // the file are built first and every section is written once, in order.
  uint64_t at = sizeof(FileHeader);
  auto place = [&](const std::vector<uint8_t>& bytes, std::optional<uint64_t> checksum = std::nullopt) {
    const SectionRef s{at, bytes.size(), checksum ? *checksum : Checksum(bytes.data(), bytes.size())};
    at += bytes.size();
    return s;
  };
  std::vector<SectionRef> payloads;
  for (const PendingTensor& t : c.tensors) payloads.push_back(place(t.payload, t.payload_checksum));
  const SectionRef skeleton = place(c.skeleton);
  std::vector<SectionRef> residues;
  for (const PendingFile& f : c.files) residues.push_back(place(f.residue));

  std::vector<uint8_t> strings;
  std::vector<int64_t> dims;
  auto add_string = [&](const std::string& s) {
    const uint64_t off = strings.size();
    strings.insert(strings.end(), s.begin(), s.end());
    return off;
  };
  std::vector<uint8_t> index;
  IndexHeader ih{};
  ih.tensor_count = static_cast<uint32_t>(c.tensors.size());
  ih.file_count = static_cast<uint32_t>(c.files.size());
  ih.skeleton = skeleton;
  ih.onnx_size = c.onnx_size;
  ih.onnx_checksum = c.onnx_checksum;
  ih.flags = c.exact_onnx ? kIndexExactOnnx : 0;
  std::vector<TensorRecord> trs;
  for (size_t i = 0; i < c.tensors.size(); ++i) {
    const PendingTensor& t = c.tensors[i];
    TensorRecord r{};
    r.payload = payloads[i];
    r.element_count = 1;
    for (int64_t d : t.shape) r.element_count *= static_cast<uint64_t>(d);
    r.name_offset = add_string(t.name);
    r.name_size = static_cast<uint32_t>(t.name.size());
    r.dims_offset = static_cast<uint32_t>(dims.size());
    dims.insert(dims.end(), t.shape.begin(), t.shape.end());
    r.rank = static_cast<uint32_t>(t.shape.size());
    r.dtype = t.dtype;
    r.encoder = static_cast<uint8_t>(t.encoder);
    r.storage = static_cast<uint8_t>(t.storage);
    if (t.storage == StorageKind::kExternal) {
      r.external_file = t.external_file;
      r.external_offset = t.external_offset;
    }
    trs.push_back(r);
  }
  std::vector<FileRecord> frs;
  for (size_t i = 0; i < c.files.size(); ++i) {
    FileRecord r{};
    r.name_offset = add_string(c.files[i].name);
    r.name_size = static_cast<uint32_t>(c.files[i].name.size());
    r.size = c.files[i].size;
    r.checksum = c.files[i].checksum;
    r.residue = residues[i];
    frs.push_back(r);
  }
  ih.dims_count = dims.size();
  ih.strings_size = strings.size();
  Append(&index, ih);
  for (const auto& r : trs) Append(&index, r);
  for (const auto& r : frs) Append(&index, r);
  for (int64_t d : dims) Append(&index, d);
  index.insert(index.end(), strings.begin(), strings.end());

  // The index is read whole at open, so it is one zstd stream: records are
  // mostly zero bytes and names share prefixes.
  std::vector<uint8_t> stored;
  StreamOptions so;
  so.force_zstd = true;
  EncodeStream(index, so, &stored);
  Footer f{};
  f.index_offset = at;
  f.index_size = stored.size();
  f.index_checksum = Checksum(stored.data(), stored.size());
  f.checksum = Checksum(&f, 24);

  FileHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version_major = kVersionMajor;
  h.version_minor = kVersionMinor;
  h.flags = 0;
  h.file_size = at + stored.size() + sizeof f;
  h.checksum = Checksum(&h, 24);

  auto emit = [&](const std::vector<uint8_t>& bytes) { return bytes.empty() ? Status::Ok() : sink(bytes.data(), bytes.size()); };
  MP_RETURN_IF_ERROR(sink(&h, sizeof h));
  for (const PendingTensor& t : c.tensors) MP_RETURN_IF_ERROR(emit(t.payload));
  MP_RETURN_IF_ERROR(emit(c.skeleton));
  for (const PendingFile& file : c.files) MP_RETURN_IF_ERROR(emit(file.residue));
  MP_RETURN_IF_ERROR(emit(stored));
  MP_RETURN_IF_ERROR(sink(&f, sizeof f));
  if (size) *size = h.file_size;
  return Status::Ok();
}

std::vector<uint8_t> SerializeArtifact(const ArtifactContents& c) {
  std::vector<uint8_t> out;
  const Status s = WriteArtifact(c, [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
    return Status::Ok();
  });
  (void)s;  // the sink cannot fail
  return out;
}

}  // namespace modelpress::pack
