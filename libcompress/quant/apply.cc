// The QDQ rewrite: int8 weight initializers behind DequantizeLinear,
// QuantizeLinear/DequantizeLinear pairs on activations, int32 biases.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_map>

#include "modelpress/graph.h"
#include "modelpress/quant.h"
#include "quant/internal.h"

namespace modelpress::quant {
namespace {

// Names already used by the graph, so that new ones never collide.
class NameSet {
 public:
  explicit NameSet(const onnx::GraphProto& g) {
    for (const auto& v : g.input()) used_.insert(v.name());
    for (const auto& v : g.output()) used_.insert(v.name());
    for (const auto& t : g.initializer()) used_.insert(t.name());
    for (const auto& n : g.node()) {
      for (const auto& o : n.output()) used_.insert(o);
      for (const auto& i : n.input()) used_.insert(i);
      if (!n.name().empty()) used_.insert(n.name());
    }
  }
  std::string Fresh(const std::string& base) {
    std::string name = base;
    for (int k = 1; !used_.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    return name;
  }

 private:
  std::set<std::string> used_;
};

template <class T>
onnx::TensorProto MakeTensor(const std::string& name, int32_t type, const std::vector<int64_t>& dims, const T* data,
                             size_t count) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(data), count * sizeof(T)));
  return t;
}

onnx::NodeProto MakeNode(const std::string& op, const std::string& name, std::vector<std::string> inputs,
                         const std::string& output, int axis) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& i : inputs) n.add_input(i);
  n.add_output(output);
  if (axis >= 0) {
    auto* a = n.add_attribute();
    a->set_name("axis");
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(axis);
  }
  return n;
}

// Scales as one value (per tensor, a 0-D tensor) or one per channel (1-D).
std::vector<int64_t> ScaleDims(int axis, size_t count) {
  return axis >= 0 ? std::vector<int64_t>{static_cast<int64_t>(count)} : std::vector<int64_t>{};
}

// Removes, in order, the elements of a repeated field for which drop(e) holds.
template <class T, class Pred>
void RemoveIf(google::protobuf::RepeatedPtrField<T>* field, Pred drop) {
  int w = 0;
  for (int r = 0; r < field->size(); ++r) {
    if (drop(field->Get(r))) continue;
    if (w != r) field->SwapElements(w, r);
    ++w;
  }
  if (w < field->size()) field->DeleteSubrange(w, field->size() - w);
}

}  // namespace

