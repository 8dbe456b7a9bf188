// --reconstruct and its options, shared by prune unstructured, nm and channels.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "modelpress/npy.h"
#include "modelpress/prune.h"
#include "modelpress/quant.h"
#include "modelpress/reconstruct.h"

namespace modelpress::cli {

struct ReconstructFlags {
  bool enabled = false;       // --reconstruct
  std::string calib_data;     // .npy of calibration samples (float32, first dim = samples)
  int64_t samples = 256;      // samples used (default 256, or all the file holds when fewer)
  ReconstructOptions options;  // damp, refit method, saliency, batch
};

// Adds the flags; `with_saliency` adds --saliency (masks of unstructured and N:M).
void AddReconstructOptions(CLI::App* sub, ReconstructFlags* flags, bool with_saliency, bool with_steps = false);

// Refuses inconsistent flags (before any file is read).
Status CheckReconstructFlags(const ReconstructFlags& flags);

// The calibration data for `model`: reads flags.calib_data (kept in `*x`,
// which must outlive the result) and checks it against the model's input.
Result<quant::CalibrationData> LoadCalibration(const Model& model, const ReconstructFlags& flags, NpyArray* x);

// Prints the per-layer reconstruction errors.
void PrintRefits(const std::vector<RefitReport>& refits);

}  // namespace modelpress::cli
