// Element-wise kernels: arithmetic and comparisons with numpy broadcasting,
// activations, Where, Cast, Identity and Dropout (inference).
#include <cmath>
#include <limits>

#include "runtime/broadcast.h"

namespace modelpress::runtime {
namespace {

enum class BinOp { kAdd, kSub, kMul, kDiv, kPow, kMax, kMin, kPRelu, kMod };
enum class CmpOp { kEqual, kLess, kGreater, kLessOrEqual, kGreaterOrEqual };

template <class T>
T Apply(BinOp op, T a, T b) {
  switch (op) {
    case BinOp::kAdd: return a + b;
    case BinOp::kSub: return a - b;
    case BinOp::kMul: return a * b;
    case BinOp::kDiv: return a / b;  // integer zero divisors are refused before the loop
    case BinOp::kPow: return static_cast<T>(std::pow(static_cast<double>(a), static_cast<double>(b)));
    case BinOp::kMax: return a > b || a != a ? a : b;
    case BinOp::kMin: return a < b || a != a ? a : b;
    case BinOp::kPRelu: return a < T(0) ? a * b : a;
    case BinOp::kMod:
      if constexpr (std::is_floating_point_v<T>) {
        return std::fmod(a, b);
      } else {
        // ONNX Mod with fmod=0 takes the sign of the divisor, as Python does.
        T r = a % b;
        if (r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
      }
  }
  return a;
}

template <class T>
Status BinaryTyped(BinOp op, const Tensor& a, const Tensor& b, Tensor* out) {
  MP_ASSIGN_OR_RETURN(auto shape, BroadcastShapes(a.shape(), b.shape()));
  if constexpr (!std::is_floating_point_v<T>) {
    if (op == BinOp::kDiv || op == BinOp::kMod) {
      for (T v : b.values<T>()) {
        if (v == 0) return InvalidArgument("integer division by zero");
      }
    }
  }
  MP_ASSIGN_OR_RETURN(*out, Tensor::Uninitialized(a.dtype(), shape));
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out->mutable_data<T>();
  // The common cases get tight loops the compiler vectorises.
  if (a.shape() == b.shape() && op == BinOp::kAdd) {
    for (int64_t i = 0; i < out->size(); ++i) po[i] = pa[i] + pb[i];
    return Status::Ok();
  }
  if (a.shape() == b.shape() && op == BinOp::kMul) {
    for (int64_t i = 0; i < out->size(); ++i) po[i] = pa[i] * pb[i];
    return Status::Ok();
  }
  ForEachBroadcast<2>(shape, {&a.shape(), &b.shape()},
                      [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& step) {
                        const T* x = pa + off[0];
                        const T* y = pb + off[1];
                        T* z = po + o;
                        if (step[0] == 1 && step[1] == 1) {
                          for (int64_t j = 0; j < n; ++j) z[j] = Apply(op, x[j], y[j]);
                        } else if (step[0] == 1 && step[1] == 0) {
                          const T c = *y;
                          for (int64_t j = 0; j < n; ++j) z[j] = Apply(op, x[j], c);
                        } else {
                          for (int64_t j = 0; j < n; ++j) z[j] = Apply(op, x[j * step[0]], y[j * step[1]]);
                        }
                      });
  return Status::Ok();
}

Status Binary(BinOp op, const Tensor& a, const Tensor& b, Tensor* out) {
  if (a.dtype() != b.dtype()) {
    return InvalidArgument("operands have different element types: " + Describe(a) + " and " + Describe(b));
  }
  return DispatchNumeric(a.dtype(), "this operator", [&](auto t) { return BinaryTyped<decltype(t)>(op, a, b, out); });
}

template <BinOp kOp>
Status BinaryKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* a, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* b, c.Required(1));
  Tensor out;
  Tensor b_legacy;
  if (c.opset() < 7 && c.Int("broadcast", 0) == 1 && c.Attr("axis") != nullptr) {
    // Before opset 7, B's dims lined up with A's starting at `axis`.
    MP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(c.Int("axis", 0), a->rank()));
    if (axis + b->rank() > a->rank()) return InvalidArgument("B does not fit A at axis " + std::to_string(axis));
    std::vector<int64_t> shape = b->shape();
    shape.resize(static_cast<size_t>(a->rank() - axis), 1);
    b_legacy = b->Reshaped(shape);
    b = &b_legacy;
  }
  if (kOp == BinOp::kPRelu && c.opset() < 7 && b->rank() == 1 && a->rank() >= 2 && b->size() == a->shape()[1] &&
      b->size() != a->shape().back()) {
    // PRelu-6 applied a 1-D slope along the channel axis.
    std::vector<int64_t> shape(static_cast<size_t>(a->rank() - 1), 1);
    shape[0] = b->size();
    b_legacy = b->Reshaped(shape);
    b = &b_legacy;
  }
  if (kOp == BinOp::kPow && a->dtype() != b->dtype()) {
    // Pow allows an exponent of another type (opset 12+).
    MP_ASSIGN_OR_RETURN(Tensor e, CastTensor(*b, a->dtype()));
    MP_RETURN_IF_ERROR(Binary(kOp, *a, e, &out));
  } else if (kOp == BinOp::kMod && c.Int("fmod", 0) == 0 && IsFloatingPoint(a->dtype())) {
    return InvalidArgument("Mod of floating-point values needs fmod=1");
  } else {
    MP_RETURN_IF_ERROR(Binary(kOp, *a, *b, &out));
  }
  c.set_output(0, std::move(out));
  return Status::Ok();
}

