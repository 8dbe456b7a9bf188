// The _modelpress extension: masks, schedules and whole-model functions of
// libcompress for Python training code. Weights arrive through the buffer
// protocol and are read in place (a TensorView over the caller's memory);
// masks are written straight into the NumPy array returned. The pure-Python
// package (modelpress/__init__.py) turns PyTorch tensors into such buffers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "inspect_report.h"
#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/pack.h"
#include "modelpress/prune.h"
#include "modelpress/quant.h"
#include "modelpress/reconstruct.h"
#include "modelpress/tensor.h"

namespace py = pybind11;

namespace modelpress::python {
namespace {

// Python exception types for the codes without an obvious built-in one.
// Both derive from ValueError: the input, not the caller's code, is at fault.
py::object& CorruptError() {
  static py::object type;
  return type;
}
py::object& UnsupportedError() {
  static py::object type;
  return type;
}

// Raises the Python exception matching `status`, with the library's message.
[[noreturn]] void Raise(const Status& status) {
  PyObject* type = PyExc_RuntimeError;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: type = PyExc_ValueError; break;
    case StatusCode::kNotFound: type = PyExc_FileNotFoundError; break;
    case StatusCode::kIoError: type = PyExc_OSError; break;
    case StatusCode::kCorrupt: type = CorruptError().ptr(); break;
    case StatusCode::kUnsupported: type = UnsupportedError().ptr(); break;
    case StatusCode::kPermissionDenied: type = PyExc_PermissionError; break;
    case StatusCode::kResourceExhausted: type = PyExc_MemoryError; break;
    case StatusCode::kOk:
    case StatusCode::kInternal: type = PyExc_RuntimeError; break;
  }
  PyErr_SetString(type, status.message().c_str());
  throw py::error_already_set();
}

void Check(const Status& s) {
  if (!s.ok()) Raise(s);
}

template <class T>
T Take(Result<T> r) {
  if (!r.ok()) Raise(r.status());
  return std::move(r).value();
}

// A weight tensor borrowed from a Python buffer. `info` keeps the buffer
// (and so the memory behind `view`) alive.
struct Borrowed {
  py::buffer_info info;
  TensorView view;
};

// The element type of a buffer: its struct format, refined by `dtype` for
// bfloat16, which NumPy lacks and arrives as 16-bit integers.
DType BufferDType(const py::buffer_info& info, const std::string& dtype, const std::string& what) {
  std::string f = info.format;
  if (!f.empty() && (f[0] == '@' || f[0] == '=' || f[0] == '<')) f = f.substr(1);
  if (!f.empty() && (f[0] == '>' || f[0] == '!')) {
    throw py::value_error(what + ": big-endian data is not supported (format '" + info.format + "')");
  }
  DType from_format = DType::kUndefined;
  if (f == "f" && info.itemsize == 4) from_format = DType::kFloat32;
  if (f == "e" && info.itemsize == 2) from_format = DType::kFloat16;
  const bool int16 = (f == "h" || f == "H") && info.itemsize == 2;
  if (dtype.empty() || dtype == "auto") {
    if (from_format != DType::kUndefined) return from_format;
    if (int16) {
      throw py::type_error(what + ": 16-bit integer buffer; pass dtype='bfloat16' if it holds bfloat16 bits");
    }
  } else if (dtype == "float32" || dtype == "float16") {
    const DType want = dtype == "float32" ? DType::kFloat32 : DType::kFloat16;
    if (from_format == want) return want;
  } else if (dtype == "bfloat16") {
    if (int16) return DType::kBfloat16;
    throw py::type_error(what + ": dtype='bfloat16' needs the bits as an int16 or uint16 buffer, got format '" +
                         info.format + "'");
  } else {
    throw py::value_error(what + ": unknown dtype '" + dtype + "' (float32, float16 or bfloat16)");
  }
  throw py::type_error(what + ": unsupported element format '" + info.format + "' (" +
                       std::to_string(info.itemsize) + " bytes" + (dtype.empty() ? "" : ", dtype '" + dtype + "'") +
                       "); weights must be float32, float16 or bfloat16");
}

// Refuses strided views: reading them in place would need a different
// element walk, and copying them silently would hide a weight-sized buffer.
void CheckContiguous(const py::buffer_info& info, const std::string& what) {
  py::ssize_t expected = info.itemsize;
  for (int i = static_cast<int>(info.ndim) - 1; i >= 0; --i) {
    if (info.shape[i] != 1 && info.strides[i] != expected) {
      throw py::value_error(what + " is not C-contiguous; pass numpy.ascontiguousarray(w) or w.contiguous()");
    }
    expected *= info.shape[i];
  }
}

Borrowed Borrow(const py::buffer& buffer, const std::string& dtype, const std::string& what, bool writable = false) {
  Borrowed b{buffer.request(writable), {}};
  const DType t = BufferDType(b.info, dtype, what);
  CheckContiguous(b.info, what);
  std::vector<int64_t> shape(b.info.shape.begin(), b.info.shape.end());
  b.view = TensorView(t, std::move(shape), static_cast<const std::byte*>(b.info.ptr), b.info.size,
                      static_cast<size_t>(b.info.itemsize), Storage::kRaw);
  return b;
}

// An optional mask (bool or uint8, any shape with as many elements).
std::optional<py::buffer_info> BorrowMask(const std::optional<py::buffer>& mask, int64_t size, const std::string& what,
                                          const std::string& noun = "previous mask") {
  if (!mask) return std::nullopt;
  py::buffer_info info = mask->request();
  if (info.itemsize != 1 || (info.format != "?" && info.format != "B" && info.format != "b")) {
    throw py::type_error(what + ": " + noun + " must be bool or uint8, got format '" + info.format + "'");
  }
  CheckContiguous(info, what + ": " + noun);
  if (info.size != size) {
    throw py::value_error(what + ": " + noun + " has " + std::to_string(info.size) + " elements for a tensor of " +
                          std::to_string(size));
  }
  return info;
}

std::span<const uint8_t> Bytes(const std::optional<py::buffer_info>& info) {
  if (!info) return {};
  return {static_cast<const uint8_t*>(info->ptr), static_cast<size_t>(info->size)};
}

// A bool array of `shape`, written by the library through its bytes.
py::array NewMask(const py::buffer_info& like) {
  return py::array(py::dtype("bool"), like.shape);
}

std::span<uint8_t> MaskBytes(py::array& mask) {
  return {static_cast<uint8_t*>(mask.mutable_data()), static_cast<size_t>(mask.size())};
}

void CheckSparsityArg(double sparsity) {
  if (!(sparsity >= 0.0 && sparsity < 1.0)) {
    throw py::value_error("sparsity " + std::to_string(sparsity) + " is outside [0, 1)");
  }
}

py::array UnstructuredMaskPy(const py::buffer& w, double sparsity, const std::optional<py::buffer>& previous,
                             const std::string& dtype, int threads) {
  CheckSparsityArg(sparsity);
  Borrowed b = Borrow(w, dtype, "weights");
  auto prev = BorrowMask(previous, b.view.size(), "weights");
  py::array mask = NewMask(b.info);
  const MaskInput in{b.view, Bytes(prev)};
  std::span<uint8_t> keep = MaskBytes(mask);
  Status s;
  {
    py::gil_scoped_release release;
    s = UnstructuredMask(in, sparsity, keep, threads);
  }
  Check(s);
  return mask;
}

py::list GlobalMasksPy(const std::vector<py::buffer>& weights, double sparsity,
                       const std::optional<std::vector<py::buffer>>& previous, const std::vector<std::string>& dtypes,
                       int threads) {
  CheckSparsityArg(sparsity);
  if (weights.empty()) throw py::value_error("global_masks needs at least one tensor");
  if (previous && previous->size() != weights.size()) {
    throw py::value_error("global_masks: " + std::to_string(previous->size()) + " previous masks for " +
                          std::to_string(weights.size()) + " tensors");
  }
  if (!dtypes.empty() && dtypes.size() != weights.size()) {
    throw py::value_error("global_masks: " + std::to_string(dtypes.size()) + " dtypes for " +
                          std::to_string(weights.size()) + " tensors");
  }
  std::vector<Borrowed> borrowed;
  std::vector<std::optional<py::buffer_info>> prevs;
  std::vector<py::array> masks;
  std::vector<MaskInput> inputs;
  std::vector<std::span<uint8_t>> keeps;
  borrowed.reserve(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::string what = "weights[" + std::to_string(i) + "]";
    borrowed.push_back(Borrow(weights[i], dtypes.empty() ? "" : dtypes[i], what));
    prevs.push_back(previous ? BorrowMask((*previous)[i], borrowed.back().view.size(), what) : std::nullopt);
    masks.push_back(NewMask(borrowed.back().info));
  }
  for (size_t i = 0; i < weights.size(); ++i) {
    inputs.push_back({borrowed[i].view, Bytes(prevs[i])});
    keeps.push_back(MaskBytes(masks[i]));
  }
  Status s;
  {
    py::gil_scoped_release release;
    s = GlobalMasks(inputs, sparsity, keeps, threads);
  }
  Check(s);
  py::list out;
  for (auto& m : masks) out.append(m);
  return out;
}

// Layer kinds by the names training code uses, with the ranks they allow.
struct RoleInfo {
  LayerKind kind;
  int min_rank;
  int max_rank;  // -1: no upper bound
  const char* shape;
};
const std::map<std::string, RoleInfo> kRoles = {
    {"linear", {LayerKind::kLinear, 2, 2, "[out, in]"}},
    {"conv", {LayerKind::kConv, 3, -1, "[out, in/groups, k...]"}},
    {"matmul", {LayerKind::kMatMul, 2, -1, "[..., in, out]"}},
    {"convtranspose", {LayerKind::kConvTranspose, 3, -1, "[in, out/groups, k...]"}},
};

int ReductionAxis(const std::string& role, const std::vector<int64_t>& shape) {
  const auto it = kRoles.find(role);
  if (it == kRoles.end()) {
    throw py::value_error("unknown role '" + role + "' (linear, conv, matmul or convtranspose)");
  }
  const RoleInfo& r = it->second;
  const int rank = static_cast<int>(shape.size());
  if (rank < r.min_rank || (r.max_rank >= 0 && rank > r.max_rank)) {
    throw py::value_error("role '" + role + "' expects a weight shaped " + r.shape + ", got " + ShapeToString(shape));
  }
  return ReductionAxisFor(r.kind, rank);
}

py::array NMMaskPy(const py::buffer& w, int n, int m, const std::string& role,
                   const std::optional<py::buffer>& previous, const std::string& dtype) {
  Borrowed b = Borrow(w, dtype, "weights");
  const int axis = ReductionAxis(role, b.view.shape());
  auto prev = BorrowMask(previous, b.view.size(), "weights");
  py::array mask = NewMask(b.info);
  const MaskInput in{b.view, Bytes(prev)};
  std::span<uint8_t> keep = MaskBytes(mask);
  Status s;
  {
    py::gil_scoped_release release;
    s = NMMask(in, axis, n, m, keep);
  }
  if (!s.ok()) {
    Raise(s.WithPrefix("nm_mask " + std::to_string(n) + ":" + std::to_string(m) + " on a " + role + " weight " +
                       ShapeToString(b.view.shape())));
  }
  return mask;
}

void ApplyMaskPy(const py::buffer& w, const py::buffer& mask, const std::string& dtype) {
  Borrowed b = Borrow(w, dtype, "weights", /*writable=*/true);
  if (b.info.readonly) throw py::value_error("weights are read-only; apply_mask writes them in place");
  auto keep = BorrowMask(mask, b.view.size(), "apply_mask", "mask");
  const MutableTensorView mv{b.view.dtype(), b.view.shape(),
                             std::span<std::byte>(static_cast<std::byte*>(b.info.ptr), b.view.packed_bytes())};
  Check(ApplyMask(mv, Bytes(keep)));
}

double AgpSparsity(int64_t step, int64_t begin, int64_t end, double initial, double final, int64_t frequency,
                   double power) {
  if (end <= begin) {
    throw py::value_error("agp_sparsity: end step " + std::to_string(end) + " must follow begin " +
                          std::to_string(begin));
  }
  if (frequency <= 0) throw py::value_error("agp_sparsity: frequency must be positive");
  CheckSparsityArg(initial);
  CheckSparsityArg(final);
  if (!(power > 0)) throw py::value_error("agp_sparsity: power must be positive");
  return PolynomialSchedule{initial, final, begin, end, frequency, power}.SparsityAt(step);
}

IterativeSchedule MakeIterative(double fraction, double target) {
  if (!(fraction > 0.0 && fraction < 1.0)) throw py::value_error("iterative schedule: fraction must be in (0, 1)");
  CheckSparsityArg(target);
  return {fraction, target};
}

// ---- reconstruction ----

// The output axis of a weight of `role` (the axis of its rows in RefitWeights).
int OutputAxis(const std::string& role, const std::vector<int64_t>& shape) {
  if (role == "convtranspose") throw py::value_error("reconstruction does not handle convtranspose weights");
  const int reduction = ReductionAxis(role, shape);  // also checks the role against the shape
  if (role == "matmul") {
    if (shape.size() != 2) throw py::value_error("reconstruction handles 2-D matmul weights [in, out], got " +
                                                 ShapeToString(shape));
    return 1;
  }
  return reduction == 0 ? 1 : 0;  // linear [out, in] and conv [out, in/groups, k...]: rows along axis 0
}

// H (or several, one per convolution group) as float64, C-contiguous.
std::span<const double> BorrowGram(const py::buffer_info& g, int64_t columns, int64_t groups) {
  if (g.format != "d" || g.itemsize != 8) {
    throw py::type_error("gram must be float64 (as GramAccumulator.gram() returns), got format '" + g.format + "'");
  }
  CheckContiguous(g, "gram");
  if (g.size != groups * columns * columns) {
    throw py::value_error("gram has " + std::to_string(g.size) + " elements; a weight with " + std::to_string(columns) +
                          " columns per row and " + std::to_string(groups) + " group(s) needs " +
                          std::to_string(groups * columns * columns));
  }
  return {static_cast<const double*>(g.ptr), static_cast<size_t>(g.size)};
}

int64_t Columns(const TensorView& w, int output_axis) {
  const int64_t rows = w.shape()[output_axis];
  return rows == 0 ? 0 : w.size() / rows;
}

const std::map<std::string, RefitMethod> kRefitMethods = {
    {"auto", RefitMethod::kAuto}, {"exact", RefitMethod::kExact}, {"obs", RefitMethod::kObs}};

py::tuple ReconstructPy(const py::buffer& w, const py::buffer& mask, const py::buffer& gram, const std::string& role,
                        double damp, const std::string& method, int64_t groups, const std::string& dtype,
                        int threads) {
  Borrowed b = Borrow(w, dtype, "weights");
  const int axis = OutputAxis(role, b.view.shape());
  if (groups < 1) throw py::value_error("groups must be at least 1");
  if (!(damp >= 0)) throw py::value_error("damp must be >= 0");
  const auto m = kRefitMethods.find(method);
  if (m == kRefitMethods.end()) throw py::value_error("unknown method '" + method + "' (auto, exact or obs)");
  auto keep = BorrowMask(mask, b.view.size(), "reconstruct", "mask");
  const py::buffer_info g = gram.request();
  const std::span<const double> h = BorrowGram(g, Columns(b.view, axis), groups);
  RefitOptions options;
  options.damp = damp;
  options.method = m->second;
  options.threads = threads;
  Result<RefitResult> r = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    r = RefitWeights(b.view, axis, Bytes(keep), h, groups, options);
  }
  RefitResult fit = Take(std::move(r));
  py::array_t<float> out(b.info.shape);
  std::memcpy(out.mutable_data(), fit.weights.data(), fit.weights.size() * sizeof(float));
  py::dict info;
  info["error_before"] = fit.error_before;
  info["error_after"] = fit.error_after;
  info["method"] = std::string(RefitMethodName(fit.method));
  return py::make_tuple(out, info);
}

