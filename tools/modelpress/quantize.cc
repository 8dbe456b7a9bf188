// modelpress quantize MODEL -o OUT --mode weight-only|static: post-training
// INT8 quantization in QDQ form.
#include <cmath>
#include <iostream>
#include <map>

#include "cli_common.h"
#include "modelpress/npy.h"
#include "modelpress/quant.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

struct QuantizeCmd {
  std::string model;                 // input .onnx
  std::string output;                // output .onnx
  SaveOptions save;                  // where tensor data goes
  quant::QuantizeOptions options;    // what and how to quantize
  bool per_tensor = false;           // --per-tensor: one scale per weight
  std::string calib_data;            // static: .npy of calibration samples
  int64_t samples = 0;               // static: samples used (0: all of the file)
  std::string report;                // JSON report path ("" = none)
  bool check = true;                 // run ONNX's checker before saving
  bool quiet = false;                // no table on stdout
};

const std::map<std::string, quant::QuantMode> kModes = {{"weight-only", quant::QuantMode::kWeightOnly},
                                                        {"static", quant::QuantMode::kStatic}};
const std::map<std::string, quant::CalibrationMethod> kMethods = {{"minmax", quant::CalibrationMethod::kMinMax},
                                                                  {"percentile", quant::CalibrationMethod::kPercentile},
                                                                  {"entropy", quant::CalibrationMethod::kEntropy}};
const std::map<std::string, quant::Scheme> kSchemes = {{"uint8", quant::Scheme::kUint8Asymmetric},
                                                       {"int8", quant::Scheme::kInt8Symmetric}};

std::string Num(double v, const char* fmt = "%.3g") {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void PrintReport(const quant::QuantReport& r) {
  std::vector<std::vector<std::string>> rows = {{"tensor", "kind", "node", "type", "scale", "zero point", "SQNR dB", "zeros"}};
  for (const auto& t : r.tensors) {
    std::string scale;
    if (t.scales.size() == 1) {
      scale = Num(t.scales[0]);
    } else if (!t.scales.empty()) {
      const auto [lo, hi] = std::minmax_element(t.scales.begin(), t.scales.end());
      scale = Num(*lo) + ".." + Num(*hi) + " (" + std::to_string(t.scales.size()) + " ch)";
    }
    std::string zeros;
    if (t.kind == "weight") zeros = Grouped(t.zeros_before) + " -> " + Grouped(t.zeros_after);
    rows.push_back({t.name, t.kind, t.node, t.dtype, scale, t.zero_points.empty() ? "" : std::to_string(t.zero_points[0]),
                    t.has_sqnr ? Num(t.sqnr_db, "%.1f") : "-", zeros});
  }
  PrintTable(rows, {4, 5, 6});
  for (const auto& s : r.skipped) std::cout << "left float: " << s.name << " (" << s.op_type << "): " << s.reason << "\n";
  std::cout << "\n" << r.mode << (r.per_channel ? " per-channel" : " per-tensor");
  if (!r.calibration.empty()) {
    std::cout << ", activations " << r.activations << ", " << r.calibration << " calibration on "
              << Grouped(r.calibration_samples) << " samples";
  }
  std::cout << ": weights " << HumanBytes(r.weight_bytes_before) << " -> " << HumanBytes(r.weight_bytes_after) << "\n";
  for (const auto& n : r.notices) std::cout << "notice: " << n << "\n";
}

int RunQuantize(QuantizeCmd& c) {
  c.options.per_channel = !c.per_tensor;
  const bool is_static = c.options.mode == quant::QuantMode::kStatic;
  if (is_static && c.calib_data.empty()) return Fail(InvalidArgument("--mode static needs --calib-data X.npy"));
  if (!is_static && !c.calib_data.empty()) {
    return Fail(InvalidArgument("--calib-data is only used by --mode static; weight-only needs no data"));
  }
  if (auto s = CheckNotSameFile(c.model, c.output); !s.ok()) return Fail(s);
  if (auto s = CheckReportPath(c.report, c.model, c.output); !s.ok()) return Fail(s);
  auto model = LoadModel(c.model);
  if (!model.ok()) return Fail(model.status());
  Result<quant::QuantReport> report = InvalidArgument("not run");
  if (is_static) {
    auto x = ReadNpy(c.calib_data);
    if (!x.ok()) return Fail(x.status());
    auto data = quant::NpyCalibrationData(*model, *x, c.calib_data, c.samples, c.options.calibration.batch);
    if (!data.ok()) return Fail(data.status());
    report = quant::Quantize(*model, c.options, &*data);
  } else {
    report = quant::Quantize(*model, c.options);
  }
  if (!report.ok()) return Fail(report.status());
  if (!c.quiet) PrintReport(*report);
  if (const int code = CheckAndSave(*model, c.output, c.save, c.check); code != kExitOk) return code;
  if (const int code = WriteReport(c.report, quant::QuantReportJson(*report)); code != kExitOk) return code;
  if (!c.quiet) std::cout << "wrote " << c.output << "\n";
  return kExitOk;
}

}  // namespace

void SetupQuantize(CLI::App& app, int* exit_code) {
  auto c = std::make_shared<QuantizeCmd>();
  CLI::App* sub = app.add_subcommand("quantize", "Post-training INT8 quantization (QDQ): weight-only or static");
  sub->add_option("model", c->model, "ONNX model file")->required();
  AddModelOutputOptions(sub, &c->output, &c->save);
  sub->add_option("--mode", c->options.mode, "weight-only: int8 weights; static: also activations, calibrated")
      ->transform(CLI::CheckedTransformer(kModes, CLI::ignore_case))
      ->default_str("weight-only");
  sub->add_flag("--per-tensor", c->per_tensor, "One scale per weight tensor instead of one per output channel");
  sub->add_flag("--reduce-range", c->options.reduce_range,
                "Weights in [-63, 63]: for ONNX Runtime on x86 CPUs without VNNI, whose u8 x s8 kernels saturate");
  sub->add_option("--calib-data", c->calib_data, "static: calibration samples as .npy (float32, first dim = samples)");
  sub->add_option("--samples", c->samples, "static: use the first N samples (default: all)")->default_val(0);
  sub->add_option("--batch", c->options.calibration.batch, "static: samples per calibration run")->default_val(32);
  sub->add_option("--calibrate", c->options.calibration.method, "static: minmax, percentile or entropy")
      ->transform(CLI::CheckedTransformer(kMethods, CLI::ignore_case))
      ->default_str("minmax");
  sub->add_option("--percentile", c->options.calibration.percentile, "static: percent of |x| kept for percentile")
      ->default_val(99.999);
  sub->add_option("--activations", c->options.activations, "static: uint8 (asymmetric) or int8 (symmetric, TensorRT)")
      ->transform(CLI::CheckedTransformer(kSchemes, CLI::ignore_case))
      ->default_str("uint8");
  sub->add_option("--exclude", c->options.exclude, "Leave nodes (or weights) whose name matches this regex in float");
  sub->add_option("--op-types", c->options.op_types, "Operators to quantize (default Conv,ConvTranspose,Gemm,MatMul)")
      ->delimiter(',');
  sub->add_option("--threads", c->options.threads, "Threads for weight quantization (0: all cores)")->default_val(0);
  sub->add_option("--report", c->report, "Write the per-tensor report as JSON to this file");
  sub->add_flag("!--no-check", c->check, "Do not run ONNX's checker");
  sub->add_flag("-q,--quiet", c->quiet, "Print only errors");
  sub->callback([c, exit_code] { *exit_code = RunQuantize(*c); });
}

}  // namespace modelpress::cli
