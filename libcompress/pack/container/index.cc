#include "container/index.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "container/stream.h"

namespace modelpress::pack {
namespace {

// Smallest encodings of a record, to bound counts before reserving.
constexpr uint64_t kMinTensorRecord = 10;  // name (1+1), dtype, encoder and storage, rank, size, checksum (4)
constexpr uint64_t kMinFileRecord = 20;    // name (1+1), size, checksum (8), residue size, residue checksum (8)
constexpr uint64_t kMinTable = 2;          // `last` and at least the first length

template <class T>
void PutFixed(T v, std::vector<uint8_t>* out) {
  uint8_t b[sizeof(T)];
  std::memcpy(b, &v, sizeof v);
  out->insert(out->end(), b, b + sizeof b);
}

void PutName(const std::string& s, std::vector<uint8_t>* out) {
  PutVarint(s.size(), out);
  out->insert(out->end(), s.begin(), s.end());
}

class Parser {
 public:
  explicit Parser(std::span<const uint8_t> in) : in_(in) {}
  size_t left() const { return in_.size(); }

  bool Varint(uint64_t* v, const char* what) { return GetVarint(&in_, v) || Fail(std::string(what) + " is truncated"); }
  template <class T>
  bool Fixed(T* v, const char* what) {
    if (in_.size() < sizeof(T)) return Fail(std::string(what) + " is truncated");
    std::memcpy(v, in_.data(), sizeof(T));
    in_ = in_.subspan(sizeof(T));
    return true;
  }
  bool Name(std::string* s, const char* what) {
    uint64_t n = 0;
    if (!Varint(&n, what)) return false;
    if (n == 0) return Fail(std::string(what) + " is empty");
    if (n > in_.size()) return Fail(std::string(what) + " runs past the index");
    s->assign(reinterpret_cast<const char*>(in_.data()), n);
    in_ = in_.subspan(n);
    return true;
  }
  bool Table(CodeLengths* lengths) {
    std::string why;
    return ReadTable(&in_, lengths, &why) || Fail(why);
  }
  bool Fail(std::string why) {
    error_ = std::move(why);
    return false;
  }
  const std::string& error() const { return error_; }