py::array_t<float> ObsSaliencyPy(const py::buffer& w, const py::buffer& gram, const std::string& role, double damp,
                                 int64_t groups, const std::string& dtype, int threads) {
  Borrowed b = Borrow(w, dtype, "weights");
  const int axis = OutputAxis(role, b.view.shape());
  if (groups < 1) throw py::value_error("groups must be at least 1");
  if (!(damp >= 0)) throw py::value_error("damp must be >= 0");
  const py::buffer_info g = gram.request();
  const std::span<const double> h = BorrowGram(g, Columns(b.view, axis), groups);
  Result<std::vector<float>> r = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    r = ObsSaliency(b.view, axis, h, groups, damp, threads);
  }
  std::vector<float> v = Take(std::move(r));
  py::array_t<float> out(b.info.shape);
  std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(float));
  return out;
}

// GramAccumulator for Python: rows arrive as 2-D float32 buffers [rows, columns].
class PyGram {
 public:
  explicit PyGram(int64_t columns) : h_(CheckColumns(columns)) {}

  void Add(const py::buffer& x) {
    const py::buffer_info info = x.request();
    if (info.format != "f" || info.itemsize != 4) {
      throw py::type_error("GramAccumulator.add: rows must be float32, got format '" + info.format + "'");
    }
    CheckContiguous(info, "GramAccumulator.add: rows");
    if (info.ndim != 2 || info.shape[1] != h_.columns()) {
      std::vector<int64_t> shape(info.shape.begin(), info.shape.end());
      throw py::value_error("GramAccumulator.add: rows must be shaped [n, " + std::to_string(h_.columns()) + "], got " +
                            ShapeToString(shape));
    }
    const std::span<const float> v(static_cast<const float*>(info.ptr), static_cast<size_t>(info.size));
    Status s;
    {
      py::gil_scoped_release release;
      s = h_.Add(v, info.shape[0]);
    }
    Check(s);
  }

