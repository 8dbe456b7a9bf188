#include "modelpress/evaluate.h"

#include <algorithm>
#include <cstring>

namespace modelpress::runtime {

Result<int64_t> CheckSamples(const Executor& exec, const std::string& model_name, const NpyArray& x,
                             const std::string& x_name) {
  if (exec.inputs().size() != 1) {
    return Unsupported(model_name + ": eval needs a model with one input, this one has " +
                       std::to_string(exec.inputs().size()));
  }
  if (exec.outputs().empty()) return Unsupported(model_name + ": the model has no outputs");
  const ValueSpec& in = exec.inputs()[0];
  if (in.dtype != DType::kUndefined && in.dtype != x.dtype) {
    return Corrupt(x_name + ": holds " + DTypeName(x.dtype) + " but input '" + in.name + "' of " + model_name + " is " +
                   DTypeName(in.dtype));
  }
  MP_RETURN_IF_ERROR(CheckSamplesFit(in, x.shape, x_name, model_name));
  int64_t fixed_batch = 0;
  if (in.has_shape && !in.shape.empty() && in.shape[0] > 0) fixed_batch = in.shape[0];
  return fixed_batch;
}

Result<std::vector<float>> RunRows(const Executor& exec, const std::string& model_name, const NpyArray& x,
                                   int64_t start, int64_t count, int64_t rows, int64_t* row_size) {
  const int64_t sample = x.shape.empty() ? 1 : x.size() / std::max<int64_t>(x.shape[0], 1);
  const size_t es = DTypeSize(x.dtype);
  std::vector<int64_t> shape = x.shape;
  shape[0] = rows;
  Tensor t;
  if (rows == count) {
    t = Tensor::Borrow(x.dtype, shape, x.data.data() + start * sample * es);
  } else {
    MP_ASSIGN_OR_RETURN(t, Tensor::Zeros(x.dtype, shape));
    std::memcpy(t.mutable_data<std::byte>(), x.data.data() + start * sample * es, count * sample * es);
  }
  auto out = exec.Run({t});
  if (!out.ok()) {
    // The model cannot run on these samples: an inconsistency between the data and the model.
    const Status& s = out.status();
    return s.code() == StatusCode::kInvalidArgument ? Corrupt(s.message()) : s;
  }
  const Tensor& y = (*out)[0];
  if (y.rank() == 0 || y.shape()[0] != rows) {
    return Unsupported(model_name + ": first output '" + exec.outputs()[0].name + "' has shape " +
                       ShapeToString(y.shape()) + ", not [batch, ...]; eval needs the batch as its leading dim");
  }
  *row_size = rows > 0 ? y.size() / rows : 0;
  std::vector<float> v(static_cast<size_t>(count * *row_size));
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = y.dtype() == DType::kFloat32 ? y.data<float>()[i] : static_cast<float>(y.AsDouble(static_cast<int64_t>(i)));
  }
  return v;
}

int64_t Argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t j = 1; j < n; ++j) {
    if (v[j] > v[best]) best = j;
  }
  return best;
}

Result<std::vector<int64_t>> ReadLabels(const std::string& path, int64_t samples) {
  MP_ASSIGN_OR_RETURN(NpyArray y, ReadNpy(path));
  if (y.dtype != DType::kInt64 && y.dtype != DType::kInt32 && y.dtype != DType::kUint8 && y.dtype != DType::kInt8) {
    return Corrupt(path + ": labels must be integers, got " + DTypeName(y.dtype));
  }
  const bool shape_ok = (y.shape.size() == 1 || (y.shape.size() == 2 && y.shape[1] == 1)) && y.shape[0] == samples;
  if (!shape_ok) {
    return Corrupt(path + ": has shape " + ShapeToString(y.shape) + ", expected [" + std::to_string(samples) +
                   "] labels, one per sample of the input");
  }
  std::vector<int64_t> labels(static_cast<size_t>(samples));
  for (int64_t i = 0; i < samples; ++i) {
    switch (y.dtype) {
      case DType::kInt64: labels[i] = y.as<int64_t>()[i]; break;
      case DType::kInt32: labels[i] = y.as<int32_t>()[i]; break;
      case DType::kUint8: labels[i] = y.as<uint8_t>()[i]; break;
      default: labels[i] = y.as<int8_t>()[i]; break;
    }
  }
  return labels;
}

Result<Top1> EvaluateTop1(const Model& model, const NpyArray& x, const std::string& x_name,
                          std::span<const int64_t> labels, int64_t batch) {
  if (batch < 1) return InvalidArgument("evaluation batch must be at least 1");
  if (x.shape.empty() || x.shape[0] == 0) return Corrupt(x_name + ": holds no samples (needs a leading sample dim)");
  const int64_t samples = x.shape[0];
  if (static_cast<int64_t>(labels.size()) != samples) {
    return Corrupt(x_name + ": has " + std::to_string(samples) + " samples but there are " +
                   std::to_string(labels.size()) + " labels");
  }
  MP_ASSIGN_OR_RETURN(Executor exec, Executor::Create(model));
  MP_ASSIGN_OR_RETURN(const int64_t fixed, CheckSamples(exec, model.source(), x, x_name));
  const int64_t step = fixed > 0 ? fixed : batch;
  Top1 r;
  r.samples = samples;
  for (int64_t start = 0; start < samples; start += step) {
    const int64_t count = std::min(step, samples - start);
    int64_t n = 0;
    MP_ASSIGN_OR_RETURN(std::vector<float> y, RunRows(exec, model.source(), x, start, count, fixed > 0 ? fixed : count, &n));
    for (int64_t i = 0; i < count; ++i) {
      if (n > 0 && Argmax(&y[i * n], n) == labels[start + i]) ++r.correct;
    }
  }
  r.top1 = static_cast<double>(r.correct) / static_cast<double>(samples);
  return r;
}

}  // namespace modelpress::runtime
