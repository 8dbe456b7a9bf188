#include <charconv>

#include "onnx_io/model_impl.h"

namespace modelpress {
namespace {

std::string Quote(std::string_view s) {
  std::string q(1, '\'');
  q.append(s);
  q.push_back('\'');
  return q;
}

bool HasDotDot(const std::filesystem::path& p) {
  for (const auto& part : p) {
    if (part == "..") return true;
  }
  return false;
}

bool IsWithin(const std::filesystem::path& child, const std::filesystem::path& dir) {
  auto c = child.begin();
  for (auto d = dir.begin(); d != dir.end(); ++d, ++c) {
    if (c == child.end() || *c != *d) return false;
  }
  return true;
}

Result<uint64_t> ParseUint(const std::string& text, const std::string& what) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) return Corrupt(what + " is not a non-negative integer: " + Quote(text));
  return v;
}

// Number of entries the typed field holding `t`'s type must have per element,
// and that field's current size.
struct TypedField {
  int size = 0;
  int per_element = 1;
  const std::byte* data = nullptr;
  size_t stride = 0;
};

TypedField FieldFor(const onnx::TensorProto& t) {
  auto bytes = [](const auto* p) { return reinterpret_cast<const std::byte*>(p); };
  switch (static_cast<DType>(t.data_type())) {
    case DType::kFloat32: return {t.float_data_size(), 1, bytes(t.float_data().data()), 4};
    case DType::kComplex64: return {t.float_data_size(), 2, bytes(t.float_data().data()), 8};
    case DType::kInt64: return {t.int64_data_size(), 1, bytes(t.int64_data().data()), 8};
    case DType::kFloat64: return {t.double_data_size(), 1, bytes(t.double_data().data()), 8};
    case DType::kComplex128: return {t.double_data_size(), 2, bytes(t.double_data().data()), 16};
    case DType::kUint32: case DType::kUint64: return {t.uint64_data_size(), 1, bytes(t.uint64_data().data()), 8};
    case DType::kString: return {t.string_data_size(), 1, nullptr, 0};
    default: return {t.int32_data_size(), 1, bytes(t.int32_data().data()), 4};
  }
}

int TypedEntries(const onnx::TensorProto& t) {
  return t.float_data_size() + t.int32_data_size() + t.int64_data_size() + t.double_data_size() +
         t.uint64_data_size() + t.string_data_size();
}

}  // namespace

Result<int64_t> ValidateTensorLayout(const onnx::TensorProto& t, const std::string& where) {
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  auto count = ElementCount(dims);
  if (!count) return Corrupt(where + ": invalid shape " + ShapeToString(dims));
  const size_t es = DTypeSize(t.data_type());
  const bool is_string = t.data_type() == static_cast<int32_t>(DType::kString);
  if (t.data_type() == 0) return Corrupt(where + ": data type is undefined");
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    if (t.has_raw_data() || TypedEntries(t) > 0) return Corrupt(where + ": external tensor also carries inline data");
    if (es == 0 && !is_string) return *count;  // sizes of sub-byte types are checked by ONNX tools, not here
    if (is_string) return Corrupt(where + ": string tensors cannot be stored externally");
    return *count;
  }
  if (t.has_raw_data()) {
    if (TypedEntries(t) > 0) return Corrupt(where + ": has both raw_data and typed data fields");
    if (is_string) return Corrupt(where + ": string tensor stored in raw_data");
    if (es == 0) return *count;  // e.g. packed 4-bit types: not viewable, kept as they are
    const uint64_t have = t.raw_data().size();
    if (static_cast<uint64_t>(*count) > have / es || have != static_cast<uint64_t>(*count) * es) {
      return Corrupt(where + ": shape " + ShapeToString(dims) + " of " + DTypeName(t.data_type()) + " has " +
                     std::to_string(*count) + " elements but raw_data holds " + std::to_string(have) + " bytes");
    }
    return *count;
  }
  const TypedField f = FieldFor(t);
  if (TypedEntries(t) != f.size) return Corrupt(where + ": data is in a field that does not match type " + DTypeName(t.data_type()));
  if (static_cast<int64_t>(f.size) != *count * f.per_element) {
    return Corrupt(where + ": shape " + ShapeToString(dims) + " has " + std::to_string(*count) + " elements but the data field holds " +
                   std::to_string(f.size / f.per_element));
  }
  return *count;
}