  py::array_t<double> Gram() const {
    const std::vector<double> g = h_.Gram();
    py::array_t<double> out({h_.columns(), h_.columns()});
    std::memcpy(out.mutable_data(), g.data(), g.size() * sizeof(double));
    return out;
  }

  int64_t columns() const { return h_.columns(); }
  int64_t rows() const { return h_.rows(); }

 private:
  static int64_t CheckColumns(int64_t c) {
    if (c < 1) throw py::value_error("GramAccumulator: columns must be at least 1");
    return c;
  }
  GramAccumulator h_;
};

// ---- whole-model functions ----

py::object JsonToPython(const std::string& text) { return py::module_::import("json").attr("loads")(text); }

void CheckNotSameFile(const std::string& input, const std::string& output) {
  std::error_code ec;
  if (input == output || std::filesystem::equivalent(input, output, ec)) {
    Raise(InvalidArgument(output + ": the output would overwrite the input " + input));
  }
}

ExternalData ParseExternal(const std::string& s) {
  if (s == "auto") return ExternalData::kAuto;
  if (s == "always") return ExternalData::kAlways;
  if (s == "never") return ExternalData::kNever;
  throw py::value_error("external_data must be auto, always or never, got '" + s + "'");
}

// ONNX's checker (when asked and the model is not too new for it), then the save.
void CheckAndSave(const Model& model, const std::string& output, const std::string& external, bool check) {
  SaveOptions save;
  save.external = ParseExternal(external);
  if (check) Take(CheckModel(model));
  Check(SaveModel(model, output, save));
}

