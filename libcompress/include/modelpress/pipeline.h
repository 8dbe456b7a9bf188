// Recipes and the compress pipeline: a YAML recipe names stages (prune,
// prune_channels, quantize, pack) that run in order on one in-memory model;
// the result is a folder with model.onnx, model.mpk, report.json and
// report.html (schema and examples in docs/recipes.md).
//
//   Recipe r = LoadRecipe("edge-int8.yaml");
//   CompressReport rep = Compress("model.onnx", r, {.output_dir = "out"});
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "modelpress/pack.h"
#include "modelpress/prune.h"
#include "modelpress/quant.h"
#include "modelpress/reconstruct.h"
#include "modelpress/status.h"

namespace modelpress::pipeline {

// Pruning with reconstruction (reconstruct.h): the kept weights of every
// pruned layer re-fitted on the calibration data. Recipe key `reconstruct`:
// `true`, or a map of samples, damp, refit, saliency, batch.
struct ReconstructSettings {
  bool enabled = false;        // default off
  int64_t samples = 256;       // calibration samples used (default 256, or all the data holds when fewer)
  ReconstructOptions options;  // damp, refit method, mask saliency, samples per run
};

// Magnitude pruning of single weights. A struct of its own (not
// UnstructuredOptions itself) so that later prune variants can add their
// fields here without touching the library's pruners.
struct PruneStage {
  enum class Method {
    kUnstructured,  // smallest |w| zeroed: per tensor (scope layer) or one threshold (scope global)
    kNM,            // N of every M kept along the reduction axis
  };
  Method method = Method::kUnstructured;  // default unstructured
  UnstructuredOptions unstructured;       // method unstructured: sparsity, scope, filter, per-layer overrides
  NMOptions nm;                           // method nm: n, m, filter
  ReconstructSettings reconstruct;        // re-fit the kept weights (default off)
};

// Structured pruning: whole channels removed (PruneChannels).
struct PruneChannelsStage {
  ChannelPruneOptions options;      // ratio, criterion, scope, round_to, exclude
  ReconstructSettings reconstruct;  // re-fit the layers reading removed channels (default off; saliency unused)
};

// Post-training INT8 quantization (quant::Quantize).
struct QuantizeStage {
  quant::QuantizeOptions options;  // mode, per-channel, activation scheme, calibration...
  int64_t samples = 0;             // static: calibration samples used, 0 = all of the data (default 0)
};

// The artifact written as model.mpk; always the last step.
struct PackStage {
  pack::PackOptions options;  // zstd level, threads, verification
};

using Stage = std::variant<PruneStage, PruneChannelsStage, QuantizeStage, PackStage>;

// The key a stage has in a recipe: "prune", "prune_channels", "quantize", "pack".
std::string StageName(const Stage& stage);

struct Recipe {
  std::string source;                 // the recipe file (or the name given to ParseRecipe), for messages
  std::string text;                   // the YAML text as read, for the report
  std::string name;                   // `name:` ("" when absent)
  std::string description;            // `description:` ("" when absent)
  std::filesystem::path calib_data;   // `calibration.data:` resolved against the recipe's folder (empty when absent)
  std::vector<Stage> stages;          // in recipe order; a pack stage, when present, is last
};

// Parses recipe text. Every error is InvalidArgument naming `source` and the
// line (and column) of the offending key or value: unknown keys, values of
// the wrong type or out of range, a stage list that is empty, a pack stage
// that is not last, static quantization twice. Relative paths resolve
// against `base_dir`.
Result<Recipe> ParseRecipe(const std::string& text, const std::string& source,
                           const std::filesystem::path& base_dir = {});

// Reads and parses a recipe file (IoError/NotFound when it cannot be read).
Result<Recipe> LoadRecipe(const std::filesystem::path& path);

// A progress event: stage `stage` (1-based, of `stages`) named `name` has
// done `done_bytes` of `total_bytes` (bytes of the model's weights the stage
// walks; equal when it has finished) over `tensors` tensors.
struct Progress {
  int stage = 0;             // 1-based stage number
  int stages = 0;            // stages in the run (recipe stages, pack, evaluation)
  std::string name;          // stage key, or "evaluate"
  int64_t tensors = 0;       // tensors the stage walks
  uint64_t done_bytes = 0;   // bytes processed so far over the whole run
  uint64_t total_bytes = 0;  // bytes the whole run processes (an estimate fixed at the start)
  double elapsed_s = 0;      // seconds since the run started
  bool finished = false;     // the stage has finished
};

struct CompressOptions {
  std::filesystem::path output_dir;   // created by the run; must not exist, or be an empty folder
  std::filesystem::path calib_data;   // static quantization data (.npy); overrides the recipe's (empty = recipe's)
  std::filesystem::path eval_data;    // samples for top-1 before/after (.npy; empty = no accuracy)
  std::filesystem::path eval_labels;  // their integer labels (.npy), required with eval_data
  int64_t eval_batch = 32;            // samples per executor run when evaluating (default 32)
  int histogram_layers = 4;           // largest weights whose value histograms the report shows (default 4)
  int histogram_bins = 41;            // bins of each histogram (default 41)
  bool reference_compressors = true;  // measure zstd -19, gzip -9 and xz -9e on the input ONNX (default true)
  std::function<void(const Progress&)> progress;  // called on the caller's thread at stage starts and ends
};

// The outcome: the report as JSON text (as written to report.json) and the figures callers print.
struct CompressReport {
  std::string json;                   // report.json's content (schema in docs/recipes.md)
  uint64_t onnx_bytes_before = 0;     // the input .onnx (plus external data files)
  uint64_t onnx_bytes_after = 0;      // OUTDIR/model.onnx
  uint64_t artifact_bytes = 0;        // OUTDIR/model.mpk
  std::optional<double> top1_before;  // with eval data
  std::optional<double> top1_after;   // with eval data
};

// Loads `model` (never modified), runs the recipe's stages in order, saves
// OUTDIR/model.onnx (inline, checked by ONNX's checker when it can), packs it
// into OUTDIR/model.mpk and writes report.json and report.html. Everything is
// built in a temporary folder beside OUTDIR and renamed into place at the
// end: on any error nothing is left at OUTDIR (an empty folder given as
// OUTDIR is left empty).
Result<CompressReport> Compress(const std::filesystem::path& model, const Recipe& recipe,
                                const CompressOptions& options);

// The self-contained HTML page (inline CSS, script and SVG; no network) that
// renders a report.json text. The JSON is embedded in the page and the
// page's script writes its figures into elements with ids (see docs/recipes.md).
std::string ReportHtml(const std::string& report_json);

}  // namespace modelpress::pipeline
