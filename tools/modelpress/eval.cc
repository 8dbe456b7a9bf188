// modelpress eval MODEL --input X.npy [--labels Y.npy] [--compare OTHER.onnx]:
// runs a model over samples with the reference executor; top-1 accuracy and
// agreement with another model.
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "modelpress/evaluate.h"
#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/runtime.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

struct EvalOptions {
  std::string model;    // path of the .onnx file
  std::string input;    // .npy of samples along the first dim
  std::string labels;   // optional .npy of integer labels, [N] or [N, 1]
  std::string compare;  // optional second model run on the same samples
  bool json = false;    // print JSON instead of text
  int64_t batch = 32;   // samples per run when the model's batch dim is free (default 32)
};

// One model ready to run: the Model must outlive its Executor.
struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<runtime::Executor> exec;
  int64_t fixed_batch = 0;  // the model's fixed batch dim, 0 when free
};

Result<Loaded> LoadForEval(const std::string& path, const NpyArray& x, const std::string& x_name) {
  MP_ASSIGN_OR_RETURN(Model m, LoadModel(path));
  Loaded l;
  l.model = std::make_unique<Model>(std::move(m));
  MP_ASSIGN_OR_RETURN(runtime::Executor e, runtime::Executor::Create(*l.model));
  l.exec = std::make_unique<runtime::Executor>(std::move(e));
  MP_ASSIGN_OR_RETURN(l.fixed_batch, runtime::CheckSamples(*l.exec, path, x, x_name));
  return l;
}

Result<std::vector<float>> RunRows(const Loaded& l, const NpyArray& x, int64_t start, int64_t count, int64_t rows,
                                   int64_t* row_size) {
  return runtime::RunRows(*l.exec, l.model->source(), x, start, count, rows, row_size);
}

using runtime::Argmax;
using runtime::ReadLabels;

struct CompareStats {
  double max_abs_diff = 0;   // over every output element
  double cosine_sum = 0;     // sum over samples of cosine similarity
  double min_cosine = 1;     // smallest per-sample cosine similarity
  int64_t agree = 0;         // samples whose argmax is the same
};

double Cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t j = 0; j < n; ++j) {
    ab += static_cast<double>(a[j]) * b[j];
    aa += static_cast<double>(a[j]) * a[j];
    bb += static_cast<double>(b[j]) * b[j];
  }
  if (aa == 0 && bb == 0) return 1.0;  // two all-zero outputs agree completely
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