const std::map<std::string, WeightRole> kPruneRoles = {
    {"conv", WeightRole::kConvWeight},     {"convtranspose", WeightRole::kConvTransposeWeight},
    {"gemm", WeightRole::kGemmWeight},     {"matmul", WeightRole::kMatMulWeight},
    {"embedding", WeightRole::kEmbedding}, {"bias", WeightRole::kBias},
    {"norm", WeightRole::kNormParam}};

py::object PruneFile(const std::string& model_path, const std::string& output, const std::string& method,
                     double sparsity, const std::string& scope, int n, int m, const std::string& include,
                     const std::string& exclude, int64_t min_params, bool keep_first_last,
                     const std::optional<std::vector<std::string>>& roles,
                     const std::map<std::string, double>& layer_sparsity, int threads, bool check,
                     const std::string& external) {
  TensorFilter filter;
  filter.include = include;
  filter.exclude = exclude;
  filter.min_params = min_params;
  filter.keep_first_last = keep_first_last;
  if (roles) {
    filter.roles.clear();
    for (const auto& r : *roles) {
      const auto it = kPruneRoles.find(r);
      if (it == kPruneRoles.end()) throw py::value_error("unknown role '" + r + "'");
      filter.roles.push_back(it->second);
    }
  }
  if (scope != "layer" && scope != "global") {
    throw py::value_error("scope must be 'layer' or 'global', got '" + scope + "'");
  }
  if (method != "unstructured" && method != "nm") {
    throw py::value_error("method must be 'unstructured' or 'nm', got '" + method + "'");
  }
  ParseExternal(external);
  CheckNotSameFile(model_path, output);
  Result<Model> model = InvalidArgument("not run");
  Result<PruneReport> report = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    model = LoadModel(model_path);
    if (model.ok() && method == "nm") {
      report = PruneNM(*model, NMOptions{n, m, filter});
    } else if (model.ok()) {
      UnstructuredOptions o;
      o.sparsity = sparsity;
      o.scope = scope == "global" ? PruneScope::kGlobal : PruneScope::kLayer;
      o.filter = filter;
      o.layer_sparsity.assign(layer_sparsity.begin(), layer_sparsity.end());
      o.threads = threads;
      report = PruneUnstructured(*model, o);
    }
  }
  const Model loaded = Take(std::move(model));
  const std::string json = PruneReportJson(Take(std::move(report)));
  CheckAndSave(loaded, output, external, check);
  return JsonToPython(json);
}