Result<QuantReport> ApplyQuantization(Model& model, const QuantPlan& plan, const CalibrationTable* table,
                                      const QuantizeOptions& options) {
  const bool is_static = options.mode == QuantMode::kStatic;
  QuantReport report;
  report.mode = std::string(QuantModeName(options.mode));
  report.per_channel = options.per_channel;
  report.skipped = plan.skipped;
  report.opset_before = plan.opset_before;
  report.opset_after = plan.opset_after;
  report.notices = plan.notices;
  if (is_static) {
    report.activations = std::string(SchemeName(options.activations));
    report.calibration = std::string(CalibrationMethodName(options.calibration.method));
    if (table == nullptr) return InvalidArgument("static quantization needs a calibration table");
    for (const std::string& a : plan.activations) {
      if (!table->count(a)) return InvalidArgument("the calibration table has no range for activation '" + a + "'");
    }
  }
  if (plan.nodes.empty()) {
    report.notices.push_back("nothing to quantize: the model has no eligible Conv, ConvTranspose, Gemm or MatMul");
    return report;
  }
  onnx::ModelProto& proto = model.mutable_proto();
  onnx::GraphProto& g = *proto.mutable_graph();
  const GraphIndex index = IndexGraph(g);
  NameSet names(g);

  // New nodes to insert before node i of the original graph.
  std::unordered_map<int, std::vector<onnx::NodeProto>> before;
  std::vector<onnx::TensorProto> new_tensors;

  // Weights: quantized once each, however many planned nodes read them.
  struct DoneWeight {
    std::string output;             // the DequantizeLinear output
    std::vector<float> scales;      // its scales (for bias scales)
  };
  std::unordered_map<std::string, DoneWeight> weights;
  std::set<std::string> replaced;  // float tensors no longer read by a planned node
  for (const PlannedNode& p : plan.nodes) {
    if (weights.count(p.weight)) continue;
    MP_ASSIGN_OR_RETURN(TensorView view, model.View(p.weight));
    // The int8 values are written straight into the new initializer's bytes.
    const std::string qname = names.Fresh(p.weight + "_quantized");
    onnx::TensorProto* qt = g.add_initializer();
    qt->set_name(qname);
    qt->set_data_type(onnx::TensorProto::INT8);
    for (int64_t d : view.shape()) qt->add_dims(d);
    std::string* raw = qt->mutable_raw_data();
    raw->resize(static_cast<size_t>(view.size()));
    auto q = QuantizeWeightInto(view, p.axis, std::span(reinterpret_cast<int8_t*>(raw->data()), raw->size()), options.threads,
                                options.reduce_range ? Scheme::kInt7Symmetric : Scheme::kInt8Symmetric);
    if (!q.ok()) {
      g.mutable_initializer()->RemoveLast();
      return q.status().WithPrefix(model.source() + ": weight '" + p.weight + "'");
    }
    const std::string sname = names.Fresh(p.weight + "_scale");
    const std::string zname = names.Fresh(p.weight + "_zero_point");
    const std::string out = names.Fresh(p.weight + "_dequantized");
    const std::vector<int8_t> zeros(q->scales.size(), 0);
    const std::vector<int64_t> sdims = ScaleDims(p.axis, q->scales.size());
    new_tensors.push_back(MakeTensor(sname, onnx::TensorProto::FLOAT, sdims, q->scales.data(), q->scales.size()));
    new_tensors.push_back(MakeTensor(zname, onnx::TensorProto::INT8, sdims, zeros.data(), zeros.size()));
    before[p.node].push_back(MakeNode("DequantizeLinear", names.Fresh(p.weight + "_DequantizeLinear"),
                                      {qname, sname, zname}, out, p.axis));
    QuantTensorReport row;
    row.name = p.weight;
    row.kind = "weight";
    row.node = p.name;
    row.dtype = options.reduce_range ? "int8 (7-bit)" : "int8";
    row.shape = view.shape();
    row.axis = p.axis;
    row.scales = q->scales;
    row.zero_points = {0};
    row.sqnr_db = SqnrDb(q->signal_energy, q->noise_energy);
    row.zeros_before = q->zeros_before;
    row.zeros_after = q->zeros_after;
    report.weight_bytes_before += view.packed_bytes();
    report.weight_bytes_after += static_cast<uint64_t>(view.size()) + q->scales.size() * (sizeof(float) + 1);
    report.tensors.push_back(std::move(row));
    weights[p.weight] = {out, std::move(q->scales)};
  }

  // Activations: one pair each, before the first planned reader.
  std::unordered_map<std::string, std::string> act_out;
  std::unordered_map<std::string, QuantParams> act_params;
  if (is_static) {
    const int32_t zp_type = options.activations != Scheme::kUint8Asymmetric ? onnx::TensorProto::INT8 : onnx::TensorProto::UINT8;
    for (const PlannedNode& p : plan.nodes) {
      if (act_out.count(p.activation)) continue;
      const TensorRange& r = table->at(p.activation);
      const QuantParams qp = ComputeParams(r.rmin, r.rmax, options.activations);
      const std::string sname = names.Fresh(p.activation + "_scale");
      const std::string zname = names.Fresh(p.activation + "_zero_point");
      const std::string qname = names.Fresh(p.activation + "_quantized");
      const std::string out = names.Fresh(p.activation + "_dequantized");
      new_tensors.push_back(MakeTensor(sname, onnx::TensorProto::FLOAT, {}, &qp.scale, 1));
      if (zp_type == onnx::TensorProto::INT8) {
        const int8_t z = static_cast<int8_t>(qp.zero_point);
        new_tensors.push_back(MakeTensor(zname, zp_type, {}, &z, 1));
      } else {
        const uint8_t z = static_cast<uint8_t>(qp.zero_point);
        new_tensors.push_back(MakeTensor(zname, zp_type, {}, &z, 1));
      }
      before[p.node].push_back(
          MakeNode("QuantizeLinear", names.Fresh(p.activation + "_QuantizeLinear"), {p.activation, sname, zname}, qname, -1));
      before[p.node].push_back(
          MakeNode("DequantizeLinear", names.Fresh(p.activation + "_DequantizeLinear"), {qname, sname, zname}, out, -1));
      act_out[p.activation] = out;
      act_params[p.activation] = qp;
      QuantTensorReport row;
      row.name = p.activation;
      row.kind = "activation";
      row.node = p.name;
      row.dtype = std::string(SchemeName(options.activations));
      row.scales = {qp.scale};
      row.zero_points = {qp.zero_point};
      row.rmin = r.rmin;
      row.rmax = r.rmax;
      row.has_sqnr = false;
      report.tensors.push_back(std::move(row));
    }
  }

  // Biases: int32, scale = activation scale x weight scale, per planned node
  // (two nodes sharing a bias may have different activation scales).
  std::unordered_map<int, std::string> bias_out;
  if (is_static) {
    for (const PlannedNode& p : plan.nodes) {
      if (p.bias.empty()) continue;
      MP_ASSIGN_OR_RETURN(TensorView view, model.View(p.bias));
      const float sx = act_params.at(p.activation).scale;
      const std::vector<float>& sw = weights.at(p.weight).scales;
      const int64_t n = view.size();
      std::vector<float> scales(sw.size());
      for (size_t c = 0; c < sw.size(); ++c) scales[c] = sx * sw[c];  // float product, as runtimes compute it
      std::vector<int32_t> values(static_cast<size_t>(n));
      double signal = 0, noise = 0;
      std::string problem;
      for (int64_t i = 0; i < n && problem.empty(); ++i) {
        const float s = scales[sw.size() == 1 ? 0 : static_cast<size_t>(i)];
        const double b = view.AsDouble(i);
        if (!(s >= std::numeric_limits<float>::min())) {
          problem = "its scale underflows";
          break;
        }
        const double q = std::nearbyint(b / static_cast<double>(s));
        if (!(std::abs(q) <= static_cast<double>(std::numeric_limits<int32_t>::max()))) {
          problem = "element " + std::to_string(i) + " does not fit int32 at scale " + std::to_string(s);
          break;
        }
        values[i] = static_cast<int32_t>(q);
        const double d = b - q * s;
        signal += b * b;
        noise += d * d;
      }
      if (!problem.empty()) {
        report.notices.push_back("bias '" + p.bias + "' of node '" + p.name + "' stays float32: " + problem);
        continue;
      }
      const int axis = sw.size() == 1 ? -1 : 0;
      const std::string qname = names.Fresh(p.bias + "_quantized");
      const std::string sname = names.Fresh(p.bias + "_scale");
      const std::string zname = names.Fresh(p.bias + "_zero_point");
      const std::string out = names.Fresh(p.bias + "_dequantized");
      const std::vector<int32_t> zeros(scales.size(), 0);
      const std::vector<int64_t> sdims = ScaleDims(axis, scales.size());
      new_tensors.push_back(MakeTensor(qname, onnx::TensorProto::INT32, view.shape(), values.data(), values.size()));
      new_tensors.push_back(MakeTensor(sname, onnx::TensorProto::FLOAT, sdims, scales.data(), scales.size()));
      new_tensors.push_back(MakeTensor(zname, onnx::TensorProto::INT32, sdims, zeros.data(), zeros.size()));
      before[p.node].push_back(MakeNode("DequantizeLinear", names.Fresh(p.bias + "_DequantizeLinear"),
                                        {qname, sname, zname}, out, axis));
      bias_out[p.node] = out;
      QuantTensorReport row;
      row.name = p.bias;
      row.kind = "bias";
      row.node = p.name;
      row.dtype = "int32";
      row.shape = view.shape();
      row.axis = axis;
      row.scales = scales;
      row.zero_points = {0};
      row.sqnr_db = SqnrDb(signal, noise);
      report.tensors.push_back(std::move(row));
    }
  }

  // Rewire the planned nodes, then rebuild the node list with the new
  // nodes right before their first reader (the graph stays topologically sorted).
  std::set<std::pair<int, int>> rewired;  // (node, slot) now reading a quantized value
  for (const PlannedNode& p : plan.nodes) {
    onnx::NodeProto* n = g.mutable_node(p.node);
    n->set_input(1, weights.at(p.weight).output);
    rewired.insert({p.node, 1});
    if (is_static) {
      n->set_input(p.activation_slot, act_out.at(p.activation));
      if (auto it = bias_out.find(p.node); it != bias_out.end()) {
        n->set_input(2, it->second);
        rewired.insert({p.node, 2});
      }
    }
  }
  // Float constants whose every reader now reads the quantized copy go away.
  std::set<std::string> graph_outputs;
  for (const auto& o : g.output()) graph_outputs.insert(o.name());
  auto all_rewired = [&](const std::string& name) {
    auto it = index.consumers.find(name);
    if (it == index.consumers.end() || graph_outputs.count(name)) return false;
    return std::all_of(it->second.begin(), it->second.end(),
                       [&](const Use& u) { return rewired.count({u.node, u.input}) > 0; });
  };
  for (const PlannedNode& p : plan.nodes) {
    for (const std::string& t : {p.weight, p.bias}) {
      if (!t.empty() && all_rewired(t)) replaced.insert(t);
    }
  }
  std::vector<onnx::NodeProto> nodes;
  nodes.reserve(static_cast<size_t>(g.node_size()) + before.size() * 3);
  for (int i = 0; i < g.node_size(); ++i) {
    if (auto it = before.find(i); it != before.end()) {
      for (auto& n : it->second) nodes.push_back(std::move(n));
    }
    onnx::NodeProto& n = *g.mutable_node(i);
    const bool dead_constant = n.op_type() == "Constant" && IsDefaultDomain(n) && n.output_size() == 1 &&
                               replaced.count(n.output(0));
    if (!dead_constant) nodes.push_back(std::move(n));
  }
  g.clear_node();
  for (auto& n : nodes) *g.add_node() = std::move(n);
  RemoveIf(g.mutable_initializer(), [&](const onnx::TensorProto& t) { return replaced.count(t.name()) > 0; });
  // Before IR 4 initializers were also listed as graph inputs.
  RemoveIf(g.mutable_input(), [&](const onnx::ValueInfoProto& v) { return replaced.count(v.name()) > 0; });
  for (auto& t : new_tensors) *g.add_initializer() = std::move(t);

  if (plan.opset_after != plan.opset_before) {
    for (auto& o : *proto.mutable_opset_import()) {
      if (o.domain().empty() || o.domain() == "ai.onnx") o.set_version(plan.opset_after);
    }
    // Opset 13 needs IR 7, opset 10 IR 5.
    const int64_t ir = plan.opset_after >= 13 ? 7 : 5;
    if (proto.ir_version() < ir) proto.set_ir_version(ir);
  }
  MP_RETURN_IF_ERROR(model.Reindex());
  // Rows in graph order: per quantized node, its weight, activation and bias.
  std::unordered_map<std::string, size_t> order;
  for (size_t k = 0; k < plan.nodes.size(); ++k) order.emplace(plan.nodes[k].name, k);
  auto rank = [](const std::string& kind) { return kind == "weight" ? 0 : kind == "activation" ? 1 : 2; };
  std::stable_sort(report.tensors.begin(), report.tensors.end(), [&](const auto& a, const auto& b) {
    return std::make_pair(order[a.node], rank(a.kind)) < std::make_pair(order[b.node], rank(b.kind));
  });
  return report;
}

Result<QuantReport> Quantize(Model& model, const QuantizeOptions& options, const CalibrationData* data) {
  MP_ASSIGN_OR_RETURN(QuantPlan plan, PlanQuantization(model, options));
  if (options.mode != QuantMode::kStatic) return ApplyQuantization(model, plan, nullptr, options);
  if (data == nullptr) return InvalidArgument("static quantization needs calibration data");
  CalibrationTable table;
  std::map<std::string, double> sqnr;
  if (!plan.activations.empty()) {
    MP_ASSIGN_OR_RETURN(table, Calibrate(model, plan.activations, *data, options.calibration));
    MP_ASSIGN_OR_RETURN(sqnr, MeasureActivationSqnr(model, table, *data, options.activations));
  }
  MP_ASSIGN_OR_RETURN(QuantReport report, ApplyQuantization(model, plan, &table, options));
  report.calibration_samples = data->samples;
  for (QuantTensorReport& row : report.tensors) {
    if (row.kind != "activation") continue;
    if (auto it = sqnr.find(row.name); it != sqnr.end()) {
      row.sqnr_db = it->second;
      row.has_sqnr = true;
    }
  }
  return report;
}

}  // namespace modelpress::quant
