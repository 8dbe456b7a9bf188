// One-shot pruning with reconstruction (the OBS / SparseGPT family): after a
// layer's mask is chosen, its surviving weights are re-fitted by least
// squares so that the layer's outputs on calibration inputs change as little
// as possible.
//
// Plain-tensor API (for training code and bindings):
//
//   GramAccumulator h(columns);                  // H = X^T X, streamed
//   h.Add(rows, row_count);                      // once per batch of input rows
//   std::vector<float> s = ObsSaliency(w, output_axis, h.Gram(), groups, damp).value();
//   RefitResult r = RefitWeights(w, output_axis, keep, h.Gram(), groups, options).value();
//
// Model-level pruners that run the calibration data through the already
// pruned prefix of the model (so errors of earlier layers are compensated,
// not compounded) are declared at the end.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "modelpress/onnx_io.h"
#include "modelpress/prune.h"
#include "modelpress/quant.h"
#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress {

// Streaming Gram matrix H = X^T X of input rows of `columns` values. Rows are
// buffered (at most `chunk_rows` of them) and folded into H one chunk at a
// time: the chunk product is a float32 rank update (fast), the running sum is
// float64. Summing every row in float32 would let rounding grow with the
// number of calibration rows (a 3x3 Conv on 256 images of 32x32 adds 262,144
// rows); with a float64 total only the chunk's own error remains, and it does
// not depend on how much data is streamed. Memory: H (columns^2 doubles) and
// one chunk of rows; a flush multiplies 256 rows of H at a time (float32).
class GramAccumulator {
 public:
  explicit GramAccumulator(int64_t columns, int64_t chunk_rows = 256);

  // Adds `row_count` rows stored one after another (row-major float32).
  // Fails when values.size() != row_count * columns or a value is not finite.
  Status Add(std::span<const float> values, int64_t row_count);

  int64_t columns() const { return columns_; }
  int64_t rows() const { return rows_ + pending_; }  // rows added so far

  // H as a full symmetric columns x columns matrix, row-major.
  std::vector<double> Gram() const;

  // The same matrix as Gram(), moved out instead of copied (so H is not held
  // twice); the accumulator is left empty, with 0 columns.
  std::vector<double> ReleaseGram();

 private:
  void Flush();

  int64_t columns_ = 0;
  int64_t chunk_rows_ = 256;
  int64_t rows_ = 0;            // rows already folded into lower_
  int64_t pending_ = 0;         // rows waiting in buffer_
  std::vector<double> lower_;   // lower triangle of H (full storage)
  std::vector<float> buffer_;   // pending rows
};

// Streaming cross product C = A^T B of paired rows (row i of A and row i of B
// describe the same sample), accumulated like GramAccumulator: float32 chunk
// products, float64 total.
class CrossGramAccumulator {
 public:
  explicit CrossGramAccumulator(int64_t columns, int64_t chunk_rows = 256);

  // Adds `row_count` rows of A and of B (row-major float32 each).
  Status Add(std::span<const float> a, std::span<const float> b, int64_t row_count);

  int64_t columns() const { return columns_; }
  int64_t rows() const { return rows_ + pending_; }

  // C as a columns x columns matrix, row-major (not symmetric).
  std::vector<double> Cross() const;

  // The same matrix as Cross(), moved out instead of copied; the accumulator
  // is left empty, with 0 columns.
  std::vector<double> ReleaseCross();

 private:
  void Flush();

  int64_t columns_ = 0;
  int64_t chunk_rows_ = 256;
  int64_t rows_ = 0;
  int64_t pending_ = 0;
  std::vector<double> total_;
  std::vector<float> a_, b_;
};

// How the kept weights are re-fitted.
enum class RefitMethod {
  kAuto,   // exact for layers of at most RefitOptions::exact_max_columns columns, else OBS
  kExact,  // per output row: Cholesky of H restricted to the kept columns, the least-squares optimum for the mask
  kObs,    // SparseGPT: one Cholesky of H^-1, columns eliminated left to right in lazy blocks (an approximation)
};

std::string_view RefitMethodName(RefitMethod m);  // "auto", "exact", "obs"

struct RefitOptions {
  double damp = 0.01;                // H + damp * mean(diag H) * I is used (default 0.01); >= 0
  RefitMethod method = RefitMethod::kAuto;  // default auto
  int64_t exact_max_columns = 512;   // auto: exact up to this many columns per row (default 512)
  int64_t block = 128;               // OBS: columns per lazy update block (default 128)
  int64_t error_rows = 256;          // rows the errors of big layers are measured on: every k-th row (default 256; 0: all)
  int threads = 0;                   // 0: all cores
};

// Relative reconstruction errors ||X (w' - w)|| / ||X w|| over all rows,
// measured with the undampened H (0 when ||X w|| is 0).
struct RefitResult {
  std::vector<float> weights;   // re-fitted weights, same shape and C order as the input
  double error_before = 0;      // with the pruned weights simply zeroed
  double error_after = 0;       // with the re-fitted weights
  RefitMethod method = RefitMethod::kExact;  // the method actually used
  int64_t error_rows_used = 0;  // weight rows the errors were measured on
};