quant::Scheme ParseScheme(const std::string& s) {
  if (s == "uint8") return quant::Scheme::kUint8Asymmetric;
  if (s == "int8") return quant::Scheme::kInt8Symmetric;
  throw py::value_error("activations must be uint8 or int8, got '" + s + "'");
}

quant::CalibrationMethod ParseMethod(const std::string& s) {
  if (s == "minmax") return quant::CalibrationMethod::kMinMax;
  if (s == "percentile") return quant::CalibrationMethod::kPercentile;
  if (s == "entropy") return quant::CalibrationMethod::kEntropy;
  throw py::value_error("calibrate must be minmax, percentile or entropy, got '" + s + "'");
}

// Calibration samples from a .npy path or a float32 C-contiguous array. The
// array's bytes are copied once into the NpyArray the library reads
// (calibration data, not weights).
NpyArray CalibrationArray(const py::object& data) {
  if (py::isinstance<py::str>(data) || py::hasattr(data, "__fspath__")) {
    const std::string path = py::str(py::module_::import("os").attr("fspath")(data));
    return Take(ReadNpy(path));
  }
  if (!py::isinstance<py::buffer>(data)) throw py::type_error("calib_data must be a .npy path or a float32 array");
  py::buffer_info info = data.cast<py::buffer>().request();
  if (info.itemsize != 4 || (info.format != "f" && info.format != "<f" && info.format != "=f")) {
    throw py::type_error("calib_data must be float32, got format '" + info.format + "'");
  }
  CheckContiguous(info, "calib_data");
  NpyArray a;
  a.dtype = DType::kFloat32;
  a.shape.assign(info.shape.begin(), info.shape.end());
  a.data.resize(static_cast<size_t>(info.size) * 4);
  std::memcpy(a.data.data(), info.ptr, a.data.size());
  return a;
}

