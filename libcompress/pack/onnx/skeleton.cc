#include "onnx/skeleton.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <cstring>

#include "modelpress/tensor.h"

namespace modelpress::pack {

std::vector<NamedTensor> EnumerateTensors(onnx::ModelProto& model) {
  std::vector<NamedTensor> out;
  onnx::GraphProto* g = model.mutable_graph();
  for (auto& t : *g->mutable_initializer()) out.push_back({t.name(), &t});
  for (auto& n : *g->mutable_node()) {
    // The same rule as Model::Reindex.
    if (n.op_type() != "Constant" || !(n.domain().empty() || n.domain() == "ai.onnx") || n.output_size() != 1) continue;
    for (auto& a : *n.mutable_attribute()) {
      if (a.name() == "value" && a.has_t()) out.push_back({n.output(0), a.mutable_t()});
    }
  }
  return out;
}

namespace {

template <class T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Calls the right emitter per element; shared by FillTyped and TypedMatches
// so that both agree on the widening rules.
template <class Float, class Int32, class Int64, class Double, class Uint64>
bool Widen(int32_t dtype, std::span<const uint8_t> p, Float&& f, Int32&& i32, Int64&& i64, Double&& d, Uint64&& u64) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat32:
    case DType::kComplex64:
      for (size_t i = 0; i + 4 <= p.size(); i += 4) f(Load<float>(&p[i]));
      return true;
    case DType::kInt64:
      for (size_t i = 0; i + 8 <= p.size(); i += 8) i64(Load<int64_t>(&p[i]));
      return true;
    case DType::kFloat64:
    case DType::kComplex128:
      for (size_t i = 0; i + 8 <= p.size(); i += 8) d(Load<double>(&p[i]));
      return true;
    case DType::kUint32:
      for (size_t i = 0; i + 4 <= p.size(); i += 4) u64(Load<uint32_t>(&p[i]));
      return true;
    case DType::kUint64:
      for (size_t i = 0; i + 8 <= p.size(); i += 8) u64(Load<uint64_t>(&p[i]));
      return true;
    case DType::kInt32:
      for (size_t i = 0; i + 4 <= p.size(); i += 4) i32(Load<int32_t>(&p[i]));
      return true;
    case DType::kInt16:
      for (size_t i = 0; i + 2 <= p.size(); i += 2) i32(Load<int16_t>(&p[i]));
      return true;
    case DType::kInt8:
      for (uint8_t b : p) i32(static_cast<int8_t>(b));
      return true;
    case DType::kUint16:
    case DType::kFloat16:
    case DType::kBfloat16:
      for (size_t i = 0; i + 2 <= p.size(); i += 2) i32(Load<uint16_t>(&p[i]));
      return true;
    case DType::kUint8:
    case DType::kBool:
    case DType::kFloat8E4M3FN:
    case DType::kFloat8E4M3FNUZ:
    case DType::kFloat8E5M2:
    case DType::kFloat8E5M2FNUZ:
      for (uint8_t b : p) i32(b);
      return true;
    default: return false;
  }
}

}  // namespace

void FillTyped(onnx::TensorProto* t, std::span<const uint8_t> packed) {
  ClearTyped(t);
  Widen(
      t->data_type(), packed, [&](float v) { t->add_float_data(v); }, [&](int32_t v) { t->add_int32_data(v); },
      [&](int64_t v) { t->add_int64_data(v); }, [&](double v) { t->add_double_data(v); },
      [&](uint64_t v) { t->add_uint64_data(v); });
}

bool TypedMatches(const onnx::TensorProto& t, std::span<const uint8_t> packed) {
  onnx::TensorProto tmp;
  tmp.set_data_type(t.data_type());
  FillTyped(&tmp, packed);
  auto same = [](const auto& a, const auto& b) {
    // Bitwise: NaN payloads and -0.0 must survive too.
    return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), sizeof(a[0]) * a.size()) == 0);
  };
  return same(tmp.float_data(), t.float_data()) && same(tmp.int32_data(), t.int32_data()) &&
         same(tmp.int64_data(), t.int64_data()) && same(tmp.double_data(), t.double_data()) &&
         same(tmp.uint64_data(), t.uint64_data()) && t.string_data_size() == 0;
}

void ClearTyped(onnx::TensorProto* t) {
  t->clear_float_data();
  t->clear_int32_data();
  t->clear_int64_data();
  t->clear_double_data();
  t->clear_uint64_data();
}

int TypedEntries(const onnx::TensorProto& t) {
  return t.float_data_size() + t.int32_data_size() + t.int64_data_size() + t.double_data_size() + t.uint64_data_size() +
         t.string_data_size();
}

bool SerializeDeterministic(const onnx::ModelProto& model, std::string* out) {
  const size_t size = model.ByteSizeLong();
  out->clear();
  out->reserve(size);
  google::protobuf::io::StringOutputStream raw(out);
  google::protobuf::io::CodedOutputStream coded(&raw);
  coded.SetSerializationDeterministic(true);
  model.SerializeWithCachedSizes(&coded);
  coded.Trim();
  return !coded.HadError();
}

namespace {

class SinkStream : public google::protobuf::io::CopyingOutputStream {
 public:
  explicit SinkStream(const std::function<bool(const void*, size_t)>& sink) : sink_(sink) {}
  bool Write(const void* buffer, int size) override { return sink_(buffer, static_cast<size_t>(size)); }

 private:
  const std::function<bool(const void*, size_t)>& sink_;
};

}  // namespace

bool SerializeDeterministic(const onnx::ModelProto& model, const std::function<bool(const void*, size_t)>& sink) {
  model.ByteSizeLong();  // caches the sizes SerializeWithCachedSizes writes
  SinkStream stream(sink);
  google::protobuf::io::CopyingOutputStreamAdaptor adaptor(&stream, 1 << 20);
  {
    google::protobuf::io::CodedOutputStream coded(&adaptor);
    coded.SetSerializationDeterministic(true);
    model.SerializeWithCachedSizes(&coded);
    coded.Trim();
    if (coded.HadError()) return false;
  }
  return adaptor.Flush();
}

}  // namespace modelpress::pack
