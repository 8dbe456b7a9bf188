// modelpress prune unstructured|nm MODEL -o OUT: magnitude pruning.
#include <iostream>
#include <map>

#include "cli_common.h"
#include "modelpress/prune.h"
#include "modelpress/reconstruct.h"
#include "reconstruct_flags.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

const std::map<std::string, PruneScope> kScopes = {{"layer", PruneScope::kLayer}, {"global", PruneScope::kGlobal}};
const std::map<std::string, WeightRole> kRoles = {
    {"conv", WeightRole::kConvWeight},     {"convtranspose", WeightRole::kConvTransposeWeight},
    {"gemm", WeightRole::kGemmWeight},     {"matmul", WeightRole::kMatMulWeight},
    {"embedding", WeightRole::kEmbedding}, {"bias", WeightRole::kBias},
    {"norm", WeightRole::kNormParam}};

struct PruneCommon {
  std::string model;         // input .onnx
  std::string output;        // output .onnx
  SaveOptions save;          // where tensor data goes
  std::string report;        // JSON report path ("" = none)
  bool check = true;         // run ONNX's checker before saving
  bool quiet = false;        // no table on stdout
  std::vector<WeightRole> roles;  // --roles; empty = the filter's default
  ReconstructFlags reconstruct;   // --reconstruct and its options
};

struct UnstructuredCmd {
  PruneCommon common;
  UnstructuredOptions options;
  std::vector<std::string> layers;  // NAME=S overrides
};

struct NMCmd {
  PruneCommon common;
  NMOptions options;
};

void AddCommon(CLI::App* sub, PruneCommon* c, TensorFilter* f, bool unstructured) {
  sub->add_option("model", c->model, "ONNX model file")->required();
  AddModelOutputOptions(sub, &c->output, &c->save);
  sub->add_option("--include", f->include, "Only tensors whose name matches this regex (ECMAScript)");
  sub->add_option("--exclude", f->exclude, "Never tensors whose name matches this regex");
  sub->add_option("--min-params", f->min_params, "Leave tensors with fewer elements alone")->default_val(0);
  sub->add_flag("--keep-first-last", f->keep_first_last, "Leave the first and last weight layers dense");
  sub->add_option("--roles", c->roles, "Eligible roles (default: conv,convtranspose,gemm,matmul)")
      ->delimiter(',')
      ->transform(CLI::CheckedTransformer(kRoles, CLI::ignore_case));
  sub->add_option("--report", c->report, "Write the per-tensor report as JSON to this file");
  sub->add_flag("!--no-check", c->check, "Do not run ONNX's checker");
  sub->add_flag("-q,--quiet", c->quiet, "Print only errors");
  AddReconstructOptions(sub, &c->reconstruct, /*with_saliency=*/true, /*with_steps=*/unstructured);
}

void PrintReport(const PruneReport& r) {
  std::vector<std::vector<std::string>> rows = {{"tensor", "role", "shape", "params", "before", "after", "zeroed", "note"}};
  for (const auto& t : r.tensors) {
    auto frac = [&](int64_t z) { return t.parameters ? Percent(static_cast<double>(z) / t.parameters) : "-"; };
    rows.push_back({t.name, t.role, ShapeToString(t.shape), Grouped(t.parameters), frac(t.zeros_before), frac(t.zeros_after),
                    Grouped(t.zeros_after - t.zeros_before), t.pruned ? "" : "skipped: " + t.reason});
  }
  PrintTable(rows, {3, 4, 5, 6});
  const auto frac = [&](int64_t z) { return r.parameters ? Percent(static_cast<double>(z) / r.parameters) : "-"; };
  std::cout << "\npruned " << Grouped(r.parameters) << " parameters in "
            << std::count_if(r.tensors.begin(), r.tensors.end(), [](const auto& t) { return t.pruned; })
            << " tensors: sparsity " << frac(r.zeros_before) << " -> " << frac(r.zeros_after) << "\n";
  for (const auto& n : r.notices) std::cout << "notice: " << n << "\n";
  PrintRefits(r.refits);
}

