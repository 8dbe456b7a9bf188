// Running a classifier over .npy samples with the reference executor: the
// pieces `modelpress eval` and the compress pipeline share.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/runtime.h"
#include "modelpress/status.h"

namespace modelpress::runtime {

// Checks that `exec` (built from the model named `model_name`) has one input
// that accepts `x` (samples along the first dim) and at least one output.
// Returns the model's fixed batch dim, or 0 when it is free. Errors name both
// files: Unsupported for a model of several inputs, Corrupt for data of the
// wrong dtype or shape.
Result<int64_t> CheckSamples(const Executor& exec, const std::string& model_name, const NpyArray& x,
                             const std::string& x_name);

// Runs rows [start, start + count) of `x`, zero-padded to `rows` rows when the
// model's batch is fixed, and returns the first output's values for the
// `count` real rows; `*row_size` receives the values per row.
Result<std::vector<float>> RunRows(const Executor& exec, const std::string& model_name, const NpyArray& x,
                                   int64_t start, int64_t count, int64_t rows, int64_t* row_size);

// Index of the largest of n values (the first on ties).
int64_t Argmax(const float* v, int64_t n);

// Integer labels from a .npy of shape [samples] or [samples, 1] (int8/uint8/int32/int64).
Result<std::vector<int64_t>> ReadLabels(const std::string& path, int64_t samples);

struct Top1 {
  int64_t samples = 0;  // samples run
  int64_t correct = 0;  // samples whose argmax equals the label
  double top1 = 0;      // correct / samples
};

// Top-1 accuracy of `model`'s first output over `x` against `labels` (one per
// sample), `batch` samples per run (a fixed batch dim wins).
Result<Top1> EvaluateTop1(const Model& model, const NpyArray& x, const std::string& x_name,
                          std::span<const int64_t> labels, int64_t batch = 32);

}  // namespace modelpress::runtime
