// MaxPool, AveragePool and the global pools, for any number of spatial axes.
#include <algorithm>
#include <limits>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "runtime/conv_geometry.h"

namespace modelpress::runtime {
namespace {

enum class PoolKind { kMax, kAverage };

// The 2-D case as direct loops over the window, clipped to the image.
template <PoolKind kKind>
void Pool2D(const float* x, int64_t planes, const SpatialGeometry& g, bool include_pad, float* y) {
  const int64_t h = g.in[0], w = g.in[1], oh = g.out[0], ow = g.out[1];
  const int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.stride[0], sw = g.stride[1];
  const int64_t dh = g.dilation[0], dw = g.dilation[1], ph = g.pad_begin[0], pw = g.pad_begin[1];
  const int64_t h_end = h + g.pad_end[0], w_end = w + g.pad_end[1];  // ceil_mode windows count up to the end padding
  // One output from plane `src`, window rows from hs, columns from ws.
  auto one = [&](const float* src, int64_t hs, int64_t ws) -> float {
    float acc = kKind == PoolKind::kMax ? -std::numeric_limits<float>::infinity() : 0.0f;
    if (hs >= 0 && hs + (kh - 1) * dh < h && ws >= 0 && ws + (kw - 1) * dw < w) {
      // The window lies inside the image: no checks, every position counts.
      const float* win = src + hs * w + ws;
      if (kKind == PoolKind::kMax && kh == 2 && kw == 2) {
        const float* lower = win + dh * w;
        // The same comparisons in the same order as the loop below.
        return std::max(std::max(std::max(std::max(acc, win[0]), win[dw]), lower[0]), lower[dw]);
      }
      for (int64_t a = 0; a < kh; ++a) {
        for (int64_t e = 0; e < kw; ++e) {
          const float v = win[a * dh * w + e * dw];
          acc = kKind == PoolKind::kMax ? std::max(acc, v) : acc + v;
        }
      }
      return kKind == PoolKind::kMax ? acc : acc / static_cast<float>(kh * kw);
    }
    int64_t count = 0, rows_padded = 0, cols_padded = 0;
    for (int64_t a = 0; a < kh; ++a) {
      const int64_t r = hs + a * dh;
      if (r < h_end) ++rows_padded;
      if (r < 0 || r >= h) continue;
      const float* row = src + r * w;
      for (int64_t e = 0; e < kw; ++e) {
        const int64_t q = ws + e * dw;
        if (q < 0 || q >= w) continue;
        ++count;
        if (kKind == PoolKind::kMax) {
          acc = std::max(acc, row[q]);
        } else {
          acc += row[q];
        }
      }
    }
    if (kKind == PoolKind::kMax) return acc;
    for (int64_t e = 0; e < kw; ++e) cols_padded += ws + e * dw < w_end ? 1 : 0;
    const int64_t divisor = include_pad ? rows_padded * cols_padded : count;
    return divisor > 0 ? acc / static_cast<float>(divisor) : 0.0f;
  };
  const bool max2x2 = kKind == PoolKind::kMax && kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1;
  // Outputs [j_lo, j_hi) of a row have 2x2 windows inside the image's columns.
  const int64_t j_lo = std::min(ow, (pw + 1) / 2);
  const int64_t j_hi = w - 2 + pw < 0 ? j_lo : std::max(j_lo, std::min(ow, (w - 2 + pw) / 2 + 1));
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x + p * h * w;
    float* dst = y + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i, dst += ow) {
      const int64_t hs = i * sh - ph;
      int64_t j = 0;
#if defined(__x86_64__)
      if (max2x2 && hs >= 0 && hs + 1 < h) {
        // Four outputs at a time: max(v, acc) keeps acc for a NaN v, as
        // std::max(acc, v) does, so the result is the same.
        for (; j < j_lo; ++j) dst[j] = one(src, hs, j * 2 - pw);
        const float* r0 = src + hs * w;
        const float* r1 = r0 + w;
        for (; j + 4 <= j_hi; j += 4) {
          const int64_t ws = j * 2 - pw;
          const __m128 a0 = _mm_loadu_ps(r0 + ws), b0 = _mm_loadu_ps(r0 + ws + 4);
          const __m128 a1 = _mm_loadu_ps(r1 + ws), b1 = _mm_loadu_ps(r1 + ws + 4);
          __m128 acc = _mm_set1_ps(-std::numeric_limits<float>::infinity());
          acc = _mm_max_ps(_mm_shuffle_ps(a0, b0, _MM_SHUFFLE(2, 0, 2, 0)), acc);
          acc = _mm_max_ps(_mm_shuffle_ps(a0, b0, _MM_SHUFFLE(3, 1, 3, 1)), acc);
          acc = _mm_max_ps(_mm_shuffle_ps(a1, b1, _MM_SHUFFLE(2, 0, 2, 0)), acc);
          acc = _mm_max_ps(_mm_shuffle_ps(a1, b1, _MM_SHUFFLE(3, 1, 3, 1)), acc);
          _mm_storeu_ps(dst + j, acc);
        }
      }
#endif
      for (; j < ow; ++j) dst[j] = one(src, hs, j * sw - pw);
    }
  }
}