py::object QuantizeFile(const std::string& model_path, const std::string& output, const std::string& mode,
                        const py::object& calib_data, int64_t samples, int64_t batch, const std::string& calibrate,
                        double percentile, const std::string& activations, bool per_channel, bool reduce_range,
                        const std::string& exclude, const std::optional<std::vector<std::string>>& op_types,
                        int threads, bool check, const std::string& external) {
  quant::QuantizeOptions o;
  if (mode == "weight-only") {
    o.mode = quant::QuantMode::kWeightOnly;
  } else if (mode == "static") {
    o.mode = quant::QuantMode::kStatic;
  } else {
    throw py::value_error("mode must be 'weight-only' or 'static', got '" + mode + "'");
  }
  const bool is_static = o.mode == quant::QuantMode::kStatic;
  if (is_static && calib_data.is_none()) throw py::value_error("mode='static' needs calib_data (a .npy path or array)");
  if (!is_static && !calib_data.is_none()) {
    throw py::value_error("calib_data is only used by mode='static'; weight-only needs no data");
  }
  o.per_channel = per_channel;
  o.reduce_range = reduce_range;
  o.exclude = exclude;
  if (op_types) o.op_types = *op_types;
  o.activations = ParseScheme(activations);
  o.calibration.method = ParseMethod(calibrate);
  o.calibration.percentile = percentile;
  o.calibration.batch = batch;
  o.threads = threads;
  ParseExternal(external);
  CheckNotSameFile(model_path, output);
  std::optional<NpyArray> x;
  std::string name = "<array>";
  if (is_static) {
    if (py::isinstance<py::str>(calib_data)) name = calib_data.cast<std::string>();
    x = CalibrationArray(calib_data);
  }
  Model model = Take(LoadModel(model_path));
  std::string json;
  {
    Result<quant::QuantReport> report = InvalidArgument("not run");
    {
      py::gil_scoped_release release;
      if (is_static) {
        auto data = quant::NpyCalibrationData(model, *x, name, samples, batch);
        report = data.ok() ? quant::Quantize(model, o, &*data) : Result<quant::QuantReport>(data.status());
      } else {
        report = quant::Quantize(model, o);
      }
    }
    json = quant::QuantReportJson(Take(std::move(report)));
  }
  CheckAndSave(model, output, external, check);
  return JsonToPython(json);
}