// Max, Min, Sum and Mean take any number of inputs.
template <BinOp kOp>
Status VariadicKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* first, c.Required(0));
  Tensor acc = *first;
  for (int i = 1; i < c.input_count(); ++i) {
    MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(i));
    Tensor next;
    MP_RETURN_IF_ERROR(Binary(kOp, acc, *x, &next));
    acc = std::move(next);
  }
  c.set_output(0, std::move(acc));
  return Status::Ok();
}

template <class T>
bool Compare(CmpOp op, T a, T b) {
  switch (op) {
    case CmpOp::kEqual: return a == b;
    case CmpOp::kLess: return a < b;
    case CmpOp::kGreater: return a > b;
    case CmpOp::kLessOrEqual: return a <= b;
    case CmpOp::kGreaterOrEqual: return a >= b;
  }
  return false;
}

template <CmpOp kOp>
Status CompareKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* a, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* b, c.Required(1));
  if (a->dtype() != b->dtype()) {
    return InvalidArgument("operands have different element types: " + Describe(*a) + " and " + Describe(*b));
  }
  MP_ASSIGN_OR_RETURN(auto shape, BroadcastShapes(a->shape(), b->shape()));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(DType::kBool, shape));
  uint8_t* po = out.mutable_data<uint8_t>();
  const DType d = a->dtype() == DType::kBool ? DType::kUint8 : a->dtype();
  MP_RETURN_IF_ERROR(DispatchNumeric(d, "this comparison", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a->data<T>();
    const T* pb = b->data<T>();
    ForEachBroadcast<2>(shape, {&a->shape(), &b->shape()}, [&](int64_t o, const auto& off, int64_t n, const auto& step) {
      for (int64_t j = 0; j < n; ++j) po[o + j] = Compare(kOp, pa[off[0] + j * step[0]], pb[off[1] + j * step[1]]);
    });
    return Status::Ok();
  }));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

enum class LogicOp { kAnd, kOr, kXor };

template <LogicOp kOp>
Status LogicKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* a, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* b, c.Required(1));
  if (a->dtype() != DType::kBool || b->dtype() != DType::kBool) return InvalidArgument("operands must be bool");
  MP_ASSIGN_OR_RETURN(auto shape, BroadcastShapes(a->shape(), b->shape()));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(DType::kBool, shape));
  uint8_t* po = out.mutable_data<uint8_t>();
  const uint8_t* pa = a->data<uint8_t>();
  const uint8_t* pb = b->data<uint8_t>();
  ForEachBroadcast<2>(shape, {&a->shape(), &b->shape()}, [&](int64_t o, const auto& off, int64_t n, const auto& step) {
    for (int64_t j = 0; j < n; ++j) {
      const bool x = pa[off[0] + j * step[0]] != 0, y = pb[off[1] + j * step[1]] != 0;
      po[o + j] = kOp == LogicOp::kAnd ? (x && y) : kOp == LogicOp::kOr ? (x || y) : (x != y);
    }
  });
  c.set_output(0, std::move(out));
  return Status::Ok();
}

