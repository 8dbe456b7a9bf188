// The compress pipeline: recipe stages on one in-memory model, then save,
// pack, evaluate and report, all inside a temporary folder renamed at the end.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "modelpress/evaluate.h"
#include "modelpress/graph.h"
#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/pipeline.h"
#include "pipeline/internal.h"

namespace modelpress::pipeline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Removes the temporary output folder unless released.
class TempOutput {
 public:
  explicit TempOutput(fs::path p) : path_(std::move(p)) {}
  ~TempOutput() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
  }
  const fs::path& path() const { return path_; }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

Status WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return IoError(p.string() + ": cannot write");
  return Status::Ok();
}

uint64_t FileBytes(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// The .onnx file plus every external data file it names.
uint64_t ModelBytes(const Model& model, const fs::path& path) {
  uint64_t total = FileBytes(path);
  std::set<std::string> files;
  for (const TensorEntry& t : model.tensors()) {
    if (t.proto->data_location() != onnx::TensorProto::EXTERNAL) continue;
    for (const auto& kv : t.proto->external_data()) {
      if (kv.key() == "location") files.insert(kv.value());
    }
  }
  for (const std::string& f : files) total += FileBytes(model.base_dir() / f);
  return total;
}

// One linear weight of the input model followed through the stages.
struct Layer {
  std::string name;
  std::string role;
  std::vector<int64_t> shape;
  int64_t parameters = 0;
  int64_t zeros = 0;
  uint64_t bytes = 0;
};

std::vector<Layer> LinearWeights(const Model& model) {
  std::vector<Layer> out;
  const std::vector<WeightInfo> info = AnalyzeWeights(model);
  for (size_t i = 0; i < info.size(); ++i) {
    if (!IsLinearWeight(info[i].role)) continue;
    auto v = model.View(model.tensors()[i]);
    if (!v.ok()) continue;
    Layer l;
    l.name = info[i].name;
    l.role = std::string(WeightRoleName(info[i].role));
    l.shape = v->shape();
    l.parameters = v->size();
    for (int64_t k = 0; k < v->size(); ++k) l.zeros += v->IsZero(k);
    l.bytes = v->packed_bytes();
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<double> Values(const TensorView& v) {
  std::vector<double> out(static_cast<size_t>(v.size()));
  for (int64_t i = 0; i < v.size(); ++i) out[i] = v.AsDouble(i);
  return out;
}

// Histogram of the nonzero values over [-range, range]; exact zeros are counted apart.
json Histogram(const std::vector<double>& values, double range, int bins) {
  std::vector<int64_t> counts(static_cast<size_t>(bins), 0);
  int64_t zeros = 0;
  for (double x : values) {
    if (x == 0) {
      ++zeros;
      continue;
    }
    int b = range > 0 ? static_cast<int>(std::floor((x + range) / (2 * range) * bins)) : bins / 2;
    counts[std::clamp(b, 0, bins - 1)]++;
  }
  return {{"min", -range}, {"max", range}, {"zeros", zeros}, {"counts", counts}};
}

// The float values a quantized weight stands for: its int8 initializer times its scales.
std::optional<std::vector<double>> Dequantized(const Model& model, const quant::QuantTensorReport& t) {
  auto q = model.View(t.name + "_quantized");
  if (!q.ok() || q->size() == 0 || t.scales.empty()) return std::nullopt;
  std::vector<double> out(static_cast<size_t>(q->size()));
  const auto& shape = q->shape();
  int64_t inner = 1;
  if (t.axis >= 0) {
    for (size_t d = t.axis + 1; d < shape.size(); ++d) inner *= shape[d];
  }
  for (int64_t i = 0; i < q->size(); ++i) {
    size_t c = 0;
    if (t.axis >= 0 && t.scales.size() > 1) c = static_cast<size_t>((i / inner) % shape[t.axis]);
    out[i] = q->AsDouble(i) * t.scales[std::min(c, t.scales.size() - 1)];
  }
  return out;
}

json ParseOrText(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(text) : j;
}

json Number(double v) { return std::isfinite(v) ? json(v) : json(v > 0 ? "Infinity" : "-Infinity"); }

struct Clock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double Seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

}  // namespace

Result<CompressReport> Compress(const fs::path& model_path, const Recipe& recipe, const CompressOptions& options) {
  const Clock clock;
  if (options.output_dir.empty()) return InvalidArgument("no output folder given");
  if (options.eval_data.empty() != options.eval_labels.empty()) {
    return InvalidArgument("evaluation needs both samples and labels (--eval-data X.npy --eval-labels Y.npy)");
  }
  if (recipe.stages.empty()) return InvalidArgument(recipe.source + ": the recipe has no stages");
  fs::path out_dir = fs::absolute(options.output_dir).lexically_normal();
  if (out_dir.filename().empty()) out_dir = out_dir.parent_path();  // "out/" names the folder "out"
  std::error_code ec;
  if (fs::exists(out_dir, ec)) {
    if (!fs::is_directory(out_dir, ec)) return InvalidArgument(out_dir.string() + ": exists and is not a folder");
    if (!fs::is_empty(out_dir, ec)) {
      return InvalidArgument(out_dir.string() + ": exists and is not empty; compress writes a new folder");
    }
  }
  const fs::path parent = out_dir.has_parent_path() ? out_dir.parent_path() : fs::current_path();
  if (!fs::is_directory(parent, ec)) return NotFound(parent.string() + ": the output folder's parent does not exist");
  {
    // The input must never be inside what we write.
    const fs::path in = fs::weakly_canonical(model_path, ec);
    const auto rel = in.lexically_relative(fs::weakly_canonical(out_dir, ec));
    if (!rel.empty() && *rel.begin() != "..") {
      return InvalidArgument(out_dir.string() + ": the output folder contains the input model " + model_path.string());
    }
  }

  MP_ASSIGN_OR_RETURN(Model model, LoadModel(model_path));
  const uint64_t onnx_before = ModelBytes(model, model_path);

  // Which stages run: the recipe's, with a pack stage added when it has none.
  std::vector<Stage> stages = recipe.stages;
  if (!std::holds_alternative<PackStage>(stages.back())) stages.push_back(PackStage{});
  const fs::path calib_path = !options.calib_data.empty() ? options.calib_data : recipe.calib_data;
  for (const Stage& s : stages) {
    const auto* q = std::get_if<QuantizeStage>(&s);
    if (q && q->options.mode == quant::QuantMode::kStatic && calib_path.empty()) {
      return InvalidArgument(recipe.source + ": static quantization needs calibration data: give --calib-data X.npy "
                             "or 'calibration: {data: X.npy}' in the recipe");
    }
    const auto* p = std::get_if<PruneStage>(&s);
    const auto* c = std::get_if<PruneChannelsStage>(&s);
    if (((p && p->reconstruct.enabled) || (c && c->reconstruct.enabled)) && calib_path.empty()) {
      return InvalidArgument(recipe.source + ": pruning with reconstruction needs calibration data: give --calib-data "
                             "X.npy or 'calibration: {data: X.npy}' in the recipe");
    }
  }

  // Evaluation data is read before any work, so a bad file fails fast.
  std::optional<NpyArray> eval_x;
  std::vector<int64_t> eval_y;
  if (!options.eval_data.empty()) {
    MP_ASSIGN_OR_RETURN(eval_x, ReadNpy(options.eval_data));
    if (eval_x->shape.empty() || eval_x->shape[0] == 0) {
      return Corrupt(options.eval_data.string() + ": holds no samples (needs a leading sample dim)");
    }
    MP_ASSIGN_OR_RETURN(eval_y, runtime::ReadLabels(options.eval_labels.string(), eval_x->shape[0]));
  }

  const std::vector<Layer> layers_before = LinearWeights(model);
  uint64_t weight_bytes = 0;
  for (const Layer& l : layers_before) weight_bytes += l.bytes;
  weight_bytes = std::max<uint64_t>(weight_bytes, 1);

  // Progress: every stage (and each evaluation) counts as one pass over the weights.
  const int passes = static_cast<int>(stages.size()) + (eval_x ? 2 : 0);
  int pass = 0;
  uint64_t done = 0;
  auto report_progress = [&](const std::string& name, bool finished) {
    if (!finished) ++pass;
    if (finished) done += weight_bytes;
    if (!options.progress) return;
    Progress p;
    p.stage = pass;
    p.stages = passes;
    p.name = name;
    p.tensors = static_cast<int64_t>(layers_before.size());
    p.done_bytes = done;
    p.total_bytes = weight_bytes * static_cast<uint64_t>(passes);
    p.elapsed_s = clock.Seconds();
    p.finished = finished;
    options.progress(p);
  };

  json report;
  report["modelpress_version"] = "0.1.0";
  report["input"] = {{"model", model_path.string()}, {"onnx_bytes", onnx_before}};
  report["recipe"] = {{"file", recipe.source}, {"name", recipe.name}, {"description", recipe.description},
                      {"text", recipe.text}};

  CompressReport result;
  result.onnx_bytes_before = onnx_before;
  if (eval_x) {
    report_progress("evaluate", false);
    auto t = runtime::EvaluateTop1(model, *eval_x, options.eval_data.string(), eval_y, options.eval_batch);
    if (!t.ok()) return t.status().WithPrefix("evaluating the input model");
    result.top1_before = t->top1;
    report["accuracy"] = {{"data", options.eval_data.string()}, {"labels", options.eval_labels.string()},
                          {"samples", t->samples}, {"correct_before", t->correct}, {"top1_before", t->top1}};
    report_progress("evaluate", true);
  }

  // Histograms of the largest weights: before, after pruning, after quantization.
  std::vector<const Layer*> largest;
  for (const Layer& l : layers_before) largest.push_back(&l);
  std::stable_sort(largest.begin(), largest.end(),
                   [](const Layer* a, const Layer* b) { return a->parameters > b->parameters; });
  largest.resize(std::min<size_t>(largest.size(), static_cast<size_t>(std::max(options.histogram_layers, 0))));
  std::map<std::string, double> hist_range;
  json histograms = json::array();
  for (const Layer* l : largest) {
    auto v = model.View(l->name);
    if (!v.ok()) continue;
    const std::vector<double> values = Values(*v);
    double range = 0;
    for (double x : values) range = std::max(range, std::abs(x));
    hist_range[l->name] = range;
    histograms.push_back({{"name", l->name}, {"shape", l->shape}, {"before", Histogram(values, range, options.histogram_bins)}});
  }
  auto histogram_after = [&](const std::string& key, const std::function<std::optional<std::vector<double>>(const std::string&)>& get) {
    for (json& h : histograms) {
      const std::string name = h["name"];
      if (auto v = get(name)) h[key] = Histogram(*v, hist_range[name], options.histogram_bins);
    }
  };

  // The stages.
  std::optional<quant::QuantReport> quant_report;
  std::optional<pack::PackReport> pack_report;
  std::map<std::string, double> weight_sqnr;
  json stage_json = json::array();
  std::optional<NpyArray> calib_x;
  TempOutput tmp(parent / ("." + out_dir.filename().string() + ".tmp-" + std::to_string(::getpid())));
  fs::remove_all(tmp.path(), ec);
  if (!fs::create_directory(tmp.path(), ec)) {
    return IoError(tmp.path().string() + ": cannot create the temporary output folder: " + ec.message());
  }
  const fs::path onnx_out = tmp.path() / "model.onnx";
  const fs::path mpk_out = tmp.path() / "model.mpk";
  bool pruned_histograms = false;
  for (size_t i = 0; i < stages.size(); ++i) {
    const Stage& stage = stages[i];
    const std::string name = StageName(stage);
    report_progress(name, false);
    const Clock stage_clock;
    json sj = {{"stage", name}};
    const std::string where = recipe.source + ": stage " + std::to_string(i + 1) + " (" + name + ")";
    // Calibration data for a re-fit, read once; `samples` capped at what the file holds.
    auto refit_data = [&](const ReconstructSettings& rs) -> Result<quant::CalibrationData> {
      if (!calib_x) {
        MP_ASSIGN_OR_RETURN(calib_x, ReadNpy(calib_path));
      }
      const int64_t available = calib_x->shape.empty() ? 1 : std::max<int64_t>(calib_x->shape[0], 1);
      return quant::NpyCalibrationData(model, *calib_x, calib_path.string(), std::min(rs.samples, available),
                                       rs.options.batch);
    };
    if (const auto* p = std::get_if<PruneStage>(&stage)) {
      const bool nm = p->method == PruneStage::Method::kNM;
      Result<PruneReport> r = InvalidArgument("not run");
      if (p->reconstruct.enabled) {
        auto data = refit_data(p->reconstruct);
        if (!data.ok()) return data.status().WithPrefix(where);
        r = nm ? PruneNMReconstructed(model, p->nm, *data, p->reconstruct.options)
               : PruneUnstructuredReconstructed(model, p->unstructured, *data, p->reconstruct.options);
      } else {
        r = nm ? PruneNM(model, p->nm) : PruneUnstructured(model, p->unstructured);
      }
      if (!r.ok()) return r.status().WithPrefix(where);
      sj["report"] = ParseOrText(PruneReportJson(*r));
    } else if (const auto* c = std::get_if<PruneChannelsStage>(&stage)) {
      Result<ChannelPruneReport> r = InvalidArgument("not run");
      if (c->reconstruct.enabled) {
        auto data = refit_data(c->reconstruct);
        if (!data.ok()) return data.status().WithPrefix(where);
        r = PruneChannelsReconstructed(model, c->options, *data, c->reconstruct.options);
      } else {
        r = PruneChannels(model, c->options);
      }
      if (!r.ok()) return r.status().WithPrefix(where);
      sj["report"] = ParseOrText(ChannelPruneReportJson(*r));
    } else if (const auto* q = std::get_if<QuantizeStage>(&stage)) {
      // Histograms after pruning are those just before quantization.
      histogram_after("after_prune", [&](const std::string& n) -> std::optional<std::vector<double>> {
        auto v = model.View(n);
        if (!v.ok()) return std::nullopt;
        return Values(*v);
      });
      pruned_histograms = true;
      Result<quant::QuantReport> r = InvalidArgument("not run");
      if (q->options.mode == quant::QuantMode::kStatic) {
        if (!calib_x) {
          MP_ASSIGN_OR_RETURN(calib_x, ReadNpy(calib_path));
        }
        auto data = quant::NpyCalibrationData(model, *calib_x, calib_path.string(), q->samples, q->options.calibration.batch);
        if (!data.ok()) return data.status().WithPrefix(where);
        r = quant::Quantize(model, q->options, &*data);
      } else {
        r = quant::Quantize(model, q->options);
      }
      if (!r.ok()) return r.status().WithPrefix(where);
      quant_report = *r;
      sj["report"] = ParseOrText(quant::QuantReportJson(*r));
      for (const auto& t : r->tensors) {
        if (t.kind == "weight" && t.has_sqnr) weight_sqnr[t.name] = t.sqnr_db;
      }
      histogram_after("after_quant", [&](const std::string& n) -> std::optional<std::vector<double>> {
        for (const auto& t : r->tensors) {
          if (t.kind == "weight" && t.name == n) return Dequantized(model, t);
        }
        return std::nullopt;
      });
    } else if (const auto* k = std::get_if<PackStage>(&stage)) {
      if (!pruned_histograms) {
        histogram_after("after_prune", [&](const std::string& n) -> std::optional<std::vector<double>> {
          auto v = model.View(n);
          if (!v.ok()) return std::nullopt;
          return Values(*v);
        });
      }
      // The checked model is saved, then packed from the file so that the
      // artifact restores exactly these bytes.
      auto check = CheckModel(model);
      if (!check.ok()) return check.status().WithPrefix(where);
      if (!check->ran) sj["notice"] = check->notice;
      MP_RETURN_IF_ERROR(SaveModel(model, onnx_out));
      auto r = pack::PackModel(onnx_out, mpk_out, k->options);
      if (!r.ok()) return r.status().WithPrefix(where);
      pack_report = *r;
      json tensors = json::array();
      for (const auto& t : r->tensors) {
        tensors.push_back({{"name", t.name}, {"bytes", t.bytes}, {"stored_bytes", t.stored_bytes},
                           {"encoder", std::string(pack::EncoderName(t.encoder))}});
      }
      sj["report"] = {{"input_bytes", r->input_bytes}, {"artifact_bytes", r->artifact_bytes},
                      {"graph_stored_bytes", r->graph_stored_bytes}, {"exact_onnx", r->exact_onnx},
                      {"tensors", tensors}, {"inline_tensors", r->inline_tensors},
                      {"graph_tensors", r->graph_tensors}};
    }
    sj["seconds"] = stage_clock.Seconds();
    stage_json.push_back(std::move(sj));
    report_progress(name, true);
  }
  report["stages"] = stage_json;

  // The saved .onnx and its data file, if it has one: everything written but the artifact.
  for (const auto& e : fs::directory_iterator(tmp.path(), ec)) {
    if (e.path() != mpk_out) result.onnx_bytes_after += FileBytes(e.path());
  }
  result.artifact_bytes = FileBytes(mpk_out);

  if (eval_x) {
    report_progress("evaluate", false);
    auto t = runtime::EvaluateTop1(model, *eval_x, options.eval_data.string(), eval_y, options.eval_batch);
    if (!t.ok()) return t.status().WithPrefix("evaluating the compressed model");
    result.top1_after = t->top1;
    report["accuracy"]["correct_after"] = t->correct;
    report["accuracy"]["top1_after"] = t->top1;
    report_progress("evaluate", true);
  }

  // Per layer: the linear weights of the input and what became of them.
  const std::vector<Layer> layers_after = LinearWeights(model);
  std::map<std::string, const Layer*> after;
  for (const Layer& l : layers_after) after[l.name] = &l;
  json layers = json::array();
  int64_t params_before = 0, zeros_before = 0, params_after = 0, zeros_after = 0;
  for (const Layer& l : layers_before) {
    json j = {{"name", l.name}, {"role", l.role}, {"shape_before", l.shape}, {"parameters_before", l.parameters},
              {"zeros_before", l.zeros},
              {"sparsity_before", l.parameters ? static_cast<double>(l.zeros) / static_cast<double>(l.parameters) : 0.0}};
    // A quantized weight lives on as NAME_quantized (int8); a float one under its name.
    const Layer* a = nullptr;
    std::string onnx_name;
    for (const std::string& n : {l.name + "_quantized", l.name}) {
      if (auto it = after.find(n); it != after.end()) {
        a = it->second;
        onnx_name = n;
        break;
      }
    }
    params_before += l.parameters;
    zeros_before += l.zeros;
    if (a) {
      j["onnx_tensor"] = onnx_name;
      auto v = model.View(onnx_name);
      j["dtype_after"] = v.ok() ? DTypeName(v->dtype()) : "";
      j["shape_after"] = a->shape;
      j["parameters_after"] = a->parameters;
      j["zeros_after"] = a->zeros;
      j["sparsity_after"] = a->parameters ? static_cast<double>(a->zeros) / static_cast<double>(a->parameters) : 0.0;
      params_after += a->parameters;
      zeros_after += a->zeros;
    } else {
      j["onnx_tensor"] = nullptr;  // removed (e.g. a whole layer folded away)
    }
    if (auto it = weight_sqnr.find(l.name); it != weight_sqnr.end()) j["sqnr_db"] = Number(it->second);
    layers.push_back(std::move(j));
  }
  report["layers"] = layers;
  report["totals"] = {{"parameters_before", params_before}, {"zeros_before", zeros_before},
                      {"parameters_after", params_after}, {"zeros_after", zeros_after}};
  report["histograms"] = histograms;
  if (quant_report) {
    json acts = json::array();
    for (const auto& t : quant_report->tensors) {
      if (t.kind != "activation") continue;
      json a = {{"name", t.name}, {"dtype", t.dtype}, {"rmin", t.rmin}, {"rmax", t.rmax}};
      if (t.has_sqnr) a["sqnr_db"] = Number(t.sqnr_db);
      acts.push_back(std::move(a));
    }
    report["activations"] = acts;
  }

  json sizes = {{"onnx_before", onnx_before}, {"onnx_after", result.onnx_bytes_after},
                {"artifact", result.artifact_bytes},
                {"ratio_onnx_before_to_artifact",
                 result.artifact_bytes ? static_cast<double>(onnx_before) / static_cast<double>(result.artifact_bytes) : 0.0}};
  if (options.reference_compressors) {
    // For scale: what general-purpose compressors make of the input .onnx file.
    std::ifstream in(model_path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    json ref = json::array();
    for (const ReferenceSize& r : ReferenceSizes(bytes)) {
      ref.push_back({{"name", r.name}, {"bytes", r.bytes}});
    }
    sizes["reference"] = {{"of", "input .onnx file"}, {"bytes", bytes.size()}, {"compressors", ref}};
  }
  report["sizes"] = sizes;
  report["outputs"] = {{"folder", out_dir.string()}, {"onnx", (out_dir / "model.onnx").string()},
                       {"artifact", (out_dir / "model.mpk").string()}, {"html", (out_dir / "report.html").string()}};
  report["seconds"] = clock.Seconds();

  result.json = report.dump(2);
  MP_RETURN_IF_ERROR(WriteText(tmp.path() / "report.json", result.json + "\n"));
  MP_RETURN_IF_ERROR(WriteText(tmp.path() / "report.html", ReportHtml(result.json)));

  // The folder appears whole or not at all. An empty folder given as OUTDIR
  // is replaced (rename(2) replaces an empty directory).
  fs::rename(tmp.path(), out_dir, ec);
  if (ec) return IoError(out_dir.string() + ": cannot move the finished output into place: " + ec.message());
  tmp.Release();
  return result;
}

}  // namespace modelpress::pipeline
