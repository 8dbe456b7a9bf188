#include "container/writer.h"

#include <cstring>

#include "container/checksum.h"
#include "container/index.h"
#include "container/stream.h"

namespace modelpress::pack {

namespace {

// The stored index of `c` and where it starts (after the header, payloads,
// graph and residues).
std::vector<uint8_t> StoredIndex(const ArtifactContents& c, uint64_t* index_offset) {
  IndexContents ix;
  ix.flags = (c.exact_onnx ? kIndexExactOnnx : 0) | (c.tables.empty() ? 0 : kIndexSharedTables);
  ix.tables = c.tables;
  ix.onnx_size = c.onnx_size;
  ix.onnx_checksum = c.onnx_checksum;
  ix.graph_size = c.skeleton.size();
  ix.graph_checksum = Checksum(c.skeleton.data(), c.skeleton.size());
  uint64_t at = sizeof(FileHeader) + c.skeleton.size();
  for (const PendingFile& f : c.files) {
    ix.files.push_back({f.name, f.size, f.checksum, f.residue.size(), Checksum(f.residue.data(), f.residue.size())});
    at += f.residue.size();
  }
  for (const PendingTensor& t : c.tensors) {
    IndexTensor r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.encoder = static_cast<uint8_t>(t.encoder);
    r.storage = static_cast<uint8_t>(t.storage);
    if (t.storage == StorageKind::kExternal) {
      r.external_file = t.external_file;
      r.external_offset = t.external_offset;
    }
    r.payload_size = t.planned_size.value_or(t.payload.size());
    r.payload_checksum = static_cast<uint32_t>(t.payload_checksum ? *t.payload_checksum : Checksum(t.payload.data(), t.payload.size()));
    at += r.payload_size;
    ix.tensors.push_back(std::move(r));
  }

  // The index is read whole at open, so it is one zstd stream: names share
  // prefixes and shapes repeat.
  std::vector<uint8_t> stored;
  StreamOptions so;
  so.zstd_level = c.index_level;
  so.force_zstd = true;
  so.graph_dictionary = c.graph_dictionary;
  EncodeStream(EncodeIndex(ix), so, &stored);
  *index_offset = at;
  return stored;
}

}  // namespace

uint64_t ArtifactBytes(const ArtifactContents& c) {
  uint64_t at = 0;
  const std::vector<uint8_t> stored = StoredIndex(c, &at);
  return at + stored.size() + sizeof(Footer);
}

Status WriteArtifact(const ArtifactContents& c, const std::function<Status(const void*, size_t)>& sink, uint64_t* size) {
  // Sections follow the header in this order: payloads, graph, residues;
  // the index gives their sizes, which place them. The index and both ends
  // of the file are built first and every section is written once, in order.
  for (const PendingTensor& t : c.tensors) {
    if (t.planned_size) return Internal("tensor '" + t.name + "' has a planned size but no payload");
  }
  uint64_t at = 0;
  const std::vector<uint8_t> stored = StoredIndex(c, &at);
  Footer f{};
  f.index_offset = at;
  f.index_size = stored.size();
  f.index_checksum = Checksum(stored.data(), stored.size());
  f.checksum = Checksum(&f, 24);

  FileHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version_major = kVersionMajor;
  h.version_minor = kVersionMinor;
  h.flags = c.graph_dictionary ? kHeaderGraphDictionary : 0;
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