py::dict PackFile(const std::string& model, const std::string& artifact, int level, int threads, bool verify,
                  uint64_t min_tensor_bytes, uint64_t inline_up_to) {
  if (level < 1 || level > 22) throw py::value_error("level must be in 1..22, got " + std::to_string(level));
  CheckNotSameFile(model, artifact);
  pack::PackOptions o;
  o.level = level;
  o.threads = threads;
  o.verify = verify;
  o.min_tensor_bytes = min_tensor_bytes;
  o.inline_up_to = inline_up_to;  // PackModel refuses values above kMaxInlineUpTo
  Result<pack::PackReport> r = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    r = pack::PackModel(model, artifact, o);
  }
  const pack::PackReport report = Take(std::move(r));
  py::list tensors;
  for (const auto& t : report.tensors) {
    py::dict d;
    d["name"] = t.name;
    d["dtype"] = DTypeName(t.dtype);
    d["shape"] = t.shape;
    d["bytes"] = t.bytes;
    d["stored_bytes"] = t.stored_bytes;
    d["encoder"] = std::string(pack::EncoderName(t.encoder));
    d["bound_bits"] = t.bound_bits;
    tensors.append(d);
  }
  py::dict out;
  out["input_bytes"] = report.input_bytes;
  out["artifact_bytes"] = report.artifact_bytes;
  out["graph_stored_bytes"] = report.graph_stored_bytes;
  out["exact_onnx"] = report.exact_onnx;
  out["tensors"] = tensors;
  out["inline_tensors"] = report.inline_tensors;
  out["graph_tensors"] = report.graph_tensors;
  return out;
}

py::dict UnpackFile(const std::string& artifact, const std::string& output, int threads, uint64_t buffer_mib) {
  CheckNotSameFile(artifact, output);
  if (buffer_mib < 1 || buffer_mib > (uint64_t{1} << 20)) {
    throw py::value_error("buffer_mib must be in 1..1048576, got " + std::to_string(buffer_mib));
  }
  pack::UnpackOptions o;
  o.threads = threads;
  o.max_buffered_bytes = buffer_mib << 20;
  Result<pack::UnpackReport> r = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    r = pack::UnpackModel(artifact, output, o);
  }
  const pack::UnpackReport report = Take(std::move(r));
  py::list written;
  for (const auto& p : report.written) written.append(p.string());
  py::dict out;
  out["written"] = written;
  out["byte_exact_checked"] = report.byte_exact_checked;
  return out;
}

py::object InspectFile(const std::string& path, bool check) {
  Result<std::string> json = InvalidArgument("not run");
  {
    py::gil_scoped_release release;
    json = cli::InspectJson(path, check);
  }
  return JsonToPython(Take(std::move(json)));
}

}  // namespace
}  // namespace modelpress::python