Result<TensorView> MakeView(const onnx::TensorProto& t, const ExternalSpan* ext, const std::string& where) {
  const DType dtype = static_cast<DType>(t.data_type());
  const size_t es = DTypeSize(t.data_type());
  if (es == 0) return Unsupported(where + ": no view for element type " + DTypeName(t.data_type()));
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  MP_ASSIGN_OR_RETURN(const int64_t count, ValidateTensorLayout(t, where));
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    if (ext == nullptr) return Internal(where + ": external data not resolved");
    return TensorView(dtype, std::move(dims), ext->file->bytes().data() + ext->offset, count, es, Storage::kExternal);
  }
  if (t.has_raw_data()) {
    return TensorView(dtype, std::move(dims), reinterpret_cast<const std::byte*>(t.raw_data().data()), count, es,
                      Storage::kRaw);
  }
  const TypedField f = FieldFor(t);
  return TensorView(dtype, std::move(dims), f.data, count, f.stride, count == 0 ? Storage::kRaw : Storage::kTyped);
}

Status Model::Impl::ResolveExternal(const onnx::TensorProto& t, const std::string& name) {
  const std::string where = source + ": tensor " + Quote(name);
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      MP_ASSIGN_OR_RETURN(offset, ParseUint(kv.value(), where + ": external data offset"));
    } else if (kv.key() == "length") {
      MP_ASSIGN_OR_RETURN(length, ParseUint(kv.value(), where + ": external data length"));
    }
  }
  if (location.empty()) return Corrupt(where + ": external data has no location");
  const std::filesystem::path loc(location);
  if (loc.is_absolute() || location.front() == '/' || location.front() == '\\') {
    return PermissionDenied(where + ": external data location " + Quote(location) + " is absolute; it must be relative to the model's folder");
  }
  if (HasDotDot(loc) || location.find("..\\") != std::string::npos) {
    return PermissionDenied(where + ": external data location " + Quote(location) + " contains '..'");
  }
  if (base_dir.empty()) return NotFound(where + ": external data " + Quote(location) + " but the model has no folder");
  std::error_code ec;
  const std::filesystem::path resolved = std::filesystem::canonical(base_dir / loc, ec);
  if (ec) return NotFound(where + ": external data file " + Quote(location) + " not found next to the model");
  if (!IsWithin(resolved, base_dir)) {
    return PermissionDenied(where + ": external data location " + Quote(location) + " resolves outside the model's folder (to " +
                            resolved.string() + ")");
  }
  std::shared_ptr<MappedFile>& file = files[resolved];
  if (!file) {
    auto mapped = MappedFile::Open(resolved);
    if (!mapped.ok()) return mapped.status().WithPrefix(where);
    file = std::move(mapped).value();
  }
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  const uint64_t count = static_cast<uint64_t>(*ElementCount(dims));
  const uint64_t es = DTypeSize(t.data_type());
  if (es != 0 && count > file->size() / es) {
    return Corrupt(where + ": shape " + ShapeToString(dims) + " of " + DTypeName(t.data_type()) + " needs more bytes than the " +
                   std::to_string(file->size()) + " of external data file " + Quote(location));
  }
  const uint64_t needed = count * es;
  const uint64_t len = length.value_or(needed);
  if (es != 0 && len != needed) {
    return Corrupt(where + ": external data length " + std::to_string(len) + " does not match shape " + ShapeToString(dims) + " of " +
                   DTypeName(t.data_type()) + " (" + std::to_string(needed) + " bytes)");
  }
  if (offset > file->size() || len > file->size() - offset) {
    return Corrupt(where + ": external data offset " + std::to_string(offset) + " + length " + std::to_string(len) +
                   " exceeds the " + std::to_string(file->size()) + " bytes of " + Quote(location));
  }
  external[&t] = ExternalSpan{file, offset, len};
  return Status::Ok();
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Result<Model> Model::FromProto(onnx::ModelProto proto, const std::filesystem::path& base_dir, std::string source) {
  auto impl = std::make_unique<Impl>();
  impl->proto = std::make_unique<onnx::ModelProto>(std::move(proto));
  impl->source = std::move(source);
  if (!base_dir.empty()) {
    std::error_code ec;
    impl->base_dir = std::filesystem::canonical(base_dir, ec);
    if (ec) return NotFound(impl->source + ": model folder " + base_dir.string() + " not found");
  }
  Model model(std::move(impl));
  MP_RETURN_IF_ERROR(model.Reindex());
  return model;
}

