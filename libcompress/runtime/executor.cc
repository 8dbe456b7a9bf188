// The executor: orders the graph, resolves constants, then runs kernels node
// by node, freeing each intermediate after its last consumer.
#include <algorithm>
#include <queue>
#include <unordered_map>

#include "runtime/kernel.h"
#include "runtime/view.h"

namespace modelpress::runtime {

namespace {

std::string NodeLabel(const onnx::NodeProto& n, int index) {
  return "node '" + (n.name().empty() ? "#" + std::to_string(index) : n.name()) + "' (" + n.op_type() + ")";
}

ValueSpec SpecOf(const onnx::ValueInfoProto& v) {
  ValueSpec s;
  s.name = v.name();
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    s.dtype = static_cast<DType>(tt.elem_type());
    if (tt.has_shape()) {
      s.has_shape = true;
      for (const auto& d : tt.shape().dim()) s.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
  }
  return s;
}

// The value of a Constant node given by one of the scalar/list attributes.
Result<Tensor> ConstantFromAttributes(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute()) {
    if (a.name() == "value_float") {
      const float f = a.f();
      return Tensor::Copy(DType::kFloat32, {}, &f);
    }
    if (a.name() == "value_int") {
      const int64_t i = a.i();
      return Tensor::Copy(DType::kInt64, {}, &i);
    }
    if (a.name() == "value_floats") {
      std::vector<float> v(a.floats().begin(), a.floats().end());
      return Tensor::Copy(DType::kFloat32, {static_cast<int64_t>(v.size())}, v.data());
    }
    if (a.name() == "value_ints") {
      std::vector<int64_t> v(a.ints().begin(), a.ints().end());
      return Tensor::Copy(DType::kInt64, {static_cast<int64_t>(v.size())}, v.data());
    }
  }
  return Unsupported("Constant without a value, value_float(s) or value_int(s) attribute");
}

}  // namespace

struct Executor::Impl {
  struct Step {
    const onnx::NodeProto* node = nullptr;
    int index = 0;             // index in graph.node, for messages
    KernelFn fn = nullptr;
    std::vector<int> inputs;   // value ids, -1 when absent
    std::vector<int> outputs;  // value ids, -1 when absent
    // Without an observer: a Conv or Gemm clamps its own output for the Relu
    // that is its only reader (fuse_relu); that Relu passes it on (absorbed).
    bool fuse_relu = false;
    bool absorbed = false;
  };

  std::string source;
  ExecutorOptions options;
  int64_t opset = 1;
  std::vector<ValueSpec> input_specs, output_specs;
  std::vector<std::string> names;       // value id -> name
  std::vector<Tensor> constants;        // value id -> value, for initializers and Constant outputs
  std::vector<bool> is_constant;
  std::vector<int> uses;                // value id -> readers among steps (graph outputs count one more)
  std::vector<int> input_ids, output_ids;
  std::vector<Step> steps;
  std::unordered_map<std::string, int> ids;

  int Id(const std::string& name) {
    auto [it, inserted] = ids.emplace(name, static_cast<int>(names.size()));
    if (inserted) {
      names.push_back(name);
      constants.emplace_back();
      is_constant.push_back(false);
      uses.push_back(0);
    }
    return it->second;
  }

  Status Build(const Model& model);
};