Status NotKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kBool) return InvalidArgument("input must be bool, got " + Describe(*x));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(DType::kBool, x->shape()));
  for (int64_t i = 0; i < x->size(); ++i) out.mutable_data<uint8_t>()[i] = x->data<uint8_t>()[i] ? 0 : 1;
  c.set_output(0, std::move(out));
  return Status::Ok();
}

Status WhereKernel(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* cond, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(1));
  MP_ASSIGN_OR_RETURN(const Tensor* y, c.Required(2));
  if (cond->dtype() != DType::kBool) return InvalidArgument("condition must be bool, got " + Describe(*cond));
  if (x->dtype() != y->dtype()) return InvalidArgument("X and Y differ in type: " + Describe(*x) + ", " + Describe(*y));
  MP_ASSIGN_OR_RETURN(auto s1, BroadcastShapes(cond->shape(), x->shape()));
  MP_ASSIGN_OR_RETURN(auto shape, BroadcastShapes(s1, y->shape()));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Uninitialized(x->dtype(), shape));
  MP_RETURN_IF_ERROR(DispatchBySize(x->dtype(), [&](auto tag) {
    using T = decltype(tag);
    const uint8_t* pc = cond->data<uint8_t>();
    const T* px = x->data<T>();
    const T* py = y->data<T>();
    T* po = out.mutable_data<T>();
    ForEachBroadcast<3>(shape, {&cond->shape(), &x->shape(), &y->shape()},
                        [&](int64_t o, const auto& off, int64_t n, const auto& step) {
                          for (int64_t j = 0; j < n; ++j) {
                            po[o + j] = pc[off[0] + j * step[0]] ? px[off[1] + j * step[1]] : py[off[2] + j * step[2]];
                          }
                        });
    return Status::Ok();
  }));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

// Unary float functions. Each kernel reads its attributes once and applies a
// scalar function; float64 inputs are computed in double.
template <class Fn>
Status UnaryFloat(KernelContext& c, Fn fn) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Uninitialized(x->dtype(), x->shape()));
  MP_RETURN_IF_ERROR(DispatchFloat(x->dtype(), "this operator", [&](auto tag) {
    using T = decltype(tag);
    const T* in = x->data<T>();
    T* o = out.mutable_data<T>();
    for (int64_t i = 0; i < x->size(); ++i) o[i] = static_cast<T>(fn(in[i]));
    return Status::Ok();
  }));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

// Unary functions that also apply to signed integers (Relu, Neg, Abs, Sign).
template <class Fn>
Status UnaryNumeric(KernelContext& c, Fn fn) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Uninitialized(x->dtype(), x->shape()));
  MP_RETURN_IF_ERROR(DispatchNumeric(x->dtype(), "this operator", [&](auto tag) {
    using T = decltype(tag);
    const T* in = x->data<T>();
    T* o = out.mutable_data<T>();
    for (int64_t i = 0; i < x->size(); ++i) o[i] = fn(in[i]);
    return Status::Ok();
  }));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

