// Normalisations (BatchNormalization for inference, LayerNormalization,
// InstanceNormalization), Softmax/LogSoftmax and the Reduce ops.
#include <cmath>
#include <limits>

#include "runtime/broadcast.h"

namespace modelpress::runtime {
namespace {

Status CheckChannelParam(const Tensor& t, int64_t channels, const char* what) {
  if (t.dtype() != DType::kFloat32 || t.size() != channels) {
    return InvalidArgument(std::string(what) + " must be float32 [" + std::to_string(channels) + "], got " + Describe(t));
  }
  return Status::Ok();
}

Status BatchNormalization(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kFloat32) return Unsupported("implemented for float32 only, got " + Describe(*x));
  if (x->rank() < 2) return InvalidArgument("X must be [N, C, ...], got " + Describe(*x));
  if (c.opset() < 9 && c.Int("spatial", 1) != 1) return Unsupported("spatial=0 is not supported");
  if (c.Int("training_mode", 0) != 0) return Unsupported("training_mode=1 is not supported (inference only)");
  const int64_t ch = x->shape()[1];
  const Tensor* p[4];
  const char* names[4] = {"scale", "B", "mean", "var"};
  for (int i = 0; i < 4; ++i) {
    MP_ASSIGN_OR_RETURN(p[i], c.Required(i + 1));
    MP_RETURN_IF_ERROR(CheckChannelParam(*p[i], ch, names[i]));
  }
  const double eps = c.Float("epsilon", 1e-5f);
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Uninitialized(DType::kFloat32, x->shape()));
  const int64_t n = x->shape()[0], inner = Product(x->shape(), 2);
  for (int64_t ci = 0; ci < ch; ++ci) {
    const float a = static_cast<float>(p[0]->data<float>()[ci] / std::sqrt(p[3]->data<float>()[ci] + eps));
    const float b = p[1]->data<float>()[ci] - a * p[2]->data<float>()[ci];
    for (int64_t i = 0; i < n; ++i) {
      const float* src = x->data<float>() + (i * ch + ci) * inner;
      float* dst = y.mutable_data<float>() + (i * ch + ci) * inner;
      for (int64_t j = 0; j < inner; ++j) dst[j] = src[j] * a + b;
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status InstanceNormalization(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* scale, c.Required(1));
  MP_ASSIGN_OR_RETURN(const Tensor* bias, c.Required(2));
  if (x->dtype() != DType::kFloat32) return Unsupported("implemented for float32 only, got " + Describe(*x));
  if (x->rank() < 3) return InvalidArgument("X must be [N, C, spatial...], got " + Describe(*x));
  const int64_t ch = x->shape()[1];
  MP_RETURN_IF_ERROR(CheckChannelParam(*scale, ch, "scale"));
  MP_RETURN_IF_ERROR(CheckChannelParam(*bias, ch, "B"));
  const double eps = c.Float("epsilon", 1e-5f);
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, x->shape()));
  const int64_t planes = x->shape()[0] * ch, inner = Product(x->shape(), 2);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x->data<float>() + p * inner;
    float* dst = y.mutable_data<float>() + p * inner;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < inner; ++j) mean += src[j];
    mean /= static_cast<double>(inner);
    for (int64_t j = 0; j < inner; ++j) var += (src[j] - mean) * (src[j] - mean);
    var /= static_cast<double>(inner);
    const double a = scale->data<float>()[p % ch] / std::sqrt(var + eps);
    for (int64_t j = 0; j < inner; ++j) dst[j] = static_cast<float>((src[j] - mean) * a + bias->data<float>()[p % ch]);
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status LayerNormalization(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* scale, c.Required(1));
  const Tensor* bias = c.input(2);
  if (x->dtype() != DType::kFloat32) return Unsupported("implemented for float32 only, got " + Describe(*x));
  MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", -1), x->rank()));
  const double eps = c.Float("epsilon", 1e-5f);
  const int64_t outer = Product(x->shape(), 0, axis), inner = Product(x->shape(), axis);
  const std::vector<int64_t> norm_shape(x->shape().begin() + axis, x->shape().end());
  // Scale and bias broadcast to the normalised dims.
  for (const Tensor* t : {scale, bias}) {
    if (t == nullptr) continue;
    if (t->dtype() != DType::kFloat32) return InvalidArgument("scale and B must be float32, got " + Describe(*t));
    auto s = BroadcastShapes(t->shape(), norm_shape);
    if (!s.ok() || *s != norm_shape) {
      return InvalidArgument(Describe(*t) + " does not broadcast to the normalised dims " + ShapeToString(norm_shape));
    }
  }
  auto expand = [&](const Tensor* t) -> Result<std::vector<float>> {
    std::vector<float> v(static_cast<size_t>(inner), t == nullptr ? 0.0f : 1.0f);
    if (t == nullptr) return v;
    ForEachBroadcast<1>(norm_shape, {&t->shape()}, [&](int64_t o, const auto& off, int64_t n, const auto& step) {
      for (int64_t j = 0; j < n; ++j) v[o + j] = t->data<float>()[off[0] + j * step[0]];
    });
    return v;
  };
  MP_ASSIGN_OR_RETURN(const std::vector<float> sv, expand(scale));
  MP_ASSIGN_OR_RETURN(const std::vector<float> bv, expand(bias));
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, x->shape()));
  std::vector<int64_t> stat_shape = x->shape();
  for (size_t d = axis; d < stat_shape.size(); ++d) stat_shape[d] = 1;
  MP_ASSIGN_OR_RETURN(Tensor mean_out, Tensor::Zeros(DType::kFloat32, stat_shape));
  MP_ASSIGN_OR_RETURN(Tensor inv_out, Tensor::Zeros(DType::kFloat32, stat_shape));
  for (int64_t r = 0; r < outer; ++r) {
    const float* src = x->data<float>() + r * inner;
    float* dst = y.mutable_data<float>() + r * inner;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < inner; ++j) mean += src[j];
    mean /= static_cast<double>(inner);
    for (int64_t j = 0; j < inner; ++j) var += (src[j] - mean) * (src[j] - mean);
    var /= static_cast<double>(inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int64_t j = 0; j < inner; ++j) dst[j] = static_cast<float>((src[j] - mean) * inv * sv[j] + bv[j]);
    mean_out.mutable_data<float>()[r] = static_cast<float>(mean);
    inv_out.mutable_data<float>()[r] = static_cast<float>(inv);
  }
  c.set_output(0, std::move(y));
  if (c.wants(1)) c.set_output(1, std::move(mean_out));
  if (c.wants(2)) c.set_output(2, std::move(inv_out));
  return Status::Ok();
}

