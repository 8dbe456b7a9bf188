// Runtime tensors, conversions from ONNX storage, and helpers shared by kernels.
#include <cmath>
#include <cstring>
#include <limits>

#include "onnx_io/model_impl.h"
#include "runtime/kernel.h"
#include "runtime/view.h"

namespace modelpress::runtime {

namespace {

bool ComputeType(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kFloat64: case DType::kInt64: case DType::kInt32:
    case DType::kInt8: case DType::kUint8: case DType::kBool:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Tensor> Tensor::Uninitialized(DType dtype, std::vector<int64_t> shape) {
  const size_t es = DTypeSize(dtype);
  if (es == 0) return Unsupported("no tensors of element type " + DTypeName(dtype));
  auto count = ElementCount(shape);
  if (!count) return InvalidArgument("invalid tensor shape " + ShapeToString(shape));
  // Refuse sizes no machine could hold before asking the allocator.
  if (static_cast<uint64_t>(*count) > (uint64_t{1} << 40) / es) {
    return InvalidArgument("tensor shape " + ShapeToString(shape) + " is too large to allocate");
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.size_ = *count;
  // One spare element so that an empty tensor still has a valid pointer.
  t.owner_ = std::shared_ptr<std::byte[]>(new std::byte[(*count + 1) * es]);
  t.data_ = t.owner_.get();
  return t;
}

Result<Tensor> Tensor::Zeros(DType dtype, std::vector<int64_t> shape) {
  MP_ASSIGN_OR_RETURN(Tensor t, Uninitialized(dtype, std::move(shape)));
  std::memset(t.owner_.get(), 0, (static_cast<size_t>(t.size_) + 1) * DTypeSize(dtype));
  return t;
}

Result<Tensor> Tensor::Copy(DType dtype, std::vector<int64_t> shape, const void* data) {
  MP_ASSIGN_OR_RETURN(Tensor t, Uninitialized(dtype, std::move(shape)));
  if (t.bytes() > 0) std::memcpy(t.mutable_data<std::byte>(), data, t.bytes());
  return t;
}

Tensor Tensor::Borrow(DType dtype, std::vector<int64_t> shape, const void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.size_ = ElementCount(shape).value_or(0);
  t.shape_ = std::move(shape);
  t.data_ = static_cast<const std::byte*>(data);
  return t;
}

Tensor Tensor::FromFloats(std::vector<int64_t> shape, std::span<const float> values) {
  auto t = Copy(DType::kFloat32, std::move(shape), values.data());
  return t.ok() ? std::move(t).value() : Tensor();
}

Tensor Tensor::FromInt64s(std::vector<int64_t> shape, std::span<const int64_t> values) {
  auto t = Copy(DType::kInt64, std::move(shape), values.data());
  return t.ok() ? std::move(t).value() : Tensor();
}

Tensor Tensor::Reshaped(std::vector<int64_t> shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

double Tensor::AsDouble(int64_t i) const {
  switch (dtype_) {
    case DType::kFloat32: return data<float>()[i];
    case DType::kFloat64: return data<double>()[i];
    case DType::kInt64: return static_cast<double>(data<int64_t>()[i]);
    case DType::kInt32: return data<int32_t>()[i];
    case DType::kInt8: return data<int8_t>()[i];
    case DType::kUint8: return data<uint8_t>()[i];
    case DType::kBool: return data<uint8_t>()[i] != 0 ? 1.0 : 0.0;
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

Result<Tensor> TensorFromView(const TensorView& v, const std::string& where) {
  const DType d = v.dtype();
  if (d == DType::kFloat16 || d == DType::kBfloat16) {
    MP_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(DType::kFloat32, v.shape()));
    float* out = t.mutable_data<float>();
    for (int64_t i = 0; i < v.size(); ++i) {
      const auto b = static_cast<uint16_t>(v.bits(i));
      out[i] = d == DType::kFloat16 ? HalfToFloat(b) : Bfloat16ToFloat(b);
    }
    return t;
  }
  if (!ComputeType(d)) return Unsupported(where + ": element type " + DTypeName(d) + " is not supported by the executor");
  // Borrow in place when the bytes are packed and aligned for their type;
  // otherwise (narrow types in int32_data, odd offsets in external data) copy.
  const bool aligned = reinterpret_cast<uintptr_t>(v.bytes().data()) % v.element_size() == 0;
  if (v.contiguous() && aligned && v.size() > 0) return Tensor::Borrow(d, v.shape(), v.bytes().data());
  MP_ASSIGN_OR_RETURN(Tensor t, Tensor::Zeros(d, v.shape()));
  if (v.size() > 0) v.CopyPackedTo(std::span<std::byte>(t.mutable_data<std::byte>(), t.bytes()));
  return t;
}

Result<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& where) {
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    return Unsupported(where + ": bare tensors with external data are not supported");
  }
  MP_ASSIGN_OR_RETURN(TensorView v, MakeView(proto, nullptr, where));
  MP_ASSIGN_OR_RETURN(Tensor t, TensorFromView(v, where));
  // The proto may die before the tensor: own the bytes.
  if (t.size() == 0 || t.raw() != v.bytes().data()) return t;
  return Tensor::Copy(t.dtype(), t.shape(), t.raw());
}

Result<const Tensor*> KernelContext::Required(int i) const {
  const Tensor* t = input(i);
  if (t == nullptr) return InvalidArgument("input " + std::to_string(i) + " is required");
  return t;
}

const onnx::AttributeProto* KernelContext::Attr(const std::string& name) const {
  for (const auto& a : node_.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t KernelContext::Int(const std::string& name, int64_t fallback) const {
  const auto* a = Attr(name);
  return a ? a->i() : fallback;
}

float KernelContext::Float(const std::string& name, float fallback) const {
  const auto* a = Attr(name);
  return a ? a->f() : fallback;
}

std::string KernelContext::String(const std::string& name, const std::string& fallback) const {
  const auto* a = Attr(name);
  return a ? a->s() : fallback;
}

std::optional<std::vector<int64_t>> KernelContext::Ints(const std::string& name) const {
  const auto* a = Attr(name);
  if (!a) return std::nullopt;
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

std::optional<std::vector<float>> KernelContext::Floats(const std::string& name) const {
  const auto* a = Attr(name);
  if (!a) return std::nullopt;
  return std::vector<float>(a->floats().begin(), a->floats().end());
}

Result<int> NormalizeAxis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    return InvalidArgument("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Result<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      return InvalidArgument("shapes " + ShapeToString(a) + " and " + ShapeToString(b) + " do not broadcast");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t Product(const std::vector<int64_t>& dims, int from, int to) {
  if (to < 0) to = static_cast<int>(dims.size());
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= dims[i];
  return p;
}

Result<std::vector<int64_t>> ReadInts(const Tensor& t, const std::string& what) {
  std::vector<int64_t> v(static_cast<size_t>(t.size()));
  if (t.dtype() == DType::kInt64) {
    for (int64_t i = 0; i < t.size(); ++i) v[i] = t.data<int64_t>()[i];
  } else if (t.dtype() == DType::kInt32) {
    for (int64_t i = 0; i < t.size(); ++i) v[i] = t.data<int32_t>()[i];
  } else {
    return InvalidArgument(what + " must be int64 or int32, got " + DTypeName(t.dtype()));
  }
  return v;
}

Result<float> ReadScalar(const Tensor& t, const std::string& what) {
  if (t.size() < 1) return InvalidArgument(what + " is empty");
  return static_cast<float>(t.AsDouble(0));
}

std::vector<int64_t> Strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

std::string Describe(const Tensor& t) { return DTypeName(t.dtype()) + " tensor " + ShapeToString(t.shape()); }

namespace {

template <class From, class To>
void CastLoop(const From* in, To* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (std::is_floating_point_v<From> && !std::is_floating_point_v<To>) {
      // Out-of-range and NaN float-to-int conversions are undefined in C++;
      // give NaN 0 and saturate the rest instead.
      const double x = static_cast<double>(in[i]);
      if (std::isnan(x)) {
        out[i] = 0;
      } else if (x <= static_cast<double>(std::numeric_limits<To>::lowest())) {
        out[i] = std::numeric_limits<To>::lowest();
      } else if (x >= static_cast<double>(std::numeric_limits<To>::max())) {
        out[i] = std::numeric_limits<To>::max();
      } else {
        out[i] = static_cast<To>(x);
      }
    } else {
      out[i] = static_cast<To>(in[i]);
    }
  }
}

template <class From>
Status CastFrom(const From* in, Tensor& out, int64_t n) {
  switch (out.dtype()) {
    case DType::kFloat32: CastLoop(in, out.mutable_data<float>(), n); break;
    case DType::kFloat64: CastLoop(in, out.mutable_data<double>(), n); break;
    case DType::kInt64: CastLoop(in, out.mutable_data<int64_t>(), n); break;
    case DType::kInt32: CastLoop(in, out.mutable_data<int32_t>(), n); break;
    case DType::kInt8: CastLoop(in, out.mutable_data<int8_t>(), n); break;
    case DType::kUint8: CastLoop(in, out.mutable_data<uint8_t>(), n); break;
    case DType::kBool: {
      uint8_t* o = out.mutable_data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = in[i] != From(0) ? 1 : 0;
      break;
    }
    default: return Unsupported("cannot cast to " + DTypeName(out.dtype()));
  }
  return Status::Ok();
}

}  // namespace

Result<Tensor> CastTensor(const Tensor& t, DType to) {
  if (t.dtype() == to) return t;
  if (!ComputeType(to)) return Unsupported("cannot cast to " + DTypeName(to));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(to, t.shape()));
  const int64_t n = t.size();
  Status s;
  switch (t.dtype()) {
    case DType::kFloat32: s = CastFrom(t.data<float>(), out, n); break;
    case DType::kFloat64: s = CastFrom(t.data<double>(), out, n); break;
    case DType::kInt64: s = CastFrom(t.data<int64_t>(), out, n); break;
    case DType::kInt32: s = CastFrom(t.data<int32_t>(), out, n); break;
    case DType::kInt8: s = CastFrom(t.data<int8_t>(), out, n); break;
    case DType::kUint8: case DType::kBool: s = CastFrom(t.data<uint8_t>(), out, n); break;
    default: return Unsupported("cannot cast from " + DTypeName(t.dtype()));
  }
  MP_RETURN_IF_ERROR(s);
  return out;
}

}  // namespace modelpress::runtime
