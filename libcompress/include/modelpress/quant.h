// Post-training INT8 quantization in ONNX's QDQ form, as ONNX Runtime and
// TensorRT read it: scale/zero-point math, calibration observers that stream
// statistics batch by batch, planning (pure analysis) and the graph rewrite.
//
//   QuantPlan plan = PlanQuantization(model, options);           // what, pure
//   CalibrationTable t = Calibrate(model, plan.activations, data, options.calibration);
//   QuantReport r = ApplyQuantization(model, plan, &t, options);  // mutation
//
// or Quantize(model, options, data) for all three.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/runtime.h"
#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress::quant {

// How a tensor's real values map onto 8-bit integers.
enum class Scheme {
  kUint8Asymmetric,  // uint8 in [0, 255], zero point anywhere in it (activations by default)
  kInt8Symmetric,    // int8 in [-127, 127], zero point 0 (weights by default; activations for TensorRT)
  kInt7Symmetric,    // int8 storage in [-63, 63], zero point 0: "reduce range" weights for x86 CPUs without VNNI
};

std::string_view SchemeName(Scheme s);  // "uint8", "int8" or "int7"

// Integer range of a scheme: [0, 255], [-127, 127] (-128 is never used, so
// the range is symmetric around the zero point) or [-63, 63].
struct QRange {
  int32_t qmin = 0;    // smallest integer used
  int32_t qmax = 255;  // largest integer used
};
QRange RangeOf(Scheme s);

// One scale and zero point: real = (q - zero_point) * scale.
struct QuantParams {
  float scale = 1.0f;      // real units per integer step, > 0
  int32_t zero_point = 0;  // integer that represents real 0 exactly
};

// Parameters for real values in [rmin, rmax]. The range is first widened to
// include 0 (so 0 is exactly representable: zero padding and pruned weights
// stay exact); a symmetric scheme uses [-max|r|, max|r|]. Then
// scale = (rmax - rmin) / (qmax - qmin) (in double, stored as float) and
// zero_point = round_half_even(qmin - rmin / scale) clamped to [qmin, qmax]
// (0 for symmetric). A scale below the smallest normal float (an all-zero
// tensor) becomes 1 with zero point 0. NaN bounds are treated as 0.
QuantParams ComputeParams(float rmin, float rmax, Scheme scheme);

// saturate(round_half_even(x / scale) + zero_point) into the scheme's range,
// as ONNX's QuantizeLinear computes it (x / scale in float).
int32_t QuantizeValue(float x, const QuantParams& p, Scheme scheme);
inline float DequantizeValue(int32_t q, const QuantParams& p) {
  return static_cast<float>(q - p.zero_point) * p.scale;
}

// Signal-to-quantization-noise ratio in dB: 10 log10(sum x^2 / sum (x - x')^2).
// +infinity when there is no noise (and the signal is not empty or all zero);
// 0 when the signal itself is zero and the noise is not.
double SqnrDb(double signal_energy, double noise_energy);

// A float weight quantized to int8 symmetric, per channel along `axis` or per
// tensor (axis -1). Contract: exact zeros map to exactly 0, so a pruned
// (or 2:4) tensor keeps every zero.
struct QuantizedWeight {
  std::vector<int8_t> values;      // same element count and C order as the input
  std::vector<float> scales;       // one per channel, or one
  int axis = -1;                   // channel axis, -1 for per tensor
  double signal_energy = 0;        // sum of w^2
  double noise_energy = 0;         // sum of (w - dequantized w)^2
  int64_t zeros_before = 0;        // exact zeros of the float weight
  int64_t zeros_after = 0;         // zeros of the int8 weight (>= zeros_before)
};
// `weights` may be float32, float16, bfloat16 or float64. Channels are
// processed in parallel on up to `threads` threads (0: all cores). `scheme`
// must be symmetric (kInt8Symmetric or kInt7Symmetric).
Result<QuantizedWeight> QuantizeWeight(const TensorView& weights, int axis, int threads = 0,
                                       Scheme scheme = Scheme::kInt8Symmetric);
