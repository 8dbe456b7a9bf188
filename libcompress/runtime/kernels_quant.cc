// QuantizeLinear and DequantizeLinear, per tensor or per channel (opset 13
// `axis`), so that QDQ models can be evaluated as ONNX Runtime runs them.
#include <cmath>
#include <limits>

#include "runtime/broadcast.h"

namespace modelpress::runtime {
namespace {

// How scale/zero point line up with x: one value, or one per index of `axis`.
struct QuantLayout {
  int64_t inner = 1;     // elements after the axis
  int64_t channels = 1;  // 1 for per-tensor
};

Result<QuantLayout> LayoutOf(const KernelContext& c, const Tensor& x, const Tensor& scale, const Tensor* zero) {
  QuantLayout l;
  if (scale.size() != 1 || scale.rank() > 1) {
    if (scale.rank() != 1) return InvalidArgument("scale must be a scalar or 1-D, got " + Describe(scale));
    if (c.opset() < 13) return InvalidArgument("per-channel scales need opset 13 or later");
    MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", 1), x.rank()));
    if (x.shape()[axis] != scale.size()) {
      return InvalidArgument("scale " + Describe(scale) + " does not match axis " + std::to_string(axis) + " of " + Describe(x));
    }
    l.channels = scale.size();
    l.inner = Product(x.shape(), axis + 1);
  }
  if (scale.dtype() != DType::kFloat32) return Unsupported("scale must be float32, got " + Describe(scale));
  if (zero != nullptr && zero->size() != scale.size()) {
    return InvalidArgument("zero point " + Describe(*zero) + " does not match scale " + Describe(scale));
  }
  return l;
}

template <class Q>
void QuantizeTo(const Tensor& x, const Tensor& scale, const Tensor* zero, const QuantLayout& l, Tensor& y) {
  const float* px = x.data<float>();
  Q* py = y.mutable_data<Q>();
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t ch = (i / l.inner) % l.channels;
    const float s = scale.data<float>()[ch];
    const double zp = zero ? static_cast<double>(zero->data<Q>()[ch]) : 0.0;
    // Round half to even (nearbyint in the default rounding mode), as the spec says.
    const double q = std::nearbyint(static_cast<double>(px[i] / s)) + zp;
    py[i] = static_cast<Q>(std::clamp(q, static_cast<double>(std::numeric_limits<Q>::min()),
                                      static_cast<double>(std::numeric_limits<Q>::max())));
  }
}

Status QuantizeLinear(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* scale, c.Required(1));
  const Tensor* zero = c.input(2);
  if (x->dtype() != DType::kFloat32) return Unsupported("x must be float32, got " + Describe(*x));
  MP_ASSIGN_OR_RETURN(QuantLayout l, LayoutOf(c, *x, *scale, zero));
  const DType out = zero ? zero->dtype() : DType::kUint8;
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(out, x->shape()));
  switch (out) {
    case DType::kUint8: QuantizeTo<uint8_t>(*x, *scale, zero, l, y); break;
    case DType::kInt8: QuantizeTo<int8_t>(*x, *scale, zero, l, y); break;
    case DType::kInt32: QuantizeTo<int32_t>(*x, *scale, zero, l, y); break;
    default: return Unsupported("quantizing to " + DTypeName(out) + " is not supported");
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status DequantizeLinear(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* scale, c.Required(1));
  const Tensor* zero = c.input(2);
  if (zero != nullptr && zero->dtype() != x->dtype()) {
    return InvalidArgument("zero point " + Describe(*zero) + " differs in type from x " + Describe(*x));
  }
  MP_ASSIGN_OR_RETURN(QuantLayout l, LayoutOf(c, *x, *scale, zero));
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, x->shape()));
  MP_RETURN_IF_ERROR(DispatchNumeric(x->dtype() == DType::kFloat32 ? DType::kUndefined : x->dtype(),
                                     "DequantizeLinear", [&](auto tag) {
    using Q = decltype(tag);
    if constexpr (std::is_floating_point_v<Q> || std::is_same_v<Q, int64_t>) {
      return Unsupported("x must be int8, uint8 or int32, got " + Describe(*x));
    } else {
      const Q* px = x->data<Q>();
      float* py = y.mutable_data<float>();
      for (int64_t i = 0; i < x->size(); ++i) {
        const int64_t ch = (i / l.inner) % l.channels;
        const int64_t zp = zero ? static_cast<int64_t>(zero->data<Q>()[ch]) : 0;
        py[i] = static_cast<float>(static_cast<int64_t>(px[i]) - zp) * scale->data<float>()[ch];
      }
      return Status::Ok();
    }
  }));
  c.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace

void RegisterQuantKernels(KernelTable& t) {
  t["QuantizeLinear"] = {QuantizeLinear, 10};
  t["DequantizeLinear"] = {DequantizeLinear, 10};
}

}  // namespace modelpress::runtime
