// Scale/zero-point math and weight quantization: the scalar reference every
// other part of quant/ builds on.
#include <algorithm>
#include <cmath>
#include <limits>

#include "modelpress/parallel.h"
#include "modelpress/quant.h"
#include "modelpress/sparsity.h"

namespace modelpress::quant {

std::string_view SchemeName(Scheme s) {
  switch (s) {
    case Scheme::kUint8Asymmetric: return "uint8";
    case Scheme::kInt8Symmetric: return "int8";
    case Scheme::kInt7Symmetric: return "int7";
  }
  return "?";
}

QRange RangeOf(Scheme s) {
  // int8 symmetric drops -128 so that +r and -r quantize to +q and -q (what
  // ONNX Runtime's tool and TensorRT use for symmetric tensors).
  switch (s) {
    case Scheme::kUint8Asymmetric: return {0, 255};
    case Scheme::kInt8Symmetric: return {-127, 127};
    case Scheme::kInt7Symmetric: return {-63, 63};
  }
  return {0, 255};
}

QuantParams ComputeParams(float rmin_in, float rmax_in, Scheme scheme) {
  double rmin = std::isnan(rmin_in) ? 0.0 : std::min<double>(rmin_in, 0.0);
  double rmax = std::isnan(rmax_in) ? 0.0 : std::max<double>(rmax_in, 0.0);
  const QRange q = RangeOf(scheme);
  const bool symmetric = scheme != Scheme::kUint8Asymmetric;
  if (symmetric) {
    const double absmax = std::max(-rmin, rmax);
    rmin = -absmax;
    rmax = absmax;
  }
  // In double, as ONNX Runtime's tool computes it, then stored as float.
  const double scale = (rmax - rmin) / static_cast<double>(q.qmax - q.qmin);
  if (!(scale >= static_cast<double>(std::numeric_limits<float>::min())) || !std::isfinite(scale)) {
    // An all-zero range (or one too small for a normal float scale): any
    // scale represents it; 1 keeps DequantizeLinear well defined.
    return {1.0f, 0};
  }
  QuantParams p;
  p.scale = static_cast<float>(scale);
  if (symmetric) {
    p.zero_point = 0;
  } else {
    const double zp = std::nearbyint(static_cast<double>(q.qmin) - rmin / scale);
    p.zero_point = static_cast<int32_t>(std::clamp(zp, static_cast<double>(q.qmin), static_cast<double>(q.qmax)));
  }
  return p;
}

int32_t QuantizeValue(float x, const QuantParams& p, Scheme scheme) {
  const QRange q = RangeOf(scheme);
  // x / scale in float and rounding half to even, as ONNX QuantizeLinear
  // (and ONNX Runtime's kernel) computes it; saturate afterwards.
  const float r = std::nearbyint(x / p.scale);
  const double v = static_cast<double>(r) + p.zero_point;
  if (std::isnan(v)) return p.zero_point;
  return static_cast<int32_t>(std::clamp(v, static_cast<double>(q.qmin), static_cast<double>(q.qmax)));
}

double SqnrDb(double signal_energy, double noise_energy) {
  if (noise_energy <= 0) return signal_energy > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  if (signal_energy <= 0) return 0.0;
  return 10.0 * std::log10(signal_energy / noise_energy);
}

Result<QuantizedWeight> QuantizeWeight(const TensorView& w, int axis, int threads, Scheme scheme) {
  if (scheme == Scheme::kUint8Asymmetric) return InvalidArgument("weights are quantized with a symmetric scheme");
  if (!IsFloatingPoint(w.dtype())) {
    return InvalidArgument("cannot quantize a weight of type " + DTypeName(w.dtype()) + "; it must be floating point");
  }
  AxisSplit split{1, w.size(), 1};
  if (axis >= 0) {
    MP_ASSIGN_OR_RETURN(split, SplitAtAxis(w.shape(), axis));
  }
  QuantizedWeight out;
  out.axis = axis;
  out.values.resize(static_cast<size_t>(w.size()));
  const int64_t channels = axis >= 0 ? split.length : 1;
  out.scales.resize(static_cast<size_t>(channels));
  std::vector<double> signal(static_cast<size_t>(channels)), noise(static_cast<size_t>(channels));
  std::vector<int64_t> zb(static_cast<size_t>(channels)), za(static_cast<size_t>(channels));
  const bool f32 = w.dtype() == DType::kFloat32 && w.contiguous();
  const float* pf = f32 ? w.span<float>().data() : nullptr;
  auto at = [&](int64_t i) { return pf ? pf[i] : static_cast<float>(w.AsDouble(i)); };
  // Element (o, c, i) of the channel split; per tensor is one channel of everything.
  auto for_channel = [&](int64_t c, auto&& fn) {
    if (axis < 0) {
      for (int64_t i = 0; i < w.size(); ++i) fn(i);
      return;
    }
    for (int64_t o = 0; o < split.outer; ++o) {
      const int64_t base = (o * split.length + c) * split.inner;
      for (int64_t i = 0; i < split.inner; ++i) fn(base + i);
    }
  };
  ParallelFor(
      channels,
      [&](int64_t c) {
        float absmax = 0;
        for_channel(c, [&](int64_t i) {
          const float a = std::abs(at(i));
          if (a > absmax) absmax = a;  // NaN never compares greater
        });
        const QuantParams p = ComputeParams(-absmax, absmax, scheme);
        out.scales[c] = p.scale;
        double s = 0, n = 0;
        int64_t zeros_before = 0, zeros_after = 0;
        for_channel(c, [&](int64_t i) {
          const float x = at(i);
          const int32_t q = QuantizeValue(x, p, scheme);
          out.values[i] = static_cast<int8_t>(q);
          const double d = static_cast<double>(x) - static_cast<double>(DequantizeValue(q, p));
          s += static_cast<double>(x) * x;
          n += d * d;
          zeros_before += x == 0.0f;
          zeros_after += q == 0;
        });
        signal[c] = s;
        noise[c] = n;
        zb[c] = zeros_before;
        za[c] = zeros_after;
      },
      threads);
  for (int64_t c = 0; c < channels; ++c) {
    out.signal_energy += signal[c];
    out.noise_energy += noise[c];
    out.zeros_before += zb[c];
    out.zeros_after += za[c];
  }
  return out;
}

}  // namespace modelpress::quant