// Loads, prunes with `prune` (or `refit` with calibration data when
// --reconstruct is given), reports and saves.
template <class PruneFn, class RefitFn>
int RunPrune(const PruneCommon& c, PruneFn prune, RefitFn refit) {
  if (auto s = CheckReconstructFlags(c.reconstruct); !s.ok()) return Fail(s);
  if (auto s = CheckNotSameFile(c.model, c.output); !s.ok()) return Fail(s);
  if (auto s = CheckReportPath(c.report, c.model, c.output); !s.ok()) return Fail(s);
  auto model = LoadModel(c.model);
  if (!model.ok()) return Fail(model.status());
  Result<PruneReport> report = InvalidArgument("not run");
  if (c.reconstruct.enabled) {
    NpyArray x;
    auto data = LoadCalibration(*model, c.reconstruct, &x);
    if (!data.ok()) return Fail(data.status());
    report = refit(*model, *data, c.reconstruct.options);
  } else {
    report = prune(*model);
  }
  if (!report.ok()) return Fail(report.status());
  if (!c.quiet) PrintReport(*report);
  if (const int code = CheckAndSave(*model, c.output, c.save, c.check); code != kExitOk) return code;
  if (const int code = WriteReport(c.report, PruneReportJson(*report)); code != kExitOk) return code;
  if (!c.quiet) std::cout << "wrote " << c.output << "\n";
  return kExitOk;
}

Result<std::vector<std::pair<std::string, double>>> ParseLayers(const std::vector<std::string>& specs) {
  std::vector<std::pair<std::string, double>> out;
  for (const std::string& s : specs) {
    const size_t eq = s.rfind('=');
    double v = 0;
    try {
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument(s);
      size_t used = 0;
      v = std::stod(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1) throw std::invalid_argument(s);
    } catch (const std::exception&) {
      return InvalidArgument("--layer expects NAME=SPARSITY, got '" + s + "'");
    }
    out.emplace_back(s.substr(0, eq), v);
  }
  return out;
}

}  // namespace

void SetupPrune(CLI::App& app, int* exit_code) {
  CLI::App* prune = app.add_subcommand("prune", "Prune weights: unstructured, N:M, or whole channels");
  prune->require_subcommand(1);

  auto u = std::make_shared<UnstructuredCmd>();
  CLI::App* us = prune->add_subcommand("unstructured", "Zero the smallest weights, per tensor or globally");
  AddCommon(us, &u->common, &u->options.filter, /*unstructured=*/true);
  us->add_option("--sparsity", u->options.sparsity, "Fraction of weights zeroed, in [0, 1)")->required();
  us->add_option("--scope", u->options.scope, "layer: every tensor reaches the sparsity; global: one threshold")
      ->transform(CLI::CheckedTransformer(kScopes, CLI::ignore_case))
      ->default_str("layer");
  us->add_option("--layer", u->layers, "Per-tensor sparsity override NAME=S (repeatable)");
  us->add_option("--threads", u->options.threads, "Threads (0: all cores)")->default_val(0);
  us->callback([u, exit_code] {
    if (!u->common.roles.empty()) u->options.filter.roles = u->common.roles;
    auto layers = ParseLayers(u->layers);
    if (!layers.ok()) {
      *exit_code = Fail(layers.status());
      return;
    }
    u->options.layer_sparsity = *layers;
    *exit_code = RunPrune(
        u->common, [&](Model& m) { return PruneUnstructuredOnSave(m, u->options, &u->common.save); },
        [&](Model& m, const quant::CalibrationData& d, const ReconstructOptions& r) {
          return PruneUnstructuredReconstructed(m, u->options, d, r);
        });
  });

  auto nm = std::make_shared<NMCmd>();
  CLI::App* ns = prune->add_subcommand("nm", "Keep the N largest of every M weights along the reduction axis (e.g. 2:4)");
  AddCommon(ns, &nm->common, &nm->options.filter, /*unstructured=*/false);
  ns->add_option("--n", nm->options.n, "Weights kept per group")->default_val(2);
  ns->add_option("--m", nm->options.m, "Group size")->default_val(4);
  ns->callback([nm, exit_code] {
    if (!nm->common.roles.empty()) nm->options.filter.roles = nm->common.roles;
    *exit_code = RunPrune(
        nm->common, [&](Model& m) { return PruneNM(m, nm->options); },
        [&](Model& m, const quant::CalibrationData& d, const ReconstructOptions& r) {
          return PruneNMReconstructed(m, nm->options, d, r);
        });
  });

  SetupPruneChannels(prune, exit_code);
}

}  // namespace modelpress::cli