// Layout: every element belongs to one output row (its index along
// `output_axis`) and one column (its position over the other axes, in C
// order). So Gemm B [out, in] (transB=1) has output_axis 0, MatMul/Gemm B
// [in, out] has output_axis 1, Conv W [K, C/g, kh, kw] has output_axis 0 and
// columns C/g * kh * kw, matching im2col rows. `gram` holds `groups` matrices
// of columns x columns (row-major) one after another; rows are split evenly
// in that many groups, row group i using matrix i (Conv groups).
//
// Optional target of a re-fit: when the layer's inputs X' (from the pruned
// prefix of a model) differ from the inputs X the dense model sees, the
// re-fit should reproduce the dense outputs X w from X', which also
// compensates the errors of earlier layers. `gram` is then X'^T X', and this
// gives X'^T X and X^T X (same layout and group count as `gram`).
struct RefitTarget {
  std::span<const double> cross;       // X'^T X per group, row-major
  std::span<const double> dense_gram;  // X^T X per group, row-major
};

// Re-fits the weights that `keep` (one byte per element, tensor layout)
// keeps, so that sum over rows of ||X w'_row - X w_row||^2 is (approximately,
// for OBS) least; with a `target`, ||X' w'_row - X w_row||^2 (the weights are
// first moved to the dense least-squares optimum w* = (H + lambda I)^-1 (X'^T X
// w + lambda w), then pruned and re-fitted against X' w*; errors are then
// relative to ||X w||). Pruned elements, and elements already zero in `weights`,
// are exactly 0 in the result. `weights` may be float32, float16, bfloat16
// or float64; the result is float32.
Result<RefitResult> RefitWeights(const TensorView& weights, int output_axis, std::span<const uint8_t> keep,
                                 std::span<const double> gram, int64_t groups, const RefitOptions& options,
                                 const RefitTarget* target = nullptr);

// RefitWeights for float32 weights, in place: `weights` is overwritten with the
// re-fitted values (RefitResult::weights stays empty), and `gram` is the
// working storage of the factorisation, so no copy of either is made. `gram`
// holds the same values again on return, also on error; its upper triangle
// is rebuilt from the lower one, so each matrix must be symmetric (as
// GramAccumulator::Gram() gives), and must not share storage with the
// target's matrices. Beyond the weights and H, the re-fit holds a block of
// rows per thread and the rows the errors are measured on. On error after
// the arguments are checked (H, or H restricted to a row's kept columns,
// not positive definite once dampened), `weights` may be partly re-fitted.
Result<RefitResult> RefitWeightsInPlace(const MutableTensorView& weights, int output_axis,
                                        std::span<const uint8_t> keep, std::span<double> gram, int64_t groups,
                                        const RefitOptions& options, const RefitTarget* target = nullptr);

// The OBS saliency w^2 / [(H + damp * mean(diag H) I)^-1]_ii of every
// element (same layout as RefitWeights): the increase of the layer's squared
// output error when that weight alone is removed and the rest re-fitted.
// Feed it to UnstructuredMask / GlobalMasks / NMMask as the "weights" (a
// float32 view of the returned values) to prune by saliency instead of |w|;
// counts, ties and N:M patterns stay exact since those only compare values.
Result<std::vector<float>> ObsSaliency(const TensorView& weights, int output_axis, std::span<const double> gram,
                                       int64_t groups, double damp, int threads = 0);

// ---- Model level ----

enum class MaskSaliency {
  kMagnitude,  // |w| (the mask plain magnitude pruning gives)
  kObs,        // w^2 / [H^-1]_ii, computed on the layer's calibration inputs
};

struct ReconstructOptions {
  RefitOptions refit;                             // solver settings
  bool dense_targets = true;                      // re-fit towards the dense model's outputs (compensates earlier
                                                  // layers; needs one more run and two more matrices per layer);
                                                  // false: towards the pruned prefix's own outputs (default true)
  MaskSaliency saliency = MaskSaliency::kMagnitude;  // how masks are chosen (default magnitude)
  int64_t batch = 32;                             // calibration samples per executor run (default 32)
  int steps = 8;                                  // unstructured only: the sparsity is reached in this many
                                                  // prune-and-re-fit steps, each choosing its mask on the weights
                                                  // the previous step re-fitted (default 8)
};

// Unstructured / N:M / channel pruning followed by layer-by-layer
// reconstruction on `data`. Layers (Gemm with transA=0, 2-D MatMul weights on
// the right, 1-D/2-D Conv; weights stored as float32 initializers read
// directly by one node) are processed in graph order: the inputs of a layer
// are observed by running the model whose earlier layers are already pruned
// and re-fitted, and (with dense_targets) the dense model on the same batch,
// whose layer outputs are the re-fit's target. Other pruned tensors get their mask without a re-fit
// (reported with a reason). Global scope picks every layer's pruned count
// from the global magnitude threshold first, so the total is exact. Masks
// with MaskSaliency::kObs keep each layer's count (or N:M pattern) exact.
// The report gains one RefitReport per pruned tensor. Biases and the graph
// are unchanged; on error the model is unchanged.
Result<PruneReport> PruneUnstructuredReconstructed(Model& model, const UnstructuredOptions& options,
                                                   const quant::CalibrationData& data,
                                                   const ReconstructOptions& reconstruct);
Result<PruneReport> PruneNMReconstructed(Model& model, const NMOptions& options, const quant::CalibrationData& data,
                                         const ReconstructOptions& reconstruct);
// Channels: the layers reading removed channels are re-fitted on the kept
// channels (their other weights stay dense), then the channels are removed.
// `reconstruct.saliency` is not used (channels are chosen by their norms).
Result<ChannelPruneReport> PruneChannelsReconstructed(Model& model, const ChannelPruneOptions& options,
                                                      const quant::CalibrationData& data,
                                                      const ReconstructOptions& reconstruct);

}  // namespace modelpress