Status Executor::Impl::Build(const Model& model) {
  const onnx::GraphProto& g = model.proto().graph();
  bool has_default = false;
  for (const auto& op : model.proto().opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") {
      opset = op.version();
      has_default = true;
    }
  }
  if (!has_default) return Unsupported("the model imports no default ONNX opset");

  for (const auto& e : model.tensors()) {
    if (e.source != TensorSource::kInitializer) continue;
    const int id = Id(e.name);
    MP_ASSIGN_OR_RETURN(auto view, model.View(e));
    MP_ASSIGN_OR_RETURN(constants[id], TensorFromView(view, "initializer '" + e.name + "'"));
    is_constant[id] = true;
  }
  for (const auto& v : g.input()) {
    const int id = Id(v.name());
    if (is_constant[id]) continue;  // an input with an initializer default is a constant here
    input_specs.push_back(SpecOf(v));
    input_ids.push_back(id);
  }
  std::vector<bool> available(names.size(), true);  // grows as values are created below

  // Who produces each value; Constant nodes are evaluated now and leave the plan.
  std::unordered_map<std::string, int> producer;
  const KernelTable& kernels = Kernels();
  std::vector<int> pending;  // node indices of non-Constant nodes
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    const std::string label = NodeLabel(n, i);
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      return Unsupported(label + ": operator " + n.op_type() + " of domain '" + n.domain() + "' is not supported");
    }
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      const int id = Id(out);
      if (is_constant[id] || producer.count(out) || std::find(input_ids.begin(), input_ids.end(), id) != input_ids.end()) {
        return Corrupt(label + ": output '" + out + "' is already produced elsewhere in the graph");
      }
      producer[out] = i;
    }
    if (n.op_type() == "Constant") {
      if (n.output_size() != 1) return Corrupt(label + ": Constant must have one output");
      const int id = Id(n.output(0));
      bool has_value = false;
      for (const auto& a : n.attribute()) has_value |= a.name() == "value";
      if (has_value) {
        MP_ASSIGN_OR_RETURN(auto view, model.View(n.output(0)));
        MP_ASSIGN_OR_RETURN(constants[id], TensorFromView(view, label));
      } else {
        auto t = ConstantFromAttributes(n);
        if (!t.ok()) return t.status().WithPrefix(label);
        constants[id] = std::move(t).value();
      }
      is_constant[id] = true;
      continue;
    }
    auto k = kernels.find(n.op_type());
    if (k == kernels.end()) {
      return Unsupported(label + ": operator " + n.op_type() + " is not supported by the executor");
    }
    if (opset < k->second.min_opset) {
      return Unsupported(label + ": operator " + n.op_type() + " at opset " + std::to_string(opset) +
                         " is not supported (needs opset " + std::to_string(k->second.min_opset) + " or later)");
    }
    pending.push_back(i);
  }

  // Kahn's algorithm, taking ready nodes in graph order so a sorted graph
  // keeps its order.
  std::unordered_map<int, std::vector<int>> dependents;  // node -> nodes reading its outputs
  std::unordered_map<int, int> waiting;                  // node -> inputs not yet produced
  for (int i : pending) {
    const auto& n = g.node(i);
    int w = 0;
    for (const auto& in : n.input()) {
      if (in.empty()) continue;
      const int id = Id(in);
      if (is_constant[id] || std::find(input_ids.begin(), input_ids.end(), id) != input_ids.end()) continue;
      auto p = producer.find(in);
      if (p == producer.end()) {
        return Corrupt(NodeLabel(n, i) + ": input '" + in +
                               "' has no producer (no graph input, initializer or node output has that name)");
      }
      if (p->second == i) return Corrupt(NodeLabel(n, i) + ": reads its own output '" + in + "' (a cycle)");
      dependents[p->second].push_back(i);
      ++w;
    }
    waiting[i] = w;
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i : pending) {
    if (waiting[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int d : dependents[i]) {
      if (--waiting[d] == 0) ready.push(d);
    }
  }
  if (order.size() != pending.size()) {
    for (int i : pending) {
      if (waiting[i] > 0) return Corrupt("the graph has a cycle through " + NodeLabel(g.node(i), i));
    }
  }

  for (int i : order) {
    const auto& n = g.node(i);
    Step s;
    s.node = &n;
    s.index = i;
    s.fn = kernels.at(n.op_type()).fn;
    for (const auto& in : n.input()) {
      const int id = in.empty() ? -1 : Id(in);
      if (id >= 0) ++uses[id];
      s.inputs.push_back(id);
    }
    for (const auto& out : n.output()) s.outputs.push_back(out.empty() ? -1 : Id(out));
    steps.push_back(std::move(s));
  }
  for (const auto& v : g.output()) {
    auto it = ids.find(v.name());
    if (it == ids.end() || (!is_constant[it->second] && !producer.count(v.name()) &&
                            std::find(input_ids.begin(), input_ids.end(), it->second) == input_ids.end())) {
      return Corrupt("graph output '" + v.name() + "' has no producer");
    }
    output_specs.push_back(SpecOf(v));
    output_ids.push_back(it->second);
    ++uses[it->second];
  }
  // Conv or Gemm followed by a Relu that is the sole reader of its output.
  std::unordered_map<int, size_t> reader;  // value id -> the step reading it, when exactly one step does
  for (size_t i = 0; i < steps.size(); ++i) {
    for (int id : steps[i].inputs) {
      if (id >= 0) reader[id] = i;
    }
  }
  for (auto& s : steps) {
    const bool fusable_op = s.node->op_type() == "Conv" || s.node->op_type() == "Gemm";
    if (!fusable_op || s.outputs.size() != 1 || s.outputs[0] < 0 || uses[s.outputs[0]] != 1) continue;
    auto r = reader.find(s.outputs[0]);
    if (r == reader.end()) continue;
    Step& relu = steps[r->second];
    if (relu.node->op_type() == "Relu" && relu.inputs.size() == 1 && relu.inputs[0] == s.outputs[0]) {
      s.fuse_relu = relu.absorbed = true;
    }
  }
  return Status::Ok();
}

Result<Executor> Executor::Create(const Model& model, const ExecutorOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->source = model.source();
  impl->options = options;
  if (Status s = impl->Build(model); !s.ok()) return s.WithPrefix(model.source());
  return Executor(std::move(impl));
}

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Executor::Executor(Executor&&) noexcept = default;
Executor& Executor::operator=(Executor&&) noexcept = default;
Executor::~Executor() = default;

const std::vector<ValueSpec>& Executor::inputs() const { return impl_->input_specs; }
const std::vector<ValueSpec>& Executor::outputs() const { return impl_->output_specs; }

