// modelpress compress MODEL --recipe R -o OUTDIR: a recipe's stages in one
// run, with model.onnx, model.mpk, report.json and report.html as output.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "modelpress/pipeline.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

struct CompressCmd {
  std::string model;        // input .onnx
  std::string recipe;       // recipe .yaml
  std::string output;       // output folder
  std::string calib_data;   // overrides the recipe's calibration data
  std::string eval_data;    // samples for top-1 before/after
  std::string eval_labels;  // their labels
  int64_t eval_batch = 32;  // samples per executor run
  bool no_reference = false;  // skip zstd/gzip/xz reference sizes
  bool quiet = false;       // nothing but errors
  bool json = false;        // summary as JSON on stdout
};

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// One status line on a terminal, rewritten in place: stage, tensors, bytes, ETA.
void ShowProgress(const pipeline::Progress& p) {
  std::string eta = "-";
  if (p.done_bytes > 0 && p.done_bytes < p.total_bytes) {
    const double left = p.elapsed_s * static_cast<double>(p.total_bytes - p.done_bytes) / static_cast<double>(p.done_bytes);
    eta = Fixed(left, 1) + " s";
  }
  std::cerr << "\r\033[K[" << p.stage << "/" << p.stages << "] " << p.name << (p.finished ? " done" : " ...") << "  "
            << p.tensors << " tensors, " << HumanBytes(p.done_bytes) << " / " << HumanBytes(p.total_bytes) << ", ETA "
            << eta << std::flush;
}

int RunCompress(const CompressCmd& c) {
  auto recipe = pipeline::LoadRecipe(c.recipe);
  if (!recipe.ok()) return Fail(recipe.status());
  pipeline::CompressOptions o;
  o.output_dir = c.output;
  o.calib_data = c.calib_data;
  o.eval_data = c.eval_data;
  o.eval_labels = c.eval_labels;
  o.eval_batch = c.eval_batch;
  o.reference_compressors = !c.no_reference;
  const bool show = !c.quiet && isatty(STDERR_FILENO);
  if (show) o.progress = ShowProgress;
  auto r = pipeline::Compress(c.model, *recipe, o);
  if (show) std::cerr << "\r\033[K" << std::flush;
  if (!r.ok()) return Fail(r.status());
  const double ratio = r->artifact_bytes ? static_cast<double>(r->onnx_bytes_before) / static_cast<double>(r->artifact_bytes) : 0;
  if (c.json) {
    nlohmann::json j = {{"model", c.model},
                        {"recipe", c.recipe},
                        {"output", c.output},
                        {"onnx_bytes_before", r->onnx_bytes_before},
                        {"onnx_bytes_after", r->onnx_bytes_after},
                        {"artifact_bytes", r->artifact_bytes},
                        {"ratio", ratio}};
    if (r->top1_before) j["top1_before"] = *r->top1_before;
    if (r->top1_after) j["top1_after"] = *r->top1_after;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (c.quiet) return kExitOk;
  std::vector<std::vector<std::string>> rows = {{"", "before", "after"},
                                                {"ONNX", HumanBytes(r->onnx_bytes_before), HumanBytes(r->onnx_bytes_after)},
                                                {"artifact", "", HumanBytes(r->artifact_bytes)}};
  if (r->top1_before && r->top1_after) {
    rows.push_back({"top-1", Percent(*r->top1_before), Percent(*r->top1_after)});
  }
  PrintTable(rows, {1, 2});
  std::cout << "\nONNX before / artifact: " << Fixed(ratio, 1) << "x\n";
  std::cout << "wrote " << c.output << "/{model.onnx, model.mpk, report.json, report.html}\n";
  return kExitOk;
}

}  // namespace

void SetupCompress(CLI::App& app, int* exit_code) {
  auto c = std::make_shared<CompressCmd>();
  CLI::App* sub = app.add_subcommand("compress", "Run a recipe (prune, quantize, pack) and write a report");
  sub->add_option("model", c->model, "ONNX model file")->required();
  sub->add_option("--recipe", c->recipe, "Recipe file (YAML, see docs/recipes.md)")->required();
  sub->add_option("-o,--output", c->output, "Output folder (must not exist, or be empty)")->required();
  sub->add_option("--calib-data", c->calib_data, "Calibration samples (.npy) for static quantization; wins over the recipe's");
  sub->add_option("--eval-data", c->eval_data, "Samples (.npy) for top-1 accuracy before and after");
  sub->add_option("--eval-labels", c->eval_labels, "Integer labels (.npy) of --eval-data");
  sub->add_option("--eval-batch", c->eval_batch, "Samples per executor run when evaluating")->default_val(32)->check(CLI::PositiveNumber);
  sub->add_flag("--no-reference-sizes", c->no_reference, "Do not measure zstd -19, gzip -9 and xz -9e of the input");
  sub->add_flag("-q,--quiet", c->quiet, "Print only errors (no progress, no table)");
  sub->add_flag("--json", c->json, "Print the summary as JSON on stdout");
  sub->callback([c, exit_code] { *exit_code = RunCompress(*c); });
}

}  // namespace modelpress::cli