Status Relu(KernelContext& c) {
  return UnaryNumeric(c, [](auto v) { return v > decltype(v)(0) ? v : decltype(v)(0); });
}
Status Neg(KernelContext& c) {
  return UnaryNumeric(c, [](auto v) { return static_cast<decltype(v)>(-v); });
}
Status Abs(KernelContext& c) {
  return UnaryNumeric(c, [](auto v) { return v < decltype(v)(0) ? static_cast<decltype(v)>(-v) : v; });
}
Status Sign(KernelContext& c) {
  return UnaryNumeric(c, [](auto v) {
    using T = decltype(v);
    return v > T(0) ? T(1) : v < T(0) ? static_cast<T>(-1) : T(0);
  });
}
Status Sigmoid(KernelContext& c) {
  return UnaryFloat(c, [](auto v) {
    // Two branches keep exp() from overflowing for large |v|.
    if (v >= 0) return 1 / (1 + std::exp(-v));
    const auto e = std::exp(v);
    return e / (1 + e);
  });
}
Status Tanh(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::tanh(v); });
}
Status Sqrt(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::sqrt(v); });
}
Status Exp(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::exp(v); });
}
Status Log(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::log(v); });
}
Status Erf(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::erf(v); });
}
Status Reciprocal(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return 1 / v; });
}
Status Floor(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::floor(v); });
}
Status Ceil(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::ceil(v); });
}
Status Round(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return std::nearbyint(v); });
}
Status Softsign(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return v / (1 + std::abs(v)); });
}
Status Softplus(KernelContext& c) {
  // log(1 + e^v) without overflow: max(v, 0) + log1p(e^-|v|).
  return UnaryFloat(c, [](auto v) { return std::max(v, decltype(v)(0)) + std::log1p(std::exp(-std::abs(v))); });
}
Status LeakyRelu(KernelContext& c) {
  const double alpha = c.Float("alpha", 0.01f);
  return UnaryFloat(c, [alpha](auto v) { return v < 0 ? v * alpha : v; });
}
Status Elu(KernelContext& c) {
  const double alpha = c.Float("alpha", 1.0f);
  return UnaryFloat(c, [alpha](auto v) { return v < 0 ? alpha * std::expm1(static_cast<double>(v)) : v; });
}
Status Selu(KernelContext& c) {
  const double alpha = c.Float("alpha", 1.67326319217681884765625f);
  const double gamma = c.Float("gamma", 1.05070102214813232421875f);
  return UnaryFloat(c, [alpha, gamma](auto v) {
    return v > 0 ? gamma * v : gamma * alpha * std::expm1(static_cast<double>(v));
  });
}
Status HardSigmoid(KernelContext& c) {
  const double alpha = c.Float("alpha", 0.2f), beta = c.Float("beta", 0.5f);
  return UnaryFloat(c, [alpha, beta](auto v) { return std::clamp(alpha * v + beta, 0.0, 1.0); });
}
Status HardSwish(KernelContext& c) {
  return UnaryFloat(c, [](auto v) { return v * std::clamp(v / 6.0 + 0.5, 0.0, 1.0); });
}
Status Shrink(KernelContext& c) {
  const double bias = c.Float("bias", 0.0f), lambd = c.Float("lambd", 0.5f);
  return UnaryFloat(c, [bias, lambd](auto v) { return v < -lambd ? v + bias : v > lambd ? v - bias : 0.0; });
}
Status Gelu(KernelContext& c) {
  const std::string approximate = c.String("approximate", "none");
  if (approximate == "tanh") {
    return UnaryFloat(c, [](auto v) {
      const double x = v;
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    });
  }
  if (approximate != "none") return InvalidArgument("approximate must be 'none' or 'tanh', got '" + approximate + "'");
  return UnaryFloat(c, [](auto v) { return 0.5 * v * (1 + std::erf(v * M_SQRT1_2)); });
}