PYBIND11_MODULE(_modelpress, m) {
  using namespace modelpress::python;
  namespace mp = modelpress;
  using namespace pybind11::literals;
  m.doc() = "modelpress: pruning masks, schedules and whole-model compression (C++ core)";

  CorruptError() = py::reinterpret_steal<py::object>(
      PyErr_NewException("modelpress.CorruptError", PyExc_ValueError, nullptr));
  UnsupportedError() = py::reinterpret_steal<py::object>(
      PyErr_NewException("modelpress.UnsupportedError", PyExc_ValueError, nullptr));
  m.attr("CorruptError") = CorruptError();
  m.attr("UnsupportedError") = UnsupportedError();

  m.def("unstructured_mask", &UnstructuredMaskPy, "w"_a, "sparsity"_a, py::kw_only(), "previous"_a = py::none(),
        "dtype"_a = "", "threads"_a = 0,
        "Keep-mask (bool, shape of w) pruning floor(sparsity * size) smallest |w|.");
  m.def("global_masks", &GlobalMasksPy, "weights"_a, "sparsity"_a, py::kw_only(), "previous"_a = py::none(),
        "dtypes"_a = std::vector<std::string>{}, "threads"_a = 0,
        "Keep-masks with one magnitude threshold across all tensors.");
  m.def("nm_mask", &NMMaskPy, "w"_a, "n"_a, "m"_a, "role"_a = "linear", py::kw_only(), "previous"_a = py::none(),
        "dtype"_a = "", "N:M keep-mask along the reduction axis of the role (linear, conv, matmul, convtranspose).");
  m.def("reduction_axis",
        [](const std::string& role, const std::vector<int64_t>& shape) { return ReductionAxis(role, shape); }, "role"_a,
        "shape"_a, "The axis N:M groups run along for a weight of this role and shape.");
  m.def("apply_mask", &ApplyMaskPy, "w"_a, "mask"_a, py::kw_only(), "dtype"_a = "",
        "Zeroes w in place where mask is False.");
  m.def("agp_sparsity", &AgpSparsity, "step"_a, "begin"_a, "end"_a, "initial"_a, "final"_a, py::kw_only(),
        "frequency"_a = 1, "power"_a = 3.0, "Zhu & Gupta's polynomial (AGP) sparsity at `step`.");
  m.def("iterative_sparsity", [](int round, double fraction, double target) {
          return MakeIterative(fraction, target).SparsityAt(round);
        }, "round"_a, "fraction"_a, "target"_a, "Fixed-fraction schedule: min(target, 1 - (1 - fraction)^round).");
  m.def("iterative_rounds", [](double fraction, double target) { return MakeIterative(fraction, target).Rounds(); },
        "fraction"_a, "target"_a, "Rounds of the fixed-fraction schedule until target.");

  py::class_<PyGram>(m, "GramAccumulator", "Streaming H = X^T X of input rows (float32 in, float64 total)")
      .def(py::init<int64_t>(), "columns"_a)
      .def("add", &PyGram::Add, "rows"_a, "Adds a batch of input rows, a float32 array [n, columns]")
      .def("gram", &PyGram::Gram, "H as a float64 array [columns, columns]")
      .def_property_readonly("columns", &PyGram::columns)
      .def_property_readonly("rows", &PyGram::rows);
  m.def("reconstruct", &ReconstructPy, "w"_a, "mask"_a, "gram"_a, "role"_a = "linear", py::kw_only(), "damp"_a = 0.01,
        "method"_a = "auto", "groups"_a = 1, "dtype"_a = "", "threads"_a = 0,
        "Re-fitted float32 weights (kept weights least-squares optimal for H, pruned ones 0) and an info dict");
  m.def("obs_saliency", &ObsSaliencyPy, "w"_a, "gram"_a, "role"_a = "linear", py::kw_only(), "damp"_a = 0.01,
        "groups"_a = 1, "dtype"_a = "", "threads"_a = 0, "OBS saliency w^2 / [H^-1]_ii of every weight (float32)");
  m.def("prune_file", &PruneFile, "model"_a, "output"_a, py::kw_only(), "method"_a = "unstructured",
        "sparsity"_a = 0.5, "scope"_a = "layer", "n"_a = 2, "m"_a = 4, "include"_a = "", "exclude"_a = "",
        "min_params"_a = 0, "keep_first_last"_a = false, "roles"_a = py::none(),
        "layer_sparsity"_a = std::map<std::string, double>{}, "threads"_a = 0, "check"_a = true,
        "external_data"_a = "auto", "As `modelpress prune unstructured|nm`; returns the report (docs/prune.md).");
  m.def("quantize_file", &QuantizeFile, "model"_a, "output"_a, py::kw_only(), "mode"_a = "weight-only",
        "calib_data"_a = py::none(), "samples"_a = 0, "batch"_a = 32, "calibrate"_a = "minmax",
        "percentile"_a = 99.999, "activations"_a = "uint8", "per_channel"_a = true, "reduce_range"_a = false,
        "exclude"_a = "", "op_types"_a = py::none(), "threads"_a = 0, "check"_a = true, "external_data"_a = "auto",
        "As `modelpress quantize`; returns the report (docs/quantize.md).");
  m.def("pack_file", &PackFile, "model"_a, "artifact"_a, py::kw_only(), "level"_a = 19, "threads"_a = 0,
        "verify"_a = true, "min_tensor_bytes"_a = modelpress::pack::PackOptions{}.min_tensor_bytes,
        "inline_up_to"_a = modelpress::pack::PackOptions{}.inline_up_to, "As `modelpress pack`; returns sizes and per-tensor encoders.");
  m.def("unpack_file", &UnpackFile, "artifact"_a, "output"_a, py::kw_only(), "threads"_a = 0, "buffer_mib"_a = 64,
        "As `modelpress unpack`; returns the files written.");
  m.def("inspect_file", &InspectFile, "path"_a, py::kw_only(), "check"_a = true,
        "As `modelpress inspect --json` for an .onnx or .mpk file (docs/inspect_json.md).");
}