// QuantizeWeight writing the int8 values into `values` (weights.size()
// elements, e.g. the raw bytes of the output tensor) instead of
// QuantizedWeight::values, which stays empty.
Result<QuantizedWeight> QuantizeWeightInto(const TensorView& weights, int axis, std::span<int8_t> values, int threads = 0,
                                           Scheme scheme = Scheme::kInt8Symmetric);

// ---- Calibration ----

enum class CalibrationMethod {
  kMinMax,      // the observed minimum and maximum
  kPercentile,  // clip |x| at a percentile of its histogram
  kEntropy,     // clip |x| where the KL divergence of the 8-bit histogram is least (TensorRT's method)
};

std::string_view CalibrationMethodName(CalibrationMethod m);  // "minmax", "percentile", "entropy"

struct CalibrationOptions {
  CalibrationMethod method = CalibrationMethod::kMinMax;  // default minmax
  double percentile = 99.999;   // percent of |x| kept inside the range, in (0, 100] (default 99.999)
  int bins = 2048;              // histogram bins over [0, max |x|] (default 2048)
  int quantized_bins = 128;     // entropy: levels of the 8-bit candidate distribution (default 128, int8's half range)
  int64_t batch = 32;           // calibration samples per executor run when the batch dim is free (default 32)
};

// Statistics of one tensor, fed batch by batch. Memory is constant: the
// histogram of |x| (bins doubles) is rebinned by merging pairs of bins when a
// later batch exceeds its range, so bin edges stay aligned and nothing is
// re-read.
class RangeObserver {
 public:
  explicit RangeObserver(const CalibrationOptions& options = {});

  // Adds values. NaN is ignored; infinities are clipped out of the histogram
  // but counted, so minmax reports them (and the caller refuses them).
  void Observe(std::span<const float> values);

  // The calibrated range [rmin, rmax] for the method: minmax gives the
  // observed extremes; percentile and entropy give a threshold t on |x| and
  // the range [max(min, -t), min(max, t)].
  std::pair<float, float> Range() const;

  int64_t count() const { return count_; }
  float min() const { return min_; }
  float max() const { return max_; }
  // Histogram of |x|: bin i counts values in [i * width, (i + 1) * width).
  const std::vector<double>& histogram() const { return hist_; }
  double bin_width() const { return width_; }

 private:
  void Grow(double needed_max);

  CalibrationOptions options_;
  int64_t count_ = 0;
  float min_ = 0, max_ = 0;
  bool any_ = false;
  std::vector<double> hist_;  // empty for minmax
  double width_ = 0;          // 0 until a non-zero |x| is seen
  double zeros_ = 0;          // zeros seen before the range was known
};

// The smallest threshold t (an upper bin edge) such that at least `percentile`
// percent of the histogram's mass lies in [0, t). 0 for an empty histogram.
double PercentileThreshold(std::span<const double> histogram, double bin_width, double percentile);

// TensorRT's entropy calibration on a histogram of |x|: for every candidate
// i in [quantized_bins, bins], the reference distribution is the first i
// bins with the mass beyond folded into bin i-1, the candidate merges the
// first i bins into `quantized_bins` levels and spreads each level evenly
// over its non-empty bins; the threshold is i * bin_width for the i of least
// KL(reference || candidate). Returns the largest edge when there are fewer
// bins than levels.
double EntropyThreshold(std::span<const double> histogram, double bin_width, int quantized_bins);

// The calibrated range of one activation.
struct TensorRange {
  float rmin = 0;               // lower end of the range (<= 0 once params are computed)
  float rmax = 0;               // upper end
  float observed_min = 0;       // smallest value seen
  float observed_max = 0;       // largest value seen
  int64_t count = 0;            // values seen
};
using CalibrationTable = std::map<std::string, TensorRange>;

