#include "reconstruct_flags.h"

#include <iostream>
#include <map>

#include "cli_common.h"

namespace modelpress::cli {
namespace {

const std::map<std::string, MaskSaliency> kSaliencies = {{"magnitude", MaskSaliency::kMagnitude},
                                                         {"obs", MaskSaliency::kObs}};
const std::map<std::string, RefitMethod> kRefitMethods = {
    {"auto", RefitMethod::kAuto}, {"exact", RefitMethod::kExact}, {"obs", RefitMethod::kObs}};

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

void AddReconstructOptions(CLI::App* sub, ReconstructFlags* f, bool with_saliency, bool with_steps) {
  sub->add_flag("--reconstruct", f->enabled,
                "Re-fit the kept weights of every pruned layer by least squares on calibration inputs (OBS/SparseGPT)");
  sub->add_option("--calib-data", f->calib_data, "--reconstruct: calibration samples as .npy (float32, first dim = samples)");
  sub->add_option("--samples", f->samples, "--reconstruct: calibration samples used (all when the file holds fewer)")
      ->default_val(256);
  sub->add_option("--damp", f->options.refit.damp, "--reconstruct: H is dampened by this fraction of its mean diagonal")
      ->default_val(0.01);
  sub->add_option("--refit", f->options.refit.method,
                  "--reconstruct: exact (Cholesky per row), obs (SparseGPT blocks) or auto (exact up to 512 columns)")
      ->transform(CLI::CheckedTransformer(kRefitMethods, CLI::ignore_case))
      ->default_str("auto");
  sub->add_option("--batch", f->options.batch, "--reconstruct: calibration samples per executor run")->default_val(32);
  if (with_saliency) {
    sub->add_option("--saliency", f->options.saliency,
                    "--reconstruct: choose the mask by magnitude |w| or by OBS saliency w^2/[H^-1]_ii")
        ->transform(CLI::CheckedTransformer(kSaliencies, CLI::ignore_case))
        ->default_str("magnitude");
  }
  if (with_steps) {
    sub->add_option("--steps", f->options.steps,
                    "--reconstruct: reach the sparsity in this many prune-and-re-fit steps (masks re-chosen on the "
                    "re-fitted weights)")
        ->default_val(f->options.steps);
  }
}

Status CheckReconstructFlags(const ReconstructFlags& f) {
  if (f.enabled && f.calib_data.empty()) return InvalidArgument("--reconstruct needs --calib-data X.npy");
  if (!f.enabled && !f.calib_data.empty()) return InvalidArgument("--calib-data is only used with --reconstruct");
  if (f.samples < 1) return InvalidArgument("--samples must be at least 1, got " + std::to_string(f.samples));
  if (!(f.options.refit.damp >= 0)) return InvalidArgument("--damp must be >= 0");
  if (f.options.batch < 1) return InvalidArgument("--batch must be at least 1");
  if (f.options.steps < 1) return InvalidArgument("--steps must be at least 1");
  return Status::Ok();
}

Result<quant::CalibrationData> LoadCalibration(const Model& model, const ReconstructFlags& f, NpyArray* x) {
  MP_ASSIGN_OR_RETURN(*x, ReadNpy(f.calib_data));
  const int64_t available = x->shape.empty() ? 0 : x->shape[0];
  return quant::NpyCalibrationData(model, *x, f.calib_data, std::min(f.samples, std::max<int64_t>(available, 1)),
                                   f.options.batch);
}

void PrintRefits(const std::vector<RefitReport>& refits) {
  if (refits.empty()) return;
  std::vector<std::vector<std::string>> rows = {{"layer", "tensor", "rows x cols", "inputs", "refit", "error before", "after"}};
  for (const RefitReport& r : refits) {
    const bool fit = r.method != "none";
    rows.push_back({r.node, r.tensor, std::to_string(r.rows) + " x " + std::to_string(r.columns), Grouped(r.samples),
                    fit ? r.method : "none: " + r.reason, fit ? Fixed(r.error_before, 4) : "-",
                    fit ? Fixed(r.error_after, 4) : "-"});
  }
  std::cout << "\nreconstruction (relative output error ||X'w' - Xw|| / ||Xw|| on the calibration data;\n"
               "X' from the pruned model, X from the dense one):\n";
  PrintTable(rows, {2, 3, 5, 6});
}

}  // namespace modelpress::cli