 private:
  std::span<const uint8_t> in_;
  std::string error_;
};

}  // namespace

std::vector<uint8_t> EncodeIndex(const IndexContents& index) {
  std::vector<uint8_t> out;
  PutVarint(index.flags, &out);
  PutVarint(index.onnx_size, &out);
  PutFixed(index.onnx_checksum, &out);
  PutVarint(index.graph_size, &out);
  PutFixed(index.graph_checksum, &out);
  PutVarint(index.files.size(), &out);
  for (const IndexFile& f : index.files) {
    PutName(f.name, &out);
    PutVarint(f.size, &out);
    PutFixed(f.checksum, &out);
    PutVarint(f.residue_size, &out);
    PutFixed(f.residue_checksum, &out);
  }
  if (index.flags & kIndexSharedTables) {
    PutVarint(index.tables.size(), &out);
    for (const CodeLengths& t : index.tables) WriteTable(t, &out);
  }
  PutVarint(index.tensors.size(), &out);
  for (const IndexTensor& t : index.tensors) {
    PutName(t.name, &out);
    PutVarint(static_cast<uint64_t>(t.dtype), &out);
    out.push_back(static_cast<uint8_t>(t.encoder | t.storage << 4));
    PutVarint(t.shape.size(), &out);
    for (int64_t d : t.shape) PutVarint(static_cast<uint64_t>(d), &out);
    if (t.storage == static_cast<uint8_t>(StorageKind::kExternal)) {
      PutVarint(t.external_file, &out);
      PutVarint(t.external_offset, &out);
    }
    PutVarint(t.payload_size, &out);
    PutFixed(t.payload_checksum, &out);
  }
  return out;
}

bool DecodeIndex(std::span<const uint8_t> bytes, IndexContents* index, std::string* error) {
  Parser p(bytes);
  IndexContents x;
  auto fail = [&] {
    *error = p.error();
    return false;
  };
  uint64_t count = 0;
  if (!p.Varint(&x.flags, "flags") || !p.Varint(&x.onnx_size, "model size") ||
      !p.Fixed(&x.onnx_checksum, "model checksum") || !p.Varint(&x.graph_size, "graph size") ||
      !p.Fixed(&x.graph_checksum, "graph checksum") || !p.Varint(&count, "file count")) {
    return fail();
  }
  if ((x.flags & ~(kIndexExactOnnx | kIndexSharedTables)) != 0) {
    *error = "reserved index flags are set";
    return false;
  }
  if (count > p.left() / kMinFileRecord) {
    *error = "declares " + std::to_string(count) + " external files, more than its bytes can hold";
    return false;
  }
  x.files.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    IndexFile& f = x.files.emplace_back();
    if (!p.Name(&f.name, "external file name") || !p.Varint(&f.size, "external file size") ||
        !p.Fixed(&f.checksum, "external file checksum") || !p.Varint(&f.residue_size, "residue size") ||
        !p.Fixed(&f.residue_checksum, "residue checksum")) {
      return fail();
    }
  }
  if (x.flags & kIndexSharedTables) {
    if (!p.Varint(&count, "shared table count")) return fail();
    if (count == 0 || count > p.left() / kMinTable) {
      *error = "declares " + std::to_string(count) + " shared code tables, " +
               (count == 0 ? "none with its flag set" : "more than its bytes can hold");
      return false;
    }
    x.tables.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
      if (!p.Table(&x.tables[i])) {
        *error = "shared table " + std::to_string(i) + ": " + p.error();
        return false;
      }
    }
  }
  if (!p.Varint(&count, "tensor count")) return fail();
  if (count > p.left() / kMinTensorRecord) {
    *error = "declares " + std::to_string(count) + " tensors, more than its bytes can hold";
    return false;
  }
  // Grown as records are parsed: memory follows the bytes actually present.
  x.tensors.reserve(std::min<uint64_t>(count, 1024));
  for (uint64_t i = 0; i < count; ++i) {
    IndexTensor& t = x.tensors.emplace_back();
    const std::string which = "tensor " + std::to_string(i);
    uint64_t dtype = 0, rank = 0;
    uint8_t kind = 0;
    if (!p.Name(&t.name, "tensor name") || !p.Varint(&dtype, "data type") || !p.Fixed(&kind, "encoder and storage") ||
        !p.Varint(&rank, "rank")) {
      *error = which + ": " + p.error();
      return false;
    }
    t.encoder = kind & 15;
    t.storage = kind >> 4;
    const std::string where = "tensor '" + t.name + "'";
    if (dtype > INT32_MAX) {
      *error = where + ": data type " + std::to_string(dtype) + " is out of range";
      return false;
    }
    t.dtype = static_cast<int32_t>(dtype);
    if (rank > kMaxIndexRank) {
      *error = where + ": rank " + std::to_string(rank) + " is over " + std::to_string(kMaxIndexRank);
      return false;
    }
    t.shape.resize(rank);
    for (int64_t& d : t.shape) {
      uint64_t v = 0;
      if (!p.Varint(&v, "dimension")) {
        *error = where + ": " + p.error();
        return false;
      }
      if (v > static_cast<uint64_t>(INT64_MAX)) {
        *error = where + ": dimension " + std::to_string(v) + " is out of range";
        return false;
      }
      d = static_cast<int64_t>(v);
    }
    if (t.storage > static_cast<uint8_t>(StorageKind::kExternal)) {
      *error = where + ": storage " + std::to_string(t.storage) + " is unknown";
      return false;
    }
    if (t.storage == static_cast<uint8_t>(StorageKind::kExternal)) {
      if (!p.Varint(&t.external_file, "external file") || !p.Varint(&t.external_offset, "external offset")) {
        *error = where + ": " + p.error();
        return false;
      }
      if (t.external_file >= x.files.size()) {
        *error = where + ": external file " + std::to_string(t.external_file) + " is not in the index";
        return false;
      }
    }
    if (!p.Varint(&t.payload_size, "payload size") || !p.Fixed(&t.payload_checksum, "payload checksum")) {
      *error = where + ": " + p.error();
      return false;
    }
  }
  if (p.left() != 0) {
    *error = std::to_string(p.left()) + " bytes follow the last tensor";
    return false;
  }
  *index = std::move(x);
  return true;
}

}  // namespace modelpress::pack