Status Model::Reindex() {
  Impl& m = *impl_;
  m.tensors.clear();
  m.by_name.clear();
  std::unordered_map<const onnx::TensorProto*, ExternalSpan> old_external;
  old_external.swap(m.external);
  onnx::GraphProto* g = m.proto->mutable_graph();
  auto add = [&](TensorEntry e) -> Status {
    const std::string where = m.source + ": tensor " + Quote(e.name);
    if (e.name.empty()) return Corrupt(m.source + ": a graph initializer has no name");
    MP_RETURN_IF_ERROR(ValidateTensorLayout(*e.proto, where).status());
    if (e.proto->data_location() == onnx::TensorProto::EXTERNAL) {
      if (auto it = old_external.find(e.proto); it != old_external.end()) {
        m.external.insert(*it);
      } else {
        MP_RETURN_IF_ERROR(m.ResolveExternal(*e.proto, e.name));
      }
    }
    if (!m.by_name.emplace(e.name, m.tensors.size()).second) {
      return Corrupt(where + ": declared twice (as initializer or Constant output)");
    }
    m.tensors.push_back(std::move(e));
    return Status::Ok();
  };
  for (auto& t : *g->mutable_initializer()) {
    MP_RETURN_IF_ERROR(add({t.name(), TensorSource::kInitializer, -1, &t}));
  }
  for (int i = 0; i < g->node_size(); ++i) {
    onnx::NodeProto* n = g->mutable_node(i);
    if (n->op_type() != "Constant" || !(n->domain().empty() || n->domain() == "ai.onnx") || n->output_size() != 1) continue;
    for (auto& a : *n->mutable_attribute()) {
      if (a.name() == "value" && a.has_t()) {
        MP_RETURN_IF_ERROR(add({n->output(0), TensorSource::kConstantNode, i, a.mutable_t()}));
      }
    }
  }
  return Status::Ok();
}

const onnx::ModelProto& Model::proto() const { return *impl_->proto; }
onnx::ModelProto& Model::mutable_proto() { return *impl_->proto; }
const std::string& Model::source() const { return impl_->source; }
const std::filesystem::path& Model::base_dir() const { return impl_->base_dir; }
const std::vector<TensorEntry>& Model::tensors() const { return impl_->tensors; }
bool Model::uses_external_data() const { return !impl_->external.empty(); }

const TensorEntry* Model::FindTensor(std::string_view name) const {
  auto it = impl_->by_name.find(std::string(name));
  return it == impl_->by_name.end() ? nullptr : &impl_->tensors[it->second];
}

Result<TensorView> Model::View(const TensorEntry& entry) const {
  auto it = impl_->external.find(entry.proto);
  return MakeView(*entry.proto, it == impl_->external.end() ? nullptr : &it->second,
                  impl_->source + ": tensor " + Quote(entry.name));
}

Result<TensorView> Model::View(std::string_view name) const {
  const TensorEntry* e = FindTensor(name);
  if (e == nullptr) return NotFound(impl_->source + ": no tensor " + Quote(name));
  return View(*e);
}

Result<MutableTensorView> Model::MutableTensor(std::string_view name) {
  const TensorEntry* e = FindTensor(name);
  if (e == nullptr) return NotFound(impl_->source + ": no tensor " + Quote(name));
  MP_ASSIGN_OR_RETURN(TensorView v, View(*e));
  onnx::TensorProto& t = *e->proto;
  std::span<std::byte> bytes;
  if (v.storage() == Storage::kExternal) {
    const ExternalSpan& ext = impl_->external.at(&t);
    ext.file->PrepareForWrite(ext.offset, ext.length);
    bytes = ext.file->bytes().subspan(ext.offset, ext.length);
  } else {
    if (!t.has_raw_data()) {
      std::string raw(v.packed_bytes(), '\0');
      v.CopyPackedTo(std::as_writable_bytes(std::span(raw)));
      t.clear_float_data(); t.clear_int32_data(); t.clear_int64_data();
      t.clear_double_data(); t.clear_uint64_data();
      t.set_raw_data(std::move(raw));
    }
    std::string& raw = *t.mutable_raw_data();
    bytes = std::as_writable_bytes(std::span(raw.data(), raw.size()));
  }
  return MutableTensorView{v.dtype(), v.shape(), bytes};
}

}  // namespace modelpress
