// Gemm and MatMul on Eigen's GEMM (float Gemm on Sgemm). Tensors are C order, so every operand is
// mapped as a row-major matrix without copying.
#include <Eigen/Core>
#include <type_traits>

#include "runtime/broadcast.h"
#include "runtime/gemm.h"

namespace modelpress::runtime {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ConstMap = Eigen::Map<const RowMat<T>>;
template <class T>
using MutMap = Eigen::Map<RowMat<T>>;

template <class T>
Status GemmTyped(KernelContext& c, const Tensor& a, const Tensor& b, const Tensor* bias) {
  const bool ta = c.Int("transA", 0) != 0, tb = c.Int("transB", 0) != 0;
  const T alpha = static_cast<T>(c.Float("alpha", 1.0f)), beta = static_cast<T>(c.Float("beta", 1.0f));
  if (a.rank() != 2 || b.rank() != 2) return InvalidArgument("A and B must be 2-D, got " + Describe(a) + " and " + Describe(b));
  const int64_t m = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  const int64_t kb = tb ? b.shape()[1] : b.shape()[0], n = tb ? b.shape()[0] : b.shape()[1];
  if (k != kb) {
    return InvalidArgument("inner dimensions differ: " + Describe(a) + (ta ? " (transposed)" : "") + " times " +
                           Describe(b) + (tb ? " (transposed)" : ""));
  }
  if constexpr (std::is_same_v<T, float>) {
    // The common float case (alpha 1, A not transposed, C absent or a row of
    // n values) on Sgemm, with C and a following Relu in its epilogue.
    const bool row_c = bias != nullptr && bias->dtype() == a.dtype() && bias->size() == n &&
                       (bias->shape() == std::vector<int64_t>{n} || bias->shape() == std::vector<int64_t>{1, n});
    if (alpha == 1.0f && !ta && (bias == nullptr || beta == 0.0f || (beta == 1.0f && row_c))) {
      MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Uninitialized(a.dtype(), {m, n}));
      GemmEpilogue ep;
      ep.col_bias = bias != nullptr && beta != 0.0f ? bias->data<float>() : nullptr;
      ep.relu = c.fused_relu();
      Sgemm(m, n, k, a.data<float>(), k, b.data<float>(), b.shape()[1], y.mutable_data<float>(), n, ep, tb);
      c.set_output(0, std::move(y));
      return Status::Ok();
    }
  }
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(a.dtype(), {m, n}));
  MutMap<T> ym(y.mutable_data<T>(), m, n);
  if (bias != nullptr && beta != T(0)) {
    if (bias->dtype() != a.dtype()) return InvalidArgument("C must have A's type, got " + Describe(*bias));
    MP_ASSIGN_OR_RETURN(auto shape, BroadcastShapes(bias->shape(), {m, n}));
    if (shape != std::vector<int64_t>{m, n}) {
      return InvalidArgument("C " + ShapeToString(bias->shape()) + " does not broadcast to " + ShapeToString(shape));
    }
    const T* pc = bias->data<T>();
    T* py = y.mutable_data<T>();
    ForEachBroadcast<1>(shape, {&bias->shape()}, [&](int64_t o, const auto& off, int64_t len, const auto& step) {
      for (int64_t j = 0; j < len; ++j) py[o + j] = beta * pc[off[0] + j * step[0]];
    });
  }
  ConstMap<T> am(a.data<T>(), a.shape()[0], a.shape()[1]);
  ConstMap<T> bm(b.data<T>(), b.shape()[0], b.shape()[1]);
  if (!ta && !tb) {
    ym.noalias() += alpha * am * bm;
  } else if (!ta && tb) {
    ym.noalias() += alpha * am * bm.transpose();
  } else if (ta && !tb) {
    ym.noalias() += alpha * am.transpose() * bm;
  } else {
    ym.noalias() += alpha * am.transpose() * bm.transpose();
  }
  if (c.fused_relu()) ym = ym.unaryExpr([](T v) { return v > T(0) ? v : T(0); });  // as the Relu kernel
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status Gemm(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* a, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* b, c.Required(1));
  if (a->dtype() != b->dtype()) return InvalidArgument("A and B differ in type: " + Describe(*a) + ", " + Describe(*b));
  return DispatchFloat(a->dtype(), "Gemm", [&](auto tag) { return GemmTyped<decltype(tag)>(c, *a, *b, c.input(2)); });
}

template <class T>
Status MatMulTyped(KernelContext& c, const Tensor& a_in, const Tensor& b_in) {
  if (a_in.rank() == 0 || b_in.rank() == 0) return InvalidArgument("MatMul operands must not be scalars");
  // 1-D operands are promoted to matrices and the added dim is dropped from the result.
  std::vector<int64_t> as = a_in.shape(), bs = b_in.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t m = as[as.size() - 2], k = as.back(), kb = bs[bs.size() - 2], n = bs.back();
  if (k != kb) return InvalidArgument("inner dimensions differ: " + Describe(a_in) + " times " + Describe(b_in));
  const std::vector<int64_t> a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  MP_ASSIGN_OR_RETURN(auto batch, BroadcastShapes(a_batch, b_batch));
  std::vector<int64_t> out_shape = batch;
  if (!a_vec) out_shape.push_back(m);
  if (!b_vec) out_shape.push_back(n);
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(a_in.dtype(), out_shape));
  const T* pa = a_in.data<T>();
  const T* pb = b_in.data<T>();
  T* py = y.mutable_data<T>();
  const int64_t batches = Product(batch);
  if (Product(b_batch) == 1 && Product(a_batch) == batches) {
    // B is one matrix (a weight): all of A's rows in a single GEMM.
    MutMap<T>(py, batches * m, n).noalias() = ConstMap<T>(pa, batches * m, k) * ConstMap<T>(pb, k, n);
  } else {
    // Walk the broadcast batch dims, one GEMM per matrix pair.
    std::vector<int64_t> a_idx(batches), b_idx(batches);
    ForEachBroadcast<2>(batch, {&a_batch, &b_batch}, [&](int64_t o, const auto& off, int64_t len, const auto& step) {
      for (int64_t j = 0; j < len; ++j) {
        a_idx[o + j] = off[0] + j * step[0];
        b_idx[o + j] = off[1] + j * step[1];
      }
    });
    for (int64_t i = 0; i < batches; ++i) {
      MutMap<T>(py + i * m * n, m, n).noalias() =
          ConstMap<T>(pa + a_idx[i] * m * k, m, k) * ConstMap<T>(pb + b_idx[i] * k * n, k, n);
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status MatMul(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* a, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* b, c.Required(1));
  if (a->dtype() != b->dtype()) return InvalidArgument("A and B differ in type: " + Describe(*a) + ", " + Describe(*b));
  return DispatchFloat(a->dtype(), "MatMul", [&](auto tag) { return MatMulTyped<decltype(tag)>(c, *a, *b); });
}

}  // namespace

void RegisterMatMulKernels(KernelTable& t) {
  t["Gemm"] = {Gemm};
  t["MatMul"] = {MatMul};
}

}  // namespace modelpress::runtime