// Calibration inputs, produced one batch at a time so that no more than one
// batch is in memory.
struct CalibrationData {
  int64_t batches = 0;   // number of batches
  int64_t samples = 0;   // samples over all batches (for reports)
  std::string source;    // names the data in messages, e.g. the .npy file
  // The graph inputs of batch b (b < batches), in the executor's input order.
  std::function<Result<std::vector<runtime::Tensor>>(int64_t b)> batch;
};

// Batches over the first `samples` samples of `x` (0: all) for a model with
// one float32 input. Refuses (Corrupt, naming `name`, usually the file, and
// the model input) data of the wrong dtype or shape, and (InvalidArgument)
// fewer samples than asked or none. A fixed batch dim is honoured: samples
// run that many at a time and a last partial batch is dropped. `x` must
// outlive the result (batches borrow its bytes).
Result<CalibrationData> NpyCalibrationData(const Model& model, const NpyArray& x, const std::string& name,
                                           int64_t samples, int64_t batch);

// Runs the model on every batch and observes the named tensors (graph
// inputs or node outputs). Statistics stream: memory is the executor's live
// set plus one observer per tensor. Fails when a named tensor is never
// produced, is not float32, or holds non-finite values.
Result<CalibrationTable> Calibrate(const Model& model, const std::vector<std::string>& tensors,
                                   const CalibrationData& data, const CalibrationOptions& options);

// ---- Planning and rewriting ----

enum class QuantMode {
  kWeightOnly,  // int8 weights + DequantizeLinear; activations stay float
  kStatic,      // also QuantizeLinear/DequantizeLinear on the activations read by quantized ops, int32 bias
};

std::string_view QuantModeName(QuantMode m);  // "weight-only", "static"

struct QuantizeOptions {
  QuantMode mode = QuantMode::kWeightOnly;                   // default weight-only
  bool per_channel = true;                                   // weights per output channel (default true); needs opset 13
  std::vector<std::string> op_types = {"Conv", "ConvTranspose", "Gemm", "MatMul"};  // operators quantized (default all four)
  std::string exclude;                                       // ECMAScript regex on node or weight names left float ("" = none)
  Scheme activations = Scheme::kUint8Asymmetric;             // static: activation scheme (default uint8 asymmetric)
  bool quantize_bias = true;                                 // static: int32 bias for Conv/ConvTranspose/Gemm (default true)
  bool reduce_range = false;                                 // weights in [-63, 63] (7 bits): avoids int16 saturation in
                                                             // u8 x s8 kernels of x86 CPUs without VNNI (default false)
  CalibrationOptions calibration;                            // static: how ranges are found
  int threads = 0;                                           // weight quantization threads (0: all cores)
};

// One operator the plan quantizes.
struct PlannedNode {
  int node = -1;              // index in graph.node
  std::string name;           // node name (or its first output when unnamed)
  std::string op_type;        // Conv, ConvTranspose, Gemm or MatMul
  std::string activation;     // static: the activation input quantized ("" in weight-only mode)
  int activation_slot = 0;    // input slot of the activation
  std::string weight;         // the constant weight (input slot 1)
  int axis = -1;              // per-channel axis of the weight, -1 per tensor
  std::string bias;           // static: a 1-D float32 constant bias quantized to int32 ("" when none)
};

// An operator of a quantizable type left in float, and why.
struct SkippedNode {
  std::string name;    // node name (or first output)
  std::string op_type; // its type
  std::string reason;  // e.g. "excluded by --exclude", "weight is not a constant"
};

struct QuantPlan {
  std::vector<PlannedNode> nodes;        // in graph order
  std::vector<SkippedNode> skipped;      // candidates left float
  std::vector<std::string> activations;  // static: tensors to calibrate, in first-use order
  int64_t opset_before = 0;              // default-domain opset of the model
  int64_t opset_after = 0;               // opset the output will declare (raised to 13 for per-channel, 10 for DequantizeLinear)
  std::vector<std::string> notices;      // e.g. "opset raised from 11 to 13"
};