Status Evaluate(const EvalOptions& o, nlohmann::json* report) {
  if (o.batch < 1) return InvalidArgument("--batch must be at least 1");
  MP_ASSIGN_OR_RETURN(NpyArray x, ReadNpy(o.input));
  if (x.shape.empty() || x.shape[0] == 0) return Corrupt(o.input + ": holds no samples (needs a leading sample dim)");
  const int64_t samples = x.shape[0];
  MP_ASSIGN_OR_RETURN(Loaded a, LoadForEval(o.model, x, o.input));
  std::optional<Loaded> b;
  if (!o.compare.empty()) {
    MP_ASSIGN_OR_RETURN(b, LoadForEval(o.compare, x, o.input));
  }
  std::vector<int64_t> labels;
  if (!o.labels.empty()) {
    MP_ASSIGN_OR_RETURN(labels, ReadLabels(o.labels, samples));
  }

  // A fixed batch dim (often 1) is honoured, padding the last batch with zeros.
  const int64_t fixed = a.fixed_batch;
  if (b && b->fixed_batch != fixed) {
    return Unsupported(o.compare + ": its batch dim differs from " + o.model + "'s; compare models of the same input shape");
  }
  const int64_t batch = fixed > 0 ? fixed : o.batch;
  int64_t correct = 0, classes = 0;
  CompareStats cmp;
  const auto t0 = std::chrono::steady_clock::now();
  double seconds_b = 0;
  for (int64_t start = 0; start < samples; start += batch) {
    const int64_t count = std::min(batch, samples - start);
    const int64_t rows = fixed > 0 ? fixed : count;
    int64_t n = 0;
    MP_ASSIGN_OR_RETURN(std::vector<float> ya, RunRows(a, x, start, count, rows, &n));
    classes = n;
    for (int64_t i = 0; i < count; ++i) {
      if (!labels.empty() && n > 0 && Argmax(&ya[i * n], n) == labels[start + i]) ++correct;
    }
    if (b) {
      const auto tb = std::chrono::steady_clock::now();
      int64_t nb = 0;
      MP_ASSIGN_OR_RETURN(std::vector<float> yb, RunRows(*b, x, start, count, rows, &nb));
      seconds_b += std::chrono::duration<double>(std::chrono::steady_clock::now() - tb).count();
      if (nb != n) {
        return Unsupported(o.compare + ": gives " + std::to_string(nb) + " values per sample, " + o.model + " gives " +
                           std::to_string(n));
      }
      for (size_t j = 0; j < ya.size(); ++j) {
        const double d = std::abs(static_cast<double>(ya[j]) - yb[j]);
        // NaN on either side is as far apart as can be.
        cmp.max_abs_diff = std::isnan(d) ? INFINITY : std::max(cmp.max_abs_diff, d);
      }
      for (int64_t i = 0; i < count; ++i) {
        const double cs = Cosine(&ya[i * n], &yb[i * n], n);
        cmp.cosine_sum += cs;
        cmp.min_cosine = std::min(cmp.min_cosine, cs);
        if (n > 0 && Argmax(&ya[i * n], n) == Argmax(&yb[i * n], n)) ++cmp.agree;
      }
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - seconds_b;

  nlohmann::json& j = *report;
  j["model"] = o.model;
  j["input"] = o.input;
  j["samples"] = samples;
  j["batch"] = batch;
  j["output"] = a.exec->outputs()[0].name;
  j["values_per_sample"] = classes;
  j["seconds"] = seconds;
  if (!labels.empty()) {
    j["labels"] = o.labels;
    j["correct"] = correct;
    j["top1"] = static_cast<double>(correct) / static_cast<double>(samples);
  }
  if (b) {
    // JSON has no infinity; a NaN/infinite difference is reported as a string.
    nlohmann::json diff = std::isfinite(cmp.max_abs_diff) ? nlohmann::json(cmp.max_abs_diff) : nlohmann::json("Infinity");
    j["compare"] = {{"model", o.compare},
                    {"max_abs_diff", diff},
                    {"mean_cosine", cmp.cosine_sum / static_cast<double>(samples)},
                    {"min_cosine", cmp.min_cosine},
                    {"top1_agreement", static_cast<double>(cmp.agree) / static_cast<double>(samples)},
                    {"seconds", seconds_b}};
  }
  return Status::Ok();
}

int RunEval(const EvalOptions& o) {
  nlohmann::json j;
  if (Status s = Evaluate(o, &j); !s.ok()) return Fail(s);
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  char buf[256];
  std::cout << "model     " << o.model << "\n";
  std::cout << "samples   " << j["samples"].get<int64_t>() << " from " << o.input << " (batch " << j["batch"].get<int64_t>()
            << ", output '" << j["output"].get<std::string>() << "', " << j["values_per_sample"].get<int64_t>()
            << " values per sample)\n";
  std::snprintf(buf, sizeof buf, "%.3f s", j["seconds"].get<double>());
  std::cout << "time      " << buf << "\n";
  if (j.contains("top1")) {
    std::snprintf(buf, sizeof buf, "%.4f (%lld/%lld)", j["top1"].get<double>(),
                  static_cast<long long>(j["correct"].get<int64_t>()), static_cast<long long>(j["samples"].get<int64_t>()));
    std::cout << "top-1     " << buf << "\n";
  }
  if (j.contains("compare")) {
    const auto& c = j["compare"];
    std::cout << "compare   " << o.compare << "\n";
    if (c["max_abs_diff"].is_string()) {
      std::cout << "  max abs diff     " << c["max_abs_diff"].get<std::string>() << "\n";
    } else {
      std::snprintf(buf, sizeof buf, "%.6g", c["max_abs_diff"].get<double>());
      std::cout << "  max abs diff     " << buf << "\n";
    }
    std::snprintf(buf, sizeof buf, "%.6f (min %.6f)", c["mean_cosine"].get<double>(), c["min_cosine"].get<double>());
    std::cout << "  mean cosine      " << buf << "\n";
    std::snprintf(buf, sizeof buf, "%.4f", c["top1_agreement"].get<double>());
    std::cout << "  top-1 agreement  " << buf << "\n";
  }
  return kExitOk;
}

}  // namespace

void SetupEval(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub = app.add_subcommand("eval", "Run a model on samples with the reference executor: accuracy, agreement");
  sub->add_option("model", o->model, "ONNX model file")->required();
  sub->add_option("--input", o->input, "Samples as .npy (float32 or int64, C order), first dim = samples")->required();
  sub->add_option("--labels", o->labels, "Integer labels as .npy, [N] or [N,1]: prints top-1 accuracy");
  sub->add_option("--compare", o->compare,
                  "Another ONNX model run on the same samples: max abs diff, cosine similarity, top-1 agreement");
  sub->add_flag("--json", o->json, "Print JSON instead of text");
  sub->add_option("--batch", o->batch, "Samples per run when the model's batch dim is not fixed")->default_val(32);
  sub->callback([o, exit_code] { *exit_code = RunEval(*o); });
}

}  // namespace modelpress::cli