template <bool kLog>
Status Softmax(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kFloat32) return Unsupported("implemented for float32 only, got " + Describe(*x));
  const bool legacy = c.opset() < 13;
  MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", legacy ? 1 : -1), std::max(x->rank(), 1)));
  // Before opset 13 the input was flattened to 2-D at `axis`; since, only `axis` is reduced.
  const int64_t outer = Product(x->shape(), 0, axis);
  const int64_t n = legacy ? Product(x->shape(), axis) : (x->rank() == 0 ? 1 : x->shape()[axis]);
  const int64_t inner = legacy ? 1 : Product(x->shape(), axis + 1);
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, x->shape()));
  const float* src = x->data<float>();
  float* dst = y.mutable_data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * n * inner + i;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j) m = std::max(m, src[base + j * inner]);
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += std::exp(static_cast<double>(src[base + j * inner] - m));
      const double log_sum = std::log(sum);
      for (int64_t j = 0; j < n; ++j) {
        const double z = src[base + j * inner] - m;
        dst[base + j * inner] = static_cast<float>(kLog ? z - log_sum : std::exp(z) / sum);
      }
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

enum class ReduceKind { kSum, kMean, kMax, kMin, kProd, kSumSquare, kL2 };

template <ReduceKind kKind>
Status Reduce(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kFloat32) return Unsupported("implemented for float32 only, got " + Describe(*x));
  std::vector<int64_t> axes;
  if (const Tensor* a = c.input(1)) {
    MP_ASSIGN_OR_RETURN(axes, ReadInts(*a, "axes"));
  } else if (auto attr = c.Ints("axes")) {
    axes = *attr;
  }
  const bool keepdims = c.Int("keepdims", 1) != 0;
  if (axes.empty() && c.Int("noop_with_empty_axes", 0) != 0) {
    c.set_output(0, *x);
    return Status::Ok();
  }
  const int rank = x->rank();
  std::vector<bool> reduced(rank, axes.empty());
  for (int64_t a : axes) {
    MP_ASSIGN_OR_RETURN(const int ax, NormalizeAxis(a, rank));
    reduced[ax] = true;
  }
  std::vector<int64_t> kept_shape(rank);  // x's rank, reduced dims as 1
  std::vector<int64_t> out_shape;
  for (int d = 0; d < rank; ++d) {
    kept_shape[d] = reduced[d] ? 1 : x->shape()[d];
    if (!reduced[d] || keepdims) out_shape.push_back(kept_shape[d]);
  }
  const int64_t out_size = Product(kept_shape);
  std::vector<double> acc(static_cast<size_t>(out_size),
                          kKind == ReduceKind::kMax   ? -std::numeric_limits<double>::infinity()
                          : kKind == ReduceKind::kMin ? std::numeric_limits<double>::infinity()
                          : kKind == ReduceKind::kProd ? 1.0
                                                       : 0.0);
  // Output strides in x's index space; 0 along reduced axes.
  std::vector<int64_t> os = Strides(kept_shape);
  for (int d = 0; d < rank; ++d) {
    if (reduced[d]) os[d] = 0;
  }
  std::vector<int64_t> idx(rank, 0);
  int64_t o = 0;
  const float* src = x->data<float>();
  for (int64_t i = 0; i < x->size(); ++i) {
    const double v = src[i];
    double& a = acc[o];
    switch (kKind) {
      case ReduceKind::kSum: case ReduceKind::kMean: a += v; break;
      case ReduceKind::kMax: a = std::max(a, v); break;
      case ReduceKind::kMin: a = std::min(a, v); break;
      case ReduceKind::kProd: a *= v; break;
      case ReduceKind::kSumSquare: case ReduceKind::kL2: a += v * v; break;
    }
    for (int d = rank - 1; d >= 0; --d) {
      if (++idx[d] < x->shape()[d]) {
        o += os[d];
        break;
      }
      o -= os[d] * (x->shape()[d] - 1);
      idx[d] = 0;
    }
  }
  const double count = out_size > 0 ? static_cast<double>(x->size()) / static_cast<double>(out_size) : 0;
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, out_shape));
  for (int64_t i = 0; i < out_size; ++i) {
    double v = acc[i];
    if (kKind == ReduceKind::kMean) v /= count;
    if (kKind == ReduceKind::kL2) v = std::sqrt(v);
    y.mutable_data<float>()[i] = static_cast<float>(v);
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace

void RegisterNormKernels(KernelTable& t) {
  t["BatchNormalization"] = {BatchNormalization, 6};
  t["InstanceNormalization"] = {InstanceNormalization, 6};
  t["LayerNormalization"] = {LayerNormalization, 17};
  t["Softmax"] = {Softmax<false>};
  t["LogSoftmax"] = {Softmax<true>};
  t["ReduceSum"] = {Reduce<ReduceKind::kSum>};
  t["ReduceMean"] = {Reduce<ReduceKind::kMean>};
  t["ReduceMax"] = {Reduce<ReduceKind::kMax>};
  t["ReduceMin"] = {Reduce<ReduceKind::kMin>};
  t["ReduceProd"] = {Reduce<ReduceKind::kProd>};
  t["ReduceSumSquare"] = {Reduce<ReduceKind::kSumSquare>};
  t["ReduceL2"] = {Reduce<ReduceKind::kL2>};
}

}  // namespace modelpress::runtime
