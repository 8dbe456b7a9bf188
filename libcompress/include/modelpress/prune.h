// Magnitude pruning: masks on plain tensors (for training code), sparsity
// schedules, and whole-model unstructured and N:M pruning.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "modelpress/graph.h"
#include "modelpress/onnx_io.h"
#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress {

// Masks are one byte per element: 1 keeps the weight, 0 prunes it.
using Mask = std::vector<uint8_t>;

// One tensor offered to a mask computation.
struct MaskInput {
  TensorView weights;                        // float32, float16, bfloat16 (or any numeric type)
  std::span<const uint8_t> previous_keep;    // optional: elements already pruned (0) stay pruned
};

// Unstructured magnitude mask of one tensor: exactly floor(sparsity * size)
// elements are pruned (a product within a relative 1e-9 of an integer counts
// as that integer, so 0.7 of 10 is 7), smallest |w| first, ties broken by lower index first,
// so the result is the same on any thread count. Elements already zero or
// pruned in `previous_keep` are the smallest and count toward the target;
// when they already exceed it, they stay pruned and nothing else is.
// `keep` must have weights.size() elements. sparsity in [0, 1).
Status UnstructuredMask(const MaskInput& input, double sparsity, std::span<uint8_t> keep, int threads = 0);

// One threshold across several tensors: floor(sparsity * total) elements of
// all of them together are pruned, with the same ordering rules (ties broken
// by tensor order, then index). keeps[i] has inputs[i].weights.size() elements.
Status GlobalMasks(std::span<const MaskInput> inputs, double sparsity, std::span<const std::span<uint8_t>> keeps,
                   int threads = 0);

// N:M mask: in every group of M consecutive elements along `reduction_axis`
// (separately for every position of the other axes) the N of largest |w| are
// kept; ties keep the lower index. Fails when the axis length is not a
// multiple of M. Elements pruned in `previous_keep` are never kept again.
Status NMMask(const MaskInput& input, int reduction_axis, int n, int m, std::span<uint8_t> keep);

// Layer kinds as training code names them, for choosing the reduction axis
// without an ONNX graph.
enum class LayerKind {
  kLinear,         // PyTorch Linear / ONNX Gemm transB=1: W [out, in]
  kConv,           // Conv W [out, in/groups, k...]
  kMatMul,         // ONNX MatMul B [..., in, out]
  kConvTranspose,  // ConvTranspose W [in, out/groups, k...]
};

// The reduction (input-channel) axis of a weight of rank `rank`.
int ReductionAxisFor(LayerKind kind, int rank);

// Zeroes the elements whose mask byte is 0 (packed tensor bytes of any numeric type).
Status ApplyMask(const MutableTensorView& weights, std::span<const uint8_t> keep);

// Zhu & Gupta's polynomial schedule (2017): sparsity rises from `initial`
// at `begin_step` to `final` at `end_step` as s = final + (initial - final) *
// (1 - (step - begin) / (end - begin))^power, updated every `frequency` steps.
struct PolynomialSchedule {
  double initial = 0.0;    // sparsity at begin_step (default 0)
  double final = 0.9;      // sparsity from end_step on (default 0.9)
  int64_t begin_step = 0;  // first step of the ramp (default 0)
  int64_t end_step = 1000; // step where `final` is reached (default 1000)
  int64_t frequency = 1;   // steps between updates (default 1)
  double power = 3.0;      // exponent of the ramp (default 3, cubic)

  double SparsityAt(int64_t step) const;
};

// Fixed-fraction iterative pruning: every round removes `fraction` of the
// weights still remaining, until `target` (train-prune-retrain as in Deep
// Compression). Round 0 is dense.
struct IterativeSchedule {
  double fraction = 0.2;  // share of remaining weights pruned per round (default 0.2)
  double target = 0.9;    // sparsity where the schedule stops (default 0.9)

  double SparsityAt(int round) const;  // min(target, 1 - (1 - fraction)^round)
  int Rounds() const;                  // rounds until target is reached
};

// Which tensors of a model a pruner may touch.
struct TensorFilter {
  std::vector<WeightRole> roles = {WeightRole::kConvWeight, WeightRole::kConvTransposeWeight, WeightRole::kGemmWeight,
                                   WeightRole::kMatMulWeight};  // eligible roles (default: linear weights)
  std::string include;        // ECMAScript regex on tensor names; only matches are eligible ("" = all)
  std::string exclude;        // regex; matches are never pruned ("" = none)
  int64_t min_params = 0;     // tensors with fewer elements are left alone (default 0)
  bool keep_first_last = false;  // leave the first and last linear weights (graph order) dense (default false)
};

enum class PruneScope {
  kLayer,   // every tensor reaches the sparsity on its own
  kGlobal,  // one magnitude threshold over all eligible tensors
};

struct UnstructuredOptions {
  double sparsity = 0.5;                                 // fraction of elements zeroed, in [0, 1) (default 0.5)
  PruneScope scope = PruneScope::kLayer;                 // default: layer
  TensorFilter filter;                                   // which tensors
  std::vector<std::pair<std::string, double>> layer_sparsity;  // per-tensor overrides (exact names), pruned layer-wise
  int threads = 0;                                       // 0: all cores
};

struct NMOptions {
  int n = 2;            // weights kept per group (default 2)
  int m = 4;            // group size along the reduction axis (default 4)
  TensorFilter filter;  // which tensors
};