Status Clip(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (c.opset() < 11) {
    lo = c.Float("min", -std::numeric_limits<float>::infinity());
    hi = c.Float("max", std::numeric_limits<float>::infinity());
  } else {
    if (const Tensor* t = c.input(1)) {
      MP_ASSIGN_OR_RETURN(lo, ReadScalar(*t, "min"));
    }
    if (const Tensor* t = c.input(2)) {
      MP_ASSIGN_OR_RETURN(hi, ReadScalar(*t, "max"));
    }
  }
  MP_ASSIGN_OR_RETURN(Tensor out, Tensor::Zeros(x->dtype(), x->shape()));
  MP_RETURN_IF_ERROR(DispatchNumeric(x->dtype(), "Clip", [&](auto tag) {
    using T = decltype(tag);
    const T* in = x->data<T>();
    T* o = out.mutable_data<T>();
    // Bounds are applied in the element type, as ONNX Runtime does.
    const T l = std::isinf(lo) ? std::numeric_limits<T>::lowest() : static_cast<T>(lo);
    const T h = std::isinf(hi) ? std::numeric_limits<T>::max() : static_cast<T>(hi);
    for (int64_t i = 0; i < x->size(); ++i) o[i] = std::min(std::max(in[i], l), h);
    return Status::Ok();
  }));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

Status Identity(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  c.set_output(0, *x);
  return Status::Ok();
}

// Inference-mode Dropout: the identity, with an all-true mask when asked.
Status Dropout(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  c.set_output(0, *x);
  if (c.wants(1)) {
    MP_ASSIGN_OR_RETURN(Tensor mask, Tensor::Zeros(DType::kBool, x->shape()));
    std::fill_n(mask.mutable_data<uint8_t>(), mask.size(), uint8_t{1});
    c.set_output(1, std::move(mask));
  }
  return Status::Ok();
}

Status Cast(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  const auto* to = c.Attr("to");
  if (to == nullptr) return InvalidArgument("attribute 'to' is required");
  DType target = static_cast<DType>(to->i());
  // Opset 6-8 wrote `to` as a string name.
  if (to->type() == onnx::AttributeProto::STRING) {
    static const std::map<std::string, DType> kNames = {{"FLOAT", DType::kFloat32}, {"DOUBLE", DType::kFloat64},
                                                        {"INT64", DType::kInt64},   {"INT32", DType::kInt32},
                                                        {"INT8", DType::kInt8},     {"UINT8", DType::kUint8},
                                                        {"BOOL", DType::kBool}};
    auto it = kNames.find(to->s());
    if (it == kNames.end()) return Unsupported("cast to " + to->s() + " is not supported");
    target = it->second;
  }
  MP_ASSIGN_OR_RETURN(Tensor out, CastTensor(*x, target));
  c.set_output(0, std::move(out));
  return Status::Ok();
}

}  // namespace

void RegisterElementwiseKernels(KernelTable& t) {
  t["Add"] = {BinaryKernel<BinOp::kAdd>};
  t["Sub"] = {BinaryKernel<BinOp::kSub>};
  t["Mul"] = {BinaryKernel<BinOp::kMul>};
  t["Div"] = {BinaryKernel<BinOp::kDiv>};
  t["Pow"] = {BinaryKernel<BinOp::kPow>};
  t["Mod"] = {BinaryKernel<BinOp::kMod>};
  t["PRelu"] = {BinaryKernel<BinOp::kPRelu>};
  t["Max"] = {VariadicKernel<BinOp::kMax>};
  t["Min"] = {VariadicKernel<BinOp::kMin>};
  t["Sum"] = {VariadicKernel<BinOp::kAdd>};
  t["Equal"] = {CompareKernel<CmpOp::kEqual>};
  t["Less"] = {CompareKernel<CmpOp::kLess>};
  t["Greater"] = {CompareKernel<CmpOp::kGreater>};
  t["LessOrEqual"] = {CompareKernel<CmpOp::kLessOrEqual>};
  t["GreaterOrEqual"] = {CompareKernel<CmpOp::kGreaterOrEqual>};
  t["And"] = {LogicKernel<LogicOp::kAnd>};
  t["Or"] = {LogicKernel<LogicOp::kOr>};
  t["Xor"] = {LogicKernel<LogicOp::kXor>};
  t["Not"] = {NotKernel};
  t["Where"] = {WhereKernel, 9};
  t["Relu"] = {Relu};
  t["Neg"] = {Neg};
  t["Abs"] = {Abs};
  t["Sign"] = {Sign, 9};
  t["Sigmoid"] = {Sigmoid};
  t["Tanh"] = {Tanh};
  t["Sqrt"] = {Sqrt};
  t["Exp"] = {Exp};
  t["Log"] = {Log};
  t["Erf"] = {Erf, 9};
  t["Reciprocal"] = {Reciprocal};
  t["Floor"] = {Floor};
  t["Ceil"] = {Ceil};
  t["Round"] = {Round, 11};
  t["Softsign"] = {Softsign};
  t["Softplus"] = {Softplus};
  t["LeakyRelu"] = {LeakyRelu};
  t["Elu"] = {Elu};
  t["Selu"] = {Selu};
  t["HardSigmoid"] = {HardSigmoid};
  t["HardSwish"] = {HardSwish, 14};
  t["Shrink"] = {Shrink, 9};
  t["Gelu"] = {Gelu, 20};
  t["Clip"] = {Clip, 6};
  t["Identity"] = {Identity};
  t["Dropout"] = {Dropout};
  t["Cast"] = {Cast, 6};
}

}  // namespace modelpress::runtime
