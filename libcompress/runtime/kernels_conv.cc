// Conv and ConvTranspose for any number of spatial axes: im2col (or its
// adjoint) plus one GEMM per image and group (Sgemm for Conv, Eigen for
// ConvTranspose).
#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <memory>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "runtime/broadcast.h"
#include "runtime/conv_geometry.h"
#include "runtime/gemm.h"

namespace modelpress::runtime {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Result<SpatialGeometry> ResolveGeometry(const KernelContext& c, std::vector<int64_t> in, std::vector<int64_t> kernel,
                                        bool ceil_mode) {
  const size_t k = in.size();
  SpatialGeometry g;
  g.in = std::move(in);
  g.kernel = std::move(kernel);
  g.stride = c.Ints("strides").value_or(std::vector<int64_t>(k, 1));
  g.dilation = c.Ints("dilations").value_or(std::vector<int64_t>(k, 1));
  const auto pads = c.Ints("pads").value_or(std::vector<int64_t>(2 * k, 0));
  if (g.kernel.size() != k || g.stride.size() != k || g.dilation.size() != k || pads.size() != 2 * k) {
    return InvalidArgument("kernel_shape, strides, dilations or pads do not match " + std::to_string(k) +
                           " spatial axes");
  }
  for (size_t d = 0; d < k; ++d) {
    if (g.stride[d] < 1 || g.dilation[d] < 1 || g.kernel[d] < 1 || pads[d] < 0 || pads[d + k] < 0) {
      return InvalidArgument("strides, dilations and kernel dims must be positive and pads non-negative");
    }
  }
  g.pad_begin.assign(pads.begin(), pads.begin() + k);
  g.pad_end.assign(pads.begin() + k, pads.end());
  const std::string auto_pad = c.String("auto_pad", "NOTSET");
  g.out.resize(k);
  for (size_t d = 0; d < k; ++d) {
    const int64_t span = g.dilation[d] * (g.kernel[d] - 1) + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g.out[d] = (g.in[d] + g.stride[d] - 1) / g.stride[d];
      const int64_t total = std::max<int64_t>(0, (g.out[d] - 1) * g.stride[d] + span - g.in[d]);
      g.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[d] = total - g.pad_begin[d];
      continue;
    }
    if (auto_pad == "VALID") {
      g.pad_begin[d] = g.pad_end[d] = 0;
    } else if (auto_pad != "NOTSET" && !auto_pad.empty()) {
      return InvalidArgument("auto_pad '" + auto_pad + "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
    const int64_t room = g.in[d] + g.pad_begin[d] + g.pad_end[d] - span;
    if (room < 0) {
      return InvalidArgument("kernel extent " + std::to_string(span) + " exceeds padded input " +
                             std::to_string(g.in[d] + g.pad_begin[d] + g.pad_end[d]) + " on spatial axis " +
                             std::to_string(d));
    }
    g.out[d] = (ceil_mode ? (room + g.stride[d] - 1) / g.stride[d] : room / g.stride[d]) + 1;
    // With ceil_mode the last window must still start inside the input or the
    // leading padding (PyTorch's and ONNX Runtime's rule).
    if (ceil_mode && (g.out[d] - 1) * g.stride[d] >= g.in[d] + g.pad_begin[d]) --g.out[d];
  }
  return g;
}

namespace {

// Visits every (row of col, run of output positions along the last axis):
// fn(row, col_run, image_offset_of_run_or_-1, base, lo, hi) where output
// position j of the run reads image element image_offset + j*stride + base
// when lo <= j < hi, and padding otherwise.
template <class Fn>
void ForEachRun(int64_t channels, const SpatialGeometry& g, Fn&& fn) {
  const int k = g.rank();
  const int64_t kprod = Product(g.kernel), in_prod = Product(g.in), out_prod = Product(g.out);
  const int64_t w_out = g.out[k - 1], w_in = g.in[k - 1], s = g.stride[k - 1];
  std::vector<int64_t> kidx(k), o(k);
  for (int64_t c = 0; c < channels; ++c) {
    for (int64_t kr = 0; kr < kprod; ++kr) {
      for (int64_t rem = kr, d = k - 1; d >= 0; --d) {
        kidx[d] = rem % g.kernel[d];
        rem /= g.kernel[d];
      }
      const int64_t row = c * kprod + kr;
      const int64_t base = kidx[k - 1] * g.dilation[k - 1] - g.pad_begin[k - 1];
      // Valid output positions along the last axis: 0 <= j*s + base < w_in.
      const int64_t lo = std::min(w_out, base >= 0 ? 0 : (-base + s - 1) / s);
      const int64_t hi = std::max(lo, std::min(w_out, base >= w_in ? 0 : (w_in - 1 - base) / s + 1));
      for (int64_t q = 0; q < out_prod / w_out; ++q) {
        int64_t off = 0;
        bool valid = true;
        for (int64_t rem = q, d = k - 2; d >= 0; --d) {
          o[d] = rem % g.out[d];
          rem /= g.out[d];
        }
        for (int d = 0; d < k - 1; ++d) {
          const int64_t i = o[d] * g.stride[d] - g.pad_begin[d] + kidx[d] * g.dilation[d];
          if (i < 0 || i >= g.in[d]) valid = false;
          off = off * g.in[d] + i;
        }
        fn(row, q * w_out, valid ? c * in_prod + off * w_in : -1, base, lo, hi);
      }
    }
  }
}

}  // namespace

namespace {

// The 2-D case as plain loops: one row of col per (channel, kernel row,
// kernel column), one run of output columns per output row.
void Im2Col2D(const float* x, int64_t channels, const SpatialGeometry& g, float* col, int64_t ld) {
  const int64_t h = g.in[0], w = g.in[1], oh = g.out[0], ow = g.out[1];
  const int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.stride[0], sw = g.stride[1];
  const int64_t dh = g.dilation[0], dw = g.dilation[1], ph = g.pad_begin[0], pw = g.pad_begin[1];
  for (int64_t c = 0; c < channels; ++c) {
    const float* plane = x + c * h * w;
    for (int64_t a = 0; a < kh; ++a) {
      for (int64_t e = 0; e < kw; ++e) {
        float* dst = col + ((c * kh + a) * kw + e) * ld;
        const int64_t base = e * dw - pw;
        // Output columns j reading inside the row: 0 <= j*sw + base < w.
        const int64_t lo = std::min(ow, base >= 0 ? 0 : (-base + sw - 1) / sw);
        const int64_t hi = std::max(lo, std::min(ow, base >= w ? 0 : (w - 1 - base) / sw + 1));
        for (int64_t i = 0; i < oh; ++i, dst += ow) {
          const int64_t r = i * sh - ph + a * dh;
          if (r < 0 || r >= h) {
            for (int64_t j = 0; j < ow; ++j) dst[j] = 0.0f;
            continue;
          }
          const float* row = plane + r * w;
          for (int64_t j = 0; j < lo; ++j) dst[j] = 0.0f;
          if (sw == 1) {
            for (int64_t j = lo; j < hi; ++j) dst[j] = row[j + base];
          } else {
            for (int64_t j = lo; j < hi; ++j) dst[j] = row[j * sw + base];
          }
          for (int64_t j = hi; j < ow; ++j) dst[j] = 0.0f;
        }
      }
    }
  }
}

}  // namespace

void Im2Col(const float* x, int64_t channels, const SpatialGeometry& g, float* col, int64_t ld) {
  const int k = g.rank();
  if (k == 2) {
    Im2Col2D(x, channels, g, col, ld == 0 ? Product(g.out) : ld);
    return;
  }
  const int64_t w_out = g.out[k - 1], s = g.stride[k - 1];
  if (ld == 0) ld = Product(g.out);
  ForEachRun(channels, g, [&](int64_t row, int64_t pos, int64_t off, int64_t base, int64_t lo, int64_t hi) {
    float* dst = col + row * ld + pos;
    if (off < 0) {
      std::fill_n(dst, w_out, 0.0f);
      return;
    }
    std::fill_n(dst, lo, 0.0f);
    std::fill(dst + hi, dst + w_out, 0.0f);
    if (hi == lo) return;
    // Pointers are formed only inside the image (base may be negative).
    const float* src = x + (off + base + lo * s);
    if (s == 1) {
      std::memcpy(dst + lo, src, static_cast<size_t>(hi - lo) * sizeof(float));
    } else {
      for (int64_t j = lo; j < hi; ++j) dst[j] = src[(j - lo) * s];
    }
  });
}

void Col2Im(const float* col, int64_t channels, const SpatialGeometry& g, float* x) {
  const int k = g.rank();
  const int64_t out_prod = Product(g.out), s = g.stride[k - 1];
  ForEachRun(channels, g, [&](int64_t row, int64_t pos, int64_t off, int64_t base, int64_t lo, int64_t hi) {
    if (off < 0 || hi == lo) return;
    const float* src = col + row * out_prod + pos;
    float* dst = x + (off + base + lo * s);
    for (int64_t j = lo; j < hi; ++j) dst[(j - lo) * s] += src[j];
  });
}

namespace {

// d[t] = s[t * stride] for t < len. Short runs are the norm here, where a
// memcpy call costs more than the copy; the empty asm statements keep the
// compiler from turning these loops into memcpy calls.
inline void CopyRun(const float* s, int64_t stride, int64_t len, float* d) {
  int64_t t = 0;
#if defined(__x86_64__)
  if (stride == 1) {
    for (; t + 4 <= len; t += 4) {
      _mm_storeu_ps(d + t, _mm_loadu_ps(s + t));
      __asm__ volatile("");
    }
  }
#endif
  for (; t < len; ++t) {
    d[t] = s[t * stride];
    __asm__ volatile("");
  }
}

// 2-D Conv for the AVX2 GEMM: each image is copied into a zero-bordered
// buffer, from which im2col writes straight into the GEMM's packed panel
// layout with no bounds checks (column q of panel P is output position
// 16P + q; rows are (channel, kernel row, kernel column)).
void ConvPacked2D(const Tensor& x, const float* wt, const float* bias, bool relu, int64_t group, int64_t m,
                  const SpatialGeometry& g, float* y) {
  const int64_t n = x.shape()[0], ch = x.shape()[1], cg = ch / group, mg = m / group;
  const int64_t h = g.in[0], w = g.in[1], oh = g.out[0], ow = g.out[1];
  const int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.stride[0], sw = g.stride[1];
  const int64_t dh = g.dilation[0], dw = g.dilation[1], ph = g.pad_begin[0], pw = g.pad_begin[1];
  // The padded image: every tap of every output position falls inside it.
  const int64_t hp = std::max(h + ph, (oh - 1) * sh + (kh - 1) * dh + 1);
  const int64_t wp = std::max(w + pw, (ow - 1) * sw + (kw - 1) * dw + 1);
  const int64_t out_prod = oh * ow, rows = cg * kh * kw, panels = (out_prod + kGemmPanel - 1) / kGemmPanel;
  std::vector<float> padded(static_cast<size_t>(cg * hp * wp), 0.0f);
  std::unique_ptr<float[]> packed(new float[static_cast<size_t>(panels * rows * kGemmPanel)]);
  std::vector<float> wpack(static_cast<size_t>(group * SgemmPackedASize(mg, rows)));
  for (int64_t grp = 0; grp < group; ++grp) {
    SgemmPackA(mg, rows, wt + grp * mg * rows, rows, wpack.data() + grp * SgemmPackedASize(mg, rows));
  }
  std::vector<int64_t> tap(static_cast<size_t>(rows));
  for (int64_t c = 0; c < cg; ++c) {
    for (int64_t a = 0; a < kh; ++a) {
      for (int64_t e = 0; e < kw; ++e) tap[(c * kh + a) * kw + e] = (c * hp + a * dh) * wp + e * dw;
    }
  }
  // Each panel as runs of output positions along one output row: position
  // q + t of the panel reads padded element off + t * sw.
  struct Run {
    int64_t q, len, off;
  };
  std::vector<std::vector<Run>> runs(static_cast<size_t>(panels));
  for (int64_t p = 0; p < panels * kGemmPanel; ++p) {
    const int64_t pos = std::min(p, out_prod - 1);  // padding columns repeat the last position
    const int64_t off = (pos / ow) * sh * wp + (pos % ow) * sw;
    auto& r = runs[static_cast<size_t>(p / kGemmPanel)];
    const int64_t q = p % kGemmPanel;
    if (!r.empty() && p < out_prod && r.back().off + r.back().len * sw == off && r.back().q + r.back().len == q &&
        pos % ow != 0) {
      ++r.back().len;
    } else {
      r.push_back({q, 1, off});
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t grp = 0; grp < group; ++grp) {
      const float* src = x.data<float>() + (i * ch + grp * cg) * h * w;
      for (int64_t c = 0; c < cg; ++c) {
        for (int64_t r = 0; r < h; ++r) {
          CopyRun(src + (c * h + r) * w, 1, w, padded.data() + (c * hp + r + ph) * wp + pw);
        }
      }
      for (int64_t panel = 0; panel < panels; ++panel) {
        float* const panel_dst = packed.get() + panel * rows * kGemmPanel;
        // Run by run, then row by row: the run's length stays in a register
        // (the SSE stores may alias anything, so a loaded length would be reloaded).
        for (const Run& run : runs[panel]) {
          const int64_t len = run.len;
          const float* const s0 = padded.data() + run.off;
          float* d = panel_dst + run.q;
#if defined(__x86_64__)
          if (sw == 1 && (len == 8 || len == 16)) {  // the common runs, as straight SSE moves
            for (int64_t r = 0; r < rows; ++r, d += kGemmPanel) {
              const float* s = s0 + tap[r];
              _mm_storeu_ps(d, _mm_loadu_ps(s));
              _mm_storeu_ps(d + 4, _mm_loadu_ps(s + 4));
              if (len == 16) {
                _mm_storeu_ps(d + 8, _mm_loadu_ps(s + 8));
                _mm_storeu_ps(d + 12, _mm_loadu_ps(s + 12));
              }
            }
            continue;
          }
#endif
          for (int64_t r = 0; r < rows; ++r, d += kGemmPanel) CopyRun(s0 + tap[r], sw, len, d);
        }
      }
      const float* group_bias = bias != nullptr ? bias + grp * mg : nullptr;
      SgemmPackedB(mg, out_prod, rows, nullptr, 0, packed.get(), y + (i * m + grp * mg) * out_prod, out_prod,
                   {group_bias, relu}, wpack.data() + grp * SgemmPackedASize(mg, rows));
    }
  }
}

Status Conv(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* w, c.Required(1));
  const Tensor* b = c.input(2);
  if (x->dtype() != DType::kFloat32 || w->dtype() != DType::kFloat32) {
    return Unsupported("Conv is implemented for float32 only, got " + Describe(*x) + " and " + Describe(*w));
  }
  if (x->rank() < 3 || w->rank() != x->rank()) {
    return InvalidArgument("X must be [N, C, spatial...] and W of the same rank, got " + Describe(*x) + " and " +
                           Describe(*w));
  }
  const int64_t group = c.Int("group", 1);
  const int64_t n = x->shape()[0], ch = x->shape()[1], m = w->shape()[0], cg = w->shape()[1];
  if (group < 1 || ch != cg * group || m % group != 0) {
    return InvalidArgument("channels do not match: X has " + std::to_string(ch) + ", W " + ShapeToString(w->shape()) +
                           " with group " + std::to_string(group));
  }
  if (b != nullptr && (b->dtype() != DType::kFloat32 || b->size() != m)) {
    return InvalidArgument("B must be float32 [" + std::to_string(m) + "], got " + Describe(*b));
  }
  std::vector<int64_t> in(x->shape().begin() + 2, x->shape().end());
  std::vector<int64_t> kernel(w->shape().begin() + 2, w->shape().end());
  if (auto ks = c.Ints("kernel_shape"); ks && *ks != kernel) {
    return InvalidArgument("kernel_shape " + ShapeToString(*ks) + " differs from W " + ShapeToString(w->shape()));
  }
  MP_ASSIGN_OR_RETURN(SpatialGeometry g, ResolveGeometry(c, in, kernel));
  std::vector<int64_t> out_shape = {n, m};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Uninitialized(DType::kFloat32, out_shape));

  const int64_t mg = m / group, kprod = Product(kernel), in_prod = Product(in), out_prod = Product(g.out);
  const int64_t rows = cg * kprod;
  bool pointwise = kprod == 1;
  for (int d = 0; d < g.rank(); ++d) {
    pointwise = pointwise && g.stride[d] == 1 && g.pad_begin[d] == 0 && g.pad_end[d] == 0;
  }
  const float* bias = b != nullptr ? b->data<float>() : nullptr;
  const bool relu = c.fused_relu();
  float* yd = y.mutable_data<float>();
  // Small images (late layers, tiny models) make small GEMMs: put several
  // images side by side in one im2col matrix [rows, images * out] and run one
  // GEMM, bounded to ~16 MB of columns. The AVX2 kernel works on 16 columns
  // at a time and handles one image alone well when its output size is a
  // multiple of 16.
  const bool batch_images = SgemmUsesAvx2() ? out_prod < 1024 && out_prod % 16 != 0 : out_prod < 1024;
  if (group == 1 && n > 1 && batch_images) {
    const int64_t chunk = std::clamp<int64_t>((int64_t{1} << 22) / std::max<int64_t>(rows * out_prod, 1), 1, n);
    // Scratch that every use overwrites: left uninitialised.
    std::unique_ptr<float[]> cols(new float[static_cast<size_t>(rows * chunk * out_prod)]);
    std::unique_ptr<float[]> tmp(new float[static_cast<size_t>(m * chunk * out_prod)]);
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
      const int64_t nb = std::min(chunk, n - i0), ld = nb * out_prod;
      for (int64_t j = 0; j < nb; ++j) {
        Im2Col(x->data<float>() + (i0 + j) * ch * in_prod, ch, g, cols.get() + j * out_prod, ld);
      }
      Sgemm(m, ld, rows, w->data<float>(), rows, cols.get(), ld, tmp.get(), ld, {bias, relu});
      for (int64_t j = 0; j < nb; ++j) {
        for (int64_t o = 0; o < m; ++o) {
          std::memcpy(yd + ((i0 + j) * m + o) * out_prod, tmp.get() + o * ld + j * out_prod,
                      static_cast<size_t>(out_prod) * sizeof(float));
        }
      }
    }
    c.set_output(0, std::move(y));
    return Status::Ok();
  }
  if (!pointwise && g.rank() == 2 && SgemmUsesAvx2()) {
    ConvPacked2D(*x, w->data<float>(), bias, relu, group, m, g, yd);
    c.set_output(0, std::move(y));
    return Status::Ok();
  }
  std::unique_ptr<float[]> col(new float[pointwise ? 1 : static_cast<size_t>(rows * out_prod)]);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t grp = 0; grp < group; ++grp) {
      const float* xg = x->data<float>() + (i * ch + grp * cg) * in_prod;
      const float* cols = xg;  // a 1x1, stride-1, unpadded Conv reads the image as it is
      if (!pointwise) {
        Im2Col(xg, cg, g, col.get());
        cols = col.get();
      }
      Sgemm(mg, out_prod, rows, w->data<float>() + grp * mg * rows, rows, cols, out_prod,
            yd + (i * m + grp * mg) * out_prod, out_prod, {bias != nullptr ? bias + grp * mg : nullptr, relu});
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

Status ConvTranspose(KernelContext& c) {
  MP_ASSIGN_OR_RETURN(const Tensor* x, c.Required(0));
  MP_ASSIGN_OR_RETURN(const Tensor* w, c.Required(1));
  const Tensor* b = c.input(2);
  if (x->dtype() != DType::kFloat32 || w->dtype() != DType::kFloat32) {
    return Unsupported("ConvTranspose is implemented for float32 only, got " + Describe(*x));
  }
  if (x->rank() < 3 || w->rank() != x->rank()) {
    return InvalidArgument("X must be [N, C, spatial...] and W of the same rank, got " + Describe(*x) + " and " +
                           Describe(*w));
  }
  const int64_t group = c.Int("group", 1);
  const int64_t n = x->shape()[0], ch = x->shape()[1], mg = w->shape()[1];
  if (group < 1 || w->shape()[0] != ch || ch % group != 0) {
    return InvalidArgument("channels do not match: X has " + std::to_string(ch) + ", W " + ShapeToString(w->shape()) +
                           " with group " + std::to_string(group));
  }
  const int64_t m = mg * group, cg = ch / group;
  if (b != nullptr && (b->dtype() != DType::kFloat32 || b->size() != m)) {
    return InvalidArgument("B must be float32 [" + std::to_string(m) + "], got " + Describe(*b));
  }
  const size_t k = static_cast<size_t>(x->rank() - 2);
  // The geometry of the matching forward Conv: its input is our output.
  SpatialGeometry g;
  g.out.assign(x->shape().begin() + 2, x->shape().end());
  g.kernel.assign(w->shape().begin() + 2, w->shape().end());
  g.stride = c.Ints("strides").value_or(std::vector<int64_t>(k, 1));
  g.dilation = c.Ints("dilations").value_or(std::vector<int64_t>(k, 1));
  auto pads = c.Ints("pads").value_or(std::vector<int64_t>(2 * k, 0));
  const auto out_pad = c.Ints("output_padding").value_or(std::vector<int64_t>(k, 0));
  const auto out_shape_attr = c.Ints("output_shape");
  const std::string auto_pad = c.String("auto_pad", "NOTSET");
  if (g.stride.size() != k || g.dilation.size() != k || pads.size() != 2 * k || out_pad.size() != k ||
      (out_shape_attr && out_shape_attr->size() != k)) {
    return InvalidArgument("strides, dilations, pads, output_padding or output_shape do not match the spatial axes");
  }
  g.in.resize(k);
  g.pad_begin.resize(k);
  g.pad_end.resize(k);
  for (size_t d = 0; d < k; ++d) {
    if (g.stride[d] < 1 || g.dilation[d] < 1) return InvalidArgument("strides and dilations must be positive");
    const int64_t full = g.stride[d] * (g.out[d] - 1) + out_pad[d] + (g.kernel[d] - 1) * g.dilation[d] + 1;
    if (out_shape_attr || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t target = out_shape_attr ? (*out_shape_attr)[d] : g.out[d] * g.stride[d];
      const int64_t total = full - target;
      if (total < 0) return InvalidArgument("output_shape is larger than the transposed convolution produces");
      g.pad_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.pad_end[d] = total - g.pad_begin[d];
    } else {
      g.pad_begin[d] = auto_pad == "VALID" ? 0 : pads[d];
      g.pad_end[d] = auto_pad == "VALID" ? 0 : pads[d + k];
    }
    g.in[d] = full - g.pad_begin[d] - g.pad_end[d];
    if (g.in[d] < 1) return InvalidArgument("the output would be empty on spatial axis " + std::to_string(d));
  }
  std::vector<int64_t> y_shape = {n, m};
  y_shape.insert(y_shape.end(), g.in.begin(), g.in.end());
  MP_ASSIGN_OR_RETURN(Tensor y, Tensor::Zeros(DType::kFloat32, y_shape));
  const int64_t kprod = Product(g.kernel), in_prod = Product(g.out), y_prod = Product(g.in), rows = mg * kprod;
  // Output padding may extend the output past what any input position reaches;
  // Col2Im only writes what the forward geometry covers, which is exact.
  std::vector<float> col(static_cast<size_t>(rows * in_prod));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t grp = 0; grp < group; ++grp) {
      Eigen::Map<const RowMatF> wg(w->data<float>() + grp * cg * rows, cg, rows);
      Eigen::Map<const RowMatF> xg(x->data<float>() + (i * ch + grp * cg) * in_prod, cg, in_prod);
      Eigen::Map<RowMatF>(col.data(), rows, in_prod).noalias() = wg.transpose() * xg;
      float* yg = y.mutable_data<float>() + (i * m + grp * mg) * y_prod;
      Col2Im(col.data(), mg, g, yg);
      if (b != nullptr) {
        for (int64_t o = 0; o < mg; ++o) {
          const float bias = b->data<float>()[grp * mg + o];
          for (int64_t p = 0; p < y_prod; ++p) yg[o * y_prod + p] += bias;
        }
      }
    }
  }
  c.set_output(0, std::move(y));
  return Status::Ok();
}

}  // namespace

void RegisterConvKernels(KernelTable& t) {
  t["Conv"] = {Conv};
  t["ConvTranspose"] = {ConvTranspose};
}

}  // namespace modelpress::runtime