template <PoolKind kKind>
Status Pool(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kFloat32) return Unsupported("pooling is implemented for float32 only, got " + Describe(*x));
  if (x->rank() < 3) return InvalidArgument("X must be [N, C, spatial...], got " + Describe(*x));
  const auto kernel = c.Ints("kernel_shape");
  if (!kernel) return InvalidArgument("attribute kernel_shape is required");
  if (c.wants(1)) return Unsupported("the Indices output of MaxPool is not supported");
  if (kKind == PoolKind::kMax && c.Int("storage_order", 0) != 0) return Unsupported("storage_order=1 is not supported");
  const std::vector<int64_t> in(x->shape().begin() + 2, x->shape().end());
  MP_ASSIGN_OR_RETURN(SpatialGeometry g, ResolveGeometry(c, in, *kernel, c.Int("ceil_mode", 0) != 0));
  if (kKind == PoolKind::kAverage && c.Attr("dilations") != nullptr) {
    for (int64_t d : g.dilation) {
      if (d != 1) return Unsupported("AveragePool with dilations is not supported");
    }
  }
  const bool include_pad = c.Int("count_include_pad", 0) != 0;
  std::vector<int64_t> out_shape = {x->shape()[0], x->shape()[1]};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Uninitialized(DType::kFloat32, out_shape));
  const int k = g.rank();
  const int64_t planes = x->shape()[0] * x->shape()[1], in_prod = Product(in), out_prod = Product(g.out);
  if (k == 2) {
    Pool2D<kKind>(x->data<float>(), planes, g, include_pad, y.mutable_data<float>());
    c.set_output(0, std::move(y));
    return Status::Ok();
  }
  const int64_t kprod = Product(g.kernel);
  std::vector<int64_t> o(k), start(k);
  // Kernel positions decoded once: kidx[kr * k + d], pre-multiplied by the dilation.
  std::vector<int64_t> kidx(static_cast<size_t>(kprod * k));
  for (int64_t kr = 0; kr < kprod; ++kr) {
    for (int64_t rem = kr, d = k - 1; d >= 0; --d) {
      kidx[kr * k + d] = (rem % g.kernel[d]) * g.dilation[d];
      rem /= g.kernel[d];
    }
  }
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x->data<float>() + p * in_prod;
    float* dst = y.mutable_data<float>() + p * out_prod;
    for (int64_t q = 0; q < out_prod; ++q) {
      for (int64_t rem = q, d = k - 1; d >= 0; --d) {
        o[d] = rem % g.out[d];
        rem /= g.out[d];
        start[d] = o[d] * g.stride[d] - g.pad_begin[d];
      }
      float acc = kKind == PoolKind::kMax ? -std::numeric_limits<float>::infinity() : 0.0f;
      int64_t count = 0, padded_count = 0;
      for (int64_t kr = 0; kr < kprod; ++kr) {
        int64_t off = 0;
        bool inside = true, in_padded = true;
        for (int d = 0; d < k; ++d) {
          const int64_t i = start[d] + kidx[kr * k + d];
          inside = inside && i >= 0 && i < in[d];
          // Windows that ceil_mode lets run past the end padding count only up to it.
          in_padded = in_padded && i < in[d] + g.pad_end[d];
          off = off * in[d] + i;
        }
        if (in_padded) ++padded_count;
        if (!inside) continue;
        ++count;
        if (kKind == PoolKind::kMax) {
          acc = std::max(acc, src[off]);
        } else {
          acc += src[off];
        }
      }
      if (kKind == PoolKind::kMax) {
        dst[q] = acc;
      } else {
        const int64_t divisor = include_pad ? padded_count : count;
        dst[q] = divisor > 0 ? acc / static_cast<float>(divisor) : 0.0f;
      }
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

template <PoolKind kKind>
Status GlobalPool(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  if (x->dtype() != DType::kFloat32) return Unsupported("pooling is implemented for float32 only, got " + Describe(*x));
  if (x->rank() < 2) return InvalidArgument("X must be [N, C, spatial...], got " + Describe(*x));
  std::vector<int64_t> out_shape(x->shape().size(), 1);
  out_shape[0] = x->shape()[0];
  out_shape[1] = x->shape()[1];
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Uninitialized(DType::kFloat32, out_shape));
  const int64_t planes = out_shape[0] * out_shape[1], size = Product(x->shape(), 2);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x->data<float>() + p * size;
    if (kKind == PoolKind::kMax) {
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < size; ++i) m = std::max(m, src[i]);
      y.mutable_data<float>()[p] = m;
    } else {
      // Summed in double: large planes lose no precision.
      double s = 0;
      for (int64_t i = 0; i < size; ++i) s += src[i];
      y.mutable_data<float>()[p] = size > 0 ? static_cast<float>(s / static_cast<double>(size)) : 0.0f;
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace

void RegisterPoolKernels(KernelTable& t) {
  t["MaxPool"] = {Pool<PoolKind::kMax>};
  t["AveragePool"] = {Pool<PoolKind::kAverage>};
  t["GlobalAveragePool"] = {GlobalPool<PoolKind::kAverage>};
  t["GlobalMaxPool"] = {GlobalPool<PoolKind::kMax>};
}

}  // namespace modelpress::runtime
