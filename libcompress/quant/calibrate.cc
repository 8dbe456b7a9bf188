// Calibration: stream batches through the reference executor and feed the
// observed activations to one observer each. Nothing but the observers'
// statistics outlives a batch.
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "modelpress/quant.h"

namespace modelpress::quant {

Result<CalibrationData> NpyCalibrationData(const Model& model, const NpyArray& x, const std::string& name,
                                           int64_t samples, int64_t batch) {
  MP_ASSIGN_OR_RETURN(runtime::Executor exec, runtime::Executor::Create(model));
  if (exec.inputs().size() != 1) {
    return Unsupported(model.source() + ": calibration from one .npy needs a model with one input, this one has " +
                       std::to_string(exec.inputs().size()));
  }
  const runtime::ValueSpec& in = exec.inputs()[0];
  if (x.dtype != DType::kFloat32 || (in.dtype != DType::kUndefined && in.dtype != DType::kFloat32)) {
    return Corrupt(name + ": holds " + DTypeName(x.dtype) + " but calibration needs float32 for input '" + in.name +
                   "' of " + model.source() + " (declared " + DTypeName(in.dtype) + ")");
  }
  if (x.shape.empty() || x.shape[0] == 0) return InvalidArgument(name + ": holds no samples (needs a leading sample dim)");
  int64_t fixed = 0;
  MP_RETURN_IF_ERROR(runtime::CheckSamplesFit(in, x.shape, name, model.source()));
  if (in.has_shape && !in.shape.empty() && in.shape[0] > 0) fixed = in.shape[0];
  const int64_t available = x.shape[0];
  if (samples < 0) return InvalidArgument("the number of calibration samples must not be negative");
  if (samples == 0) samples = available;
  if (samples > available) {
    return InvalidArgument(name + ": holds " + std::to_string(available) + " samples, " + std::to_string(samples) +
                           " were asked for calibration");
  }
  if (batch < 1) return InvalidArgument("the calibration batch must be at least 1");
  const int64_t per = fixed > 0 ? fixed : batch;
  if (samples < per && fixed > 0) {
    return InvalidArgument(name + ": " + std::to_string(samples) + " samples are fewer than the model's fixed batch of " +
                           std::to_string(fixed));
  }
  CalibrationData d;
  d.source = name;
  // A fixed batch cannot take a partial last batch without padding, and
  // padding would bias the statistics: it is dropped instead.
  d.batches = fixed > 0 ? samples / fixed : (samples + per - 1) / per;
  d.samples = fixed > 0 ? d.batches * fixed : samples;
  const int64_t sample_elems = x.size() / available;
  const NpyArray* px = &x;
  d.batch = [px, per, sample_elems, total = d.samples](int64_t b) -> Result<std::vector<runtime::Tensor>> {
    const int64_t start = b * per;
    const int64_t count = std::min(per, total - start);
    if (b < 0 || count <= 0) return InvalidArgument("calibration batch " + std::to_string(b) + " does not exist");
    std::vector<int64_t> shape = px->shape;
    shape[0] = count;
    return std::vector<runtime::Tensor>{
        runtime::Tensor::Borrow(DType::kFloat32, shape, px->as<float>() + start * sample_elems)};
  };
  return d;
}

namespace {

// Runs every batch, calling `visit(name, tensor)` for the watched tensors.
template <class Visit>
Status RunBatches(const Model& model, const std::unordered_map<std::string, size_t>& watched,
                  const CalibrationData& data, std::vector<int64_t>* seen, Visit visit) {
  MP_ASSIGN_OR_RETURN(runtime::Executor exec, runtime::Executor::Create(model));
  Status problem;
  for (int64_t b = 0; b < data.batches; ++b) {
    MP_ASSIGN_OR_RETURN(std::vector<runtime::Tensor> inputs, data.batch(b));
    auto out = exec.Run(inputs, [&](const std::string& name, const runtime::Tensor& t) {
      auto it = watched.find(name);
      if (it == watched.end() || !problem.ok()) return;
      if (t.dtype() != DType::kFloat32) {
        problem = Unsupported(model.source() + ": tensor '" + name + "' is " + DTypeName(t.dtype()) +
                              ", only float32 activations can be calibrated");
        return;
      }
      ++(*seen)[it->second];
      visit(it->second, t.values<float>());
    });
    if (!out.ok()) return out.status().WithPrefix(data.source + ", calibration batch " + std::to_string(b));
    MP_RETURN_IF_ERROR(problem);
  }
  return Status::Ok();
}

}  // namespace

Result<CalibrationTable> Calibrate(const Model& model, const std::vector<std::string>& tensors,
                                   const CalibrationData& data, const CalibrationOptions& options) {
  if (options.method == CalibrationMethod::kPercentile && !(options.percentile > 0 && options.percentile <= 100)) {
    return InvalidArgument("percentile must be in (0, 100], got " + std::to_string(options.percentile));
  }
  if (options.bins < 1 || options.quantized_bins < 1) return InvalidArgument("histogram bins must be at least 1");
  if (data.batches < 1) return InvalidArgument(data.source + ": no calibration batches");
  std::unordered_map<std::string, size_t> watched;
  for (size_t i = 0; i < tensors.size(); ++i) watched.emplace(tensors[i], i);
  std::vector<RangeObserver> observers(tensors.size(), RangeObserver(options));
  std::vector<int64_t> seen(tensors.size(), 0);
  MP_RETURN_IF_ERROR(RunBatches(model, watched, data, &seen,
                                [&](size_t i, std::span<const float> v) { observers[i].Observe(v); }));
  CalibrationTable table;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const RangeObserver& o = observers[i];
    if (seen[i] == 0) {
      return NotFound(model.source() + ": tensor '" + tensors[i] + "' was never produced during calibration");
    }
    if (!std::isfinite(o.min()) || !std::isfinite(o.max())) {
      return Corrupt(data.source + ": tensor '" + tensors[i] + "' of " + model.source() +
                     " takes non-finite values on the calibration data; it cannot be quantized");
    }
    TensorRange r;
    std::tie(r.rmin, r.rmax) = o.Range();
    r.observed_min = o.min();
    r.observed_max = o.max();
    r.count = o.count();
    table[tensors[i]] = r;
  }
  return table;
}

Result<std::map<std::string, double>> MeasureActivationSqnr(const Model& model, const CalibrationTable& table,
                                                            const CalibrationData& data, Scheme scheme) {
  std::unordered_map<std::string, size_t> watched;
  std::vector<QuantParams> params;
  std::vector<std::string> names;
  for (const auto& [name, r] : table) {
    watched.emplace(name, names.size());
    names.push_back(name);
    params.push_back(ComputeParams(r.rmin, r.rmax, scheme));
  }
  std::vector<double> signal(names.size(), 0.0), noise(names.size(), 0.0);
  std::vector<int64_t> seen(names.size(), 0);
  MP_RETURN_IF_ERROR(RunBatches(model, watched, data, &seen, [&](size_t i, std::span<const float> v) {
    double s = 0, n = 0;
    for (float x : v) {
      const double d = static_cast<double>(x) - DequantizeValue(QuantizeValue(x, params[i], scheme), params[i]);
      s += static_cast<double>(x) * x;
      n += d * d;
    }
    signal[i] += s;
    noise[i] += n;
  }));
  std::map<std::string, double> out;
  for (size_t i = 0; i < names.size(); ++i) out[names[i]] = SqnrDb(signal[i], noise[i]);
  return out;
}

}  // namespace modelpress::quant