Result<std::vector<Tensor>> Executor::Run(const std::vector<Tensor>& inputs, const Observer& observer,
                                          RunStats* stats) const {
  const Impl& m = *impl_;
  if (inputs.size() != m.input_ids.size()) {
    return InvalidArgument(m.source + ": the model takes " + std::to_string(m.input_ids.size()) + " inputs, got " +
                           std::to_string(inputs.size()));
  }
  std::vector<Tensor> values(m.names.size());
  std::vector<int> remaining = m.uses;
  int64_t live = 0, peak = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueSpec& spec = m.input_specs[i];
    const Tensor& t = inputs[i];
    if (m.options.check_input_shapes) {
      bool ok = spec.dtype == DType::kUndefined || spec.dtype == t.dtype();
      if (spec.has_shape) {
        ok = ok && spec.shape.size() == t.shape().size();
        for (size_t d = 0; ok && d < spec.shape.size(); ++d) ok = spec.shape[d] < 0 || spec.shape[d] == t.shape()[d];
      }
      if (!ok) {
        std::string want = DTypeName(spec.dtype) + " [";
        for (size_t d = 0; d < spec.shape.size(); ++d) {
          want += (d ? ", " : "") + (spec.shape[d] < 0 ? std::string("?") : std::to_string(spec.shape[d]));
        }
        return InvalidArgument(m.source + ": input '" + spec.name + "' expects " + want + "], got " + Describe(t));
      }
    }
    values[m.input_ids[i]] = t;
    if (observer) observer(spec.name, t);
  }

  for (const auto& s : m.steps) {
    std::vector<const Tensor*> in(s.inputs.size(), nullptr);
    for (size_t k = 0; k < s.inputs.size(); ++k) {
      const int id = s.inputs[k];
      if (id < 0) continue;
      in[k] = m.is_constant[id] ? &m.constants[id] : &values[id];
      if (in[k]->empty_type()) {
        return InvalidArgument(m.source + ": " + NodeLabel(*s.node, s.index) + ": input '" + m.names[id] +
                               "' was not computed (an optional output its producer did not give)");
      }
    }
    std::vector<Tensor> out(s.outputs.size());
    if (s.absorbed && !observer) {
      out[0] = *in[0];  // its Conv or Gemm already applied it
    } else {
      KernelContext ctx(*s.node, m.opset, std::move(in), &out);
      ctx.set_fused_relu(s.fuse_relu && !observer);
      if (Status st = s.fn(ctx); !st.ok()) {
        return st.WithPrefix(m.source + ": " + NodeLabel(*s.node, s.index));
      }
    }
    for (size_t k = 0; k < s.outputs.size(); ++k) {
      const int id = s.outputs[k];
      if (id < 0) continue;
      if (out[k].empty_type()) {
        if (m.uses[id] == 0) continue;  // an optional output nobody reads
        return Internal(m.source + ": " + NodeLabel(*s.node, s.index) + ": output '" + m.names[id] +
                        "' was not computed");
      }
      if (observer) observer(m.names[id], out[k]);
      if (m.uses[id] == 0) continue;  // dead value: observed, then dropped
      live += static_cast<int64_t>(out[k].bytes());
      values[id] = std::move(out[k]);
    }
    peak = std::max(peak, live);
    for (int id : s.inputs) {
      if (id < 0 || m.is_constant[id]) continue;
      if (--remaining[id] == 0) {
        live -= static_cast<int64_t>(values[id].bytes());
        values[id] = Tensor();
      }
    }
  }

  std::vector<Tensor> result;
  for (int id : m.output_ids) result.push_back(m.is_constant[id] ? m.constants[id] : values[id]);
  if (stats != nullptr) {
    stats->peak_live_bytes = peak;
    stats->nodes_run = static_cast<int64_t>(m.steps.size());
  }
  return result;
}

const KernelTable& Kernels() {
  static const KernelTable table = [] {
    KernelTable t;
    RegisterElementwiseKernels(t);
    RegisterMatMulKernels(t);
    RegisterConvKernels(t);
    RegisterPoolKernels(t);
    RegisterNormKernels(t);
    RegisterShapeKernels(t);
    RegisterQuantKernels(t);
    return t;
  }();
  return table;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> ops = {"Constant"};
  for (const auto& [name, entry] : Kernels()) ops.push_back(name);
  std::sort(ops.begin(), ops.end());
  return ops;
}

Status CheckSamplesFit(const ValueSpec& in, std::span<const int64_t> shape, const std::string& samples_name,
                       const std::string& model_name) {
  if (!in.has_shape) return Status::Ok();
  bool ok = in.shape.size() == shape.size();
  for (size_t d = 1; ok && d < in.shape.size(); ++d) ok = in.shape[d] < 0 || in.shape[d] == shape[d];
  if (ok) return Status::Ok();
  std::string want = "[";
  for (size_t d = 0; d < in.shape.size(); ++d) {
    want += (d ? ", " : "") + (in.shape[d] < 0 ? std::string("batch") : std::to_string(in.shape[d]));
  }
  return Corrupt(samples_name + ": has shape " + ShapeToString(shape) + " but input '" + in.name + "' of " + model_name +
                 " expects " + want + "] (samples along the first dim)");
}

}  // namespace modelpress::runtime