// One row per tensor considered.
struct PruneTensorReport {
  std::string name;
  std::string role;             // WeightRoleName
  std::vector<int64_t> shape;
  std::string dtype;
  int64_t parameters = 0;
  int64_t zeros_before = 0;     // exact zeros before pruning
  int64_t zeros_after = 0;      // exact zeros after pruning
  double target = 0.0;          // requested sparsity (unstructured) or 1 - N/M
  bool pruned = false;          // false: skipped, see reason
  std::string reason;           // why skipped ("" when pruned)
};

// Reconstruction of one pruned tensor (see reconstruct.h): relative output
// errors ||X (w' - w)|| / ||X w|| on the calibration inputs X of its layer.
struct RefitReport {
  std::string tensor;           // weight tensor
  std::string node;             // the layer reading it
  std::string method;           // "exact", "obs", or "none" when not re-fitted (see reason)
  int64_t rows = 0;             // output rows (filters / features)
  int64_t columns = 0;          // weights per row (reduction length; C/g * kh * kw for Conv)
  int64_t samples = 0;          // input rows observed (samples x positions)
  double error_before = 0;      // pruned weights zeroed, nothing re-fitted
  double error_after = 0;       // after the re-fit (= error_before when not re-fitted)
  std::string reason;           // why not re-fitted ("" when re-fitted)
};

struct PruneReport {
  std::string method;           // "unstructured-layer", "unstructured-global", "nm"
  std::vector<PruneTensorReport> tensors;
  int64_t parameters = 0;       // over pruned tensors
  int64_t zeros_before = 0;     // over pruned tensors
  int64_t zeros_after = 0;      // over pruned tensors
  std::vector<std::string> notices;  // e.g. an --include that matched only ineligible tensors
  std::vector<RefitReport> refits;   // one per pruned tensor when reconstructed, in processing order; else empty
};

// Prunes the eligible weights of `model` in place. Errors (bad options, no
// eligible tensor, a regex matching nothing) leave the model unchanged.
Result<PruneReport> PruneUnstructured(Model& model, const UnstructuredOptions& options);
Result<PruneReport> PruneNM(Model& model, const NMOptions& options);

// PruneUnstructured for a model that is about to be written with
// SaveModel(model, path, *save) and then dropped, as the command line does.
// Float32 tensors read from external data files are not changed in memory:
// `save->edits` receives the zeroing, done while SaveModel copies them out, so
// no page of the mapped file is copied and every weight is read twice
// instead of four times. Other tensors are pruned in place. The report and
// the written files are those of PruneUnstructured; only the in-memory model
// differs (its external tensors keep their old values).
Result<PruneReport> PruneUnstructuredOnSave(Model& model, const UnstructuredOptions& options, SaveOptions* save);

// The report as JSON text (schema in docs/prune.md).
std::string PruneReportJson(const PruneReport& report);

// Structured pruning: whole channels (Conv filters, Gemm/MatMul output
// features) are removed with every tensor coupled to them, as found by
// AnalyzeChannelGroups, and the tensors are physically sliced.
enum class ChannelCriterion {
  kL1,  // sum of |w| over every scored tensor of the channel (linear weights both sides, norm scale)
  kL2,  // Euclidean norm over the same weights
};

struct ChannelPruneOptions {
  double ratio = 0.3;                              // fraction of channels removed, in [0, 1) (default 0.3)
  ChannelCriterion criterion = ChannelCriterion::kL1;  // channel score (default l1)
  PruneScope scope = PruneScope::kLayer;           // layer: every group loses `ratio` of its channels; global: lowest
                                                   // scores, each normalised by its group's mean, across all groups
  int64_t round_to = 1;                            // kept channel counts are rounded up to a multiple of this (default 1)
  std::string exclude;                             // ECMAScript regex; groups whose producer node or produced tensor
                                                   // name matches are left whole ("" = none)
};

// One row per channel group.
struct ChannelGroupReport {
  int id = 0;                          // ChannelGroup::id
  std::vector<std::string> producers;  // nodes producing the channels
  int64_t channels_before = 0;         // removable units before
  int64_t channels_after = 0;          // units kept
  bool pruned = false;                 // true when channels were removed
  std::string reason;                  // why left whole ("" when pruned or nothing to remove)
};

struct ChannelPruneReport {
  std::string criterion;               // "l1" or "l2"
  std::string scope;                   // "layer" or "global"
  double ratio = 0.0;                  // requested ratio
  int64_t round_to = 1;                // requested rounding
  std::vector<ChannelGroupReport> groups;  // every group of the analysis, in its order
  int64_t parameters_before = 0;       // elements of floating-point constant tensors
  int64_t parameters_after = 0;        // the same after pruning
  int64_t macs_before = 0;             // multiply-accumulates of Conv/ConvTranspose/Gemm/MatMul per run, symbolic dims as 1
  int64_t macs_after = 0;              // the same after pruning
  std::vector<std::string> notices;    // e.g. shape inference could not run
  std::vector<RefitReport> refits;     // layers reading removed channels, when reconstructed; else empty
};

// Prunes channels of `model` in place. Ratio 0 (or nothing selected) leaves
// the model untouched. The result is verified with strict ONNX shape
// inference when the original passes it; every error leaves the model
// unchanged. Fails with InvalidArgument for a bad ratio, round_to or regex,
// and Unsupported when no group is prunable.
Result<ChannelPruneReport> PruneChannels(Model& model, const ChannelPruneOptions& options);

// The report as JSON text (schema in docs/structured.md).
std::string ChannelPruneReportJson(const ChannelPruneReport& report);

}  // namespace modelpress