// Decides what to quantize; the model is not changed. Fails (Unsupported)
// on a model already quantized (QuantizeLinear/DequantizeLinear, QLinear* or
// *Integer ops, or integer linear weights) and on an opset that cannot be
// raised to what the QDQ form needs (an operator whose signature or meaning
// changed on the way, named with its node); InvalidArgument on a bad regex
// or an unknown op type. Nothing to quantize is success with an empty plan.
Result<QuantPlan> PlanQuantization(const Model& model, const QuantizeOptions& options);

// One quantized tensor in the report.
struct QuantTensorReport {
  std::string name;              // the original (float) tensor
  std::string kind;              // "weight", "bias" or "activation"
  std::string node;              // first quantized node reading it
  std::string dtype;             // "int8", "uint8" or "int32"
  std::vector<int64_t> shape;    // shape of the tensor (activations: empty)
  int axis = -1;                 // per-channel axis, -1 per tensor
  std::vector<float> scales;     // one per channel, or one
  std::vector<int32_t> zero_points;  // activations: one; weights and biases: all 0 (one listed)
  double sqnr_db = 0;            // weights/biases: on the tensor; activations: on the calibration data (+inf: exact)
  bool has_sqnr = true;          // false when not measured (activations without data)
  int64_t zeros_before = 0;      // weights: exact zeros before
  int64_t zeros_after = 0;       // weights: zeros after (pruned zeros are kept)
  float rmin = 0, rmax = 0;      // activations: the calibrated range
};

struct QuantReport {
  std::string mode;                     // "weight-only" or "static"
  bool per_channel = true;              // weight granularity
  std::string activations;              // static: "uint8" or "int8"; "" otherwise
  std::string calibration;              // static: method name; "" otherwise
  int64_t calibration_samples = 0;      // static: samples run
  std::vector<QuantTensorReport> tensors;  // weights, biases, activations, in graph order
  std::vector<SkippedNode> skipped;     // operators left float
  int64_t opset_before = 0;             // default-domain opset before
  int64_t opset_after = 0;              // and after
  uint64_t weight_bytes_before = 0;     // bytes of the float weights replaced
  uint64_t weight_bytes_after = 0;      // bytes of their int8 values, scales and zero points
  std::vector<std::string> notices;     // remarks worth reading
};

// Rewrites `model` as the plan says: every planned weight becomes an int8
// initializer followed by one DequantizeLinear (the float one is removed
// when nothing else reads it); in static mode every planned activation gets
// one QuantizeLinear/DequantizeLinear pair shared by its quantized readers,
// and biases become int32 with scale = activation scale x weight scale (a
// bias that would overflow int32 stays float, with a notice). `table` must
// hold every planned activation in static mode (null in weight-only). The
// plan must come from this model unchanged. On error the model may be half
// rewritten: callers that must keep it work on a copy (the CLI reloads).
Result<QuantReport> ApplyQuantization(Model& model, const QuantPlan& plan, const CalibrationTable* table,
                                      const QuantizeOptions& options);

// The SQNR (dB) of every activation of `table` when it alone is quantized
// with ComputeParams(rmin, rmax, scheme), over the calibration data: a second
// streaming pass over the unchanged model. Keyed by tensor name.
Result<std::map<std::string, double>> MeasureActivationSqnr(const Model& model, const CalibrationTable& table,
                                                            const CalibrationData& data, Scheme scheme);

// Plan, calibrate (static mode; `data` required then), measure and apply.
Result<QuantReport> Quantize(Model& model, const QuantizeOptions& options, const CalibrationData* data = nullptr);

// The report as JSON text (schema in docs/quantize.md).
std::string QuantReportJson(const QuantReport& report);

}  // namespace modelpress::quant
