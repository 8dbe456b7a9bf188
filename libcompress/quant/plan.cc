// Planning: which operators, weights, biases and activations a quantization
// touches, and whether the model's opset can carry the result. Pure analysis;
// the rewrite is apply.cc.
#include <onnx/defs/schema.h>

#include <algorithm>
#include <regex>
#include <set>
#include <unordered_map>

#include "modelpress/graph.h"
#include "modelpress/quant.h"
#include "quant/internal.h"

namespace modelpress::quant {

std::string_view QuantModeName(QuantMode m) { return m == QuantMode::kStatic ? "static" : "weight-only"; }

bool IsDefaultDomain(const onnx::NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }

std::string NodeLabel(const onnx::NodeProto& n) {
  if (!n.name().empty()) return n.name();
  return n.output_size() > 0 ? n.output(0) : n.op_type();
}

int64_t IntAttr(const onnx::NodeProto& n, std::string_view name, int64_t fallback) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name && a.type() == onnx::AttributeProto::INT) return a.i();
  }
  return fallback;
}

float FloatAttr(const onnx::NodeProto& n, std::string_view name, float fallback) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name && a.type() == onnx::AttributeProto::FLOAT) return a.f();
  }
  return fallback;
}

int64_t DefaultOpset(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") return o.version();
  }
  return 0;
}

namespace {

const std::set<std::string> kQuantizable = {"Conv", "ConvTranspose", "Gemm", "MatMul"};

// Operators that only exist in quantized models.
bool IsQuantizedOp(const onnx::NodeProto& n) {
  static const std::set<std::string> kOps = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear",
                                             "QLinearConv",    "QLinearMatMul",    "ConvInteger",
                                             "MatMulInteger"};
  if (kOps.count(n.op_type())) return true;
  return n.domain() == "com.microsoft" && (n.op_type().rfind("QLinear", 0) == 0 || n.op_type().rfind("QGemm", 0) == 0 ||
                                           n.op_type().rfind("QAttention", 0) == 0);
}

// Operators whose meaning changed between opsets although their inputs and
// attributes kept their names (Softmax and friends coerce to 2-D before 13).
const std::set<std::string> kMeaningChanged = {"Softmax", "LogSoftmax", "Hardmax"};

// Why `n` cannot move from opset `from` to `to`, or "" when it can: the
// schemas must have the same inputs and outputs (by name, in order), the new
// one must keep every attribute of the old one, and the op must not be one
// whose meaning changed.
std::string RaiseProblem(const onnx::NodeProto& n, int64_t from, int64_t to) {
  const auto* a = onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(from));
  const auto* b = onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(to));
  if (a == nullptr || b == nullptr) return "is not known to ONNX at opset " + std::to_string(a ? to : from);
  if (a->since_version() == b->since_version()) return "";
  const std::string changed = "changed in opset " + std::to_string(b->since_version());
  if (b->Deprecated()) return "is deprecated by opset " + std::to_string(to);
  if (kMeaningChanged.count(n.op_type())) return changed + " (its axis semantics)";
  auto names = [](const std::vector<onnx::OpSchema::FormalParameter>& ps) {
    std::vector<std::string> v;
    for (const auto& p : ps) v.push_back(p.GetName());
    return v;
  };
  if (names(a->inputs()) != names(b->inputs())) return changed + " (its inputs)";
  if (names(a->outputs()) != names(b->outputs())) return changed + " (its outputs)";
  for (const auto& [attr, _] : a->attributes()) {
    if (!b->attributes().count(attr)) return changed + " (attribute '" + attr + "' was removed)";
  }
  return "";
}

}  // namespace

Result<QuantPlan> PlanQuantization(const Model& model, const QuantizeOptions& options) {
  for (const std::string& op : options.op_types) {
    if (!kQuantizable.count(op)) {
      return InvalidArgument("cannot quantize operator type '" + op + "'; choose from Conv, ConvTranspose, Gemm, MatMul");
    }
  }
  std::regex exclude;
  if (!options.exclude.empty()) {
    try {
      exclude = std::regex(options.exclude, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgument("--exclude '" + options.exclude + "' is not a valid regular expression: " + e.what());
    }
  }
  const onnx::ModelProto& proto = model.proto();
  const onnx::GraphProto& g = proto.graph();
  QuantPlan plan;
  plan.opset_before = DefaultOpset(proto);
  plan.opset_after = plan.opset_before;
  if (plan.opset_before == 0) return Corrupt(model.source() + ": imports no opset of the default ONNX domain");

  for (const auto& n : g.node()) {
    if (IsQuantizedOp(n)) {
      return Unsupported(model.source() + ": already quantized (node '" + NodeLabel(n) + "' is " + n.op_type() +
                         "); quantize the float model instead");
    }
  }
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);
  std::unordered_map<std::string, const WeightInfo*> info_of;
  for (const WeightInfo& w : infos) info_of[w.name] = &w;
  for (const WeightInfo& w : infos) {
    if (!IsLinearWeight(w.role)) continue;
    auto v = model.View(w.name);
    if (v.ok() && (v->dtype() == DType::kInt8 || v->dtype() == DType::kUint8)) {
      return Unsupported(model.source() + ": already quantized (weight '" + w.name + "' is " + DTypeName(v->dtype()) +
                         "); quantize the float model instead");
    }
  }

  const bool is_static = options.mode == QuantMode::kStatic;
  const std::set<std::string> wanted(options.op_types.begin(), options.op_types.end());
  std::set<std::string> activations_seen;
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    if (!IsDefaultDomain(n) || !wanted.count(n.op_type())) continue;
    const std::string label = NodeLabel(n);
    auto skip = [&](std::string reason) { plan.skipped.push_back({label, n.op_type(), std::move(reason)}); };
    if (n.input_size() < 2 || n.input(1).empty()) {
      skip("has no second input");
      continue;
    }
    const std::string& weight = n.input(1);
    const TensorEntry* entry = model.FindTensor(weight);
    if (entry == nullptr) {
      skip("weight '" + weight + "' is not a constant (both inputs are activations)");
      continue;
    }
    if (!options.exclude.empty() && (std::regex_search(label, exclude) || std::regex_search(weight, exclude))) {
      skip("excluded by --exclude");
      continue;
    }
    const WeightInfo* info = info_of.count(weight) ? info_of[weight] : nullptr;
    if (info == nullptr || !IsLinearWeight(info->role)) {
      skip("weight '" + weight + "' has no single linear-weight role" +
           (info && info->conflicting ? " (its readers disagree on the layout)" : ""));
      continue;
    }
    if (entry->proto->data_type() != onnx::TensorProto::FLOAT) {
      skip("weight '" + weight + "' is " + DTypeName(entry->proto->data_type()) + "; only float32 weights are quantized");
      continue;
    }
    if (n.op_type() == "Gemm" && model.FindTensor(n.input(0)) != nullptr) {
      skip("both Gemm inputs are constants");
      continue;
    }
    PlannedNode p;
    p.node = i;
    p.name = label;
    p.op_type = n.op_type();
    p.weight = weight;
    p.axis = options.per_channel ? info->output_axis : -1;
    if (is_static) {
      p.activation = n.input(0);
      p.activation_slot = 0;
      if (p.activation.empty() || model.FindTensor(p.activation) != nullptr) {
        skip("its first input is not an activation");
        continue;
      }
      // int32 bias needs the node to compute exactly x * w + b: a 1-D bias
      // over the output channels, Gemm without alpha/beta scaling, and one
      // weight scale per output channel (a grouped ConvTranspose has K/group).
      const bool has_bias_slot = n.op_type() != "MatMul" && n.input_size() >= 3 && !n.input(2).empty();
      if (options.quantize_bias && has_bias_slot) {
        const TensorEntry* b = model.FindTensor(n.input(2));
        const int64_t channels = entry->proto->dims(info->output_axis);
        const bool plain_gemm =
            n.op_type() != "Gemm" || (FloatAttr(n, "alpha", 1.0f) == 1.0f && FloatAttr(n, "beta", 1.0f) == 1.0f);
        const bool ungrouped_transpose = n.op_type() != "ConvTranspose" || IntAttr(n, "group", 1) == 1;
        if (b != nullptr && b->proto->data_type() == onnx::TensorProto::FLOAT && b->proto->dims_size() == 1 &&
            b->proto->dims(0) == channels && plain_gemm && ungrouped_transpose) {
          p.bias = n.input(2);
        }
      }
      if (activations_seen.insert(p.activation).second) plan.activations.push_back(p.activation);
    }
    plan.nodes.push_back(std::move(p));
  }

  // DequantizeLinear exists from opset 10; its `axis` (per channel) from 13.
  if (!plan.nodes.empty()) {
    const bool any_axis = std::any_of(plan.nodes.begin(), plan.nodes.end(), [](const auto& p) { return p.axis >= 0; });
    const int64_t need = any_axis ? 13 : 10;
    if (plan.opset_before < need) {
      for (const auto& n : g.node()) {
        if (!IsDefaultDomain(n)) continue;
        const std::string problem = RaiseProblem(n, plan.opset_before, need);
        if (!problem.empty()) {
          return Unsupported(model.source() + ": opset " + std::to_string(plan.opset_before) + " cannot carry " +
                             (any_axis ? "per-channel DequantizeLinear (opset 13)" : "DequantizeLinear (opset 10)") +
                             " and cannot be raised: node '" + NodeLabel(n) + "' (" + n.op_type() + ") " + problem +
                             (any_axis && plan.opset_before >= 10 ? "; --per-tensor works at opset 10" : ""));
        }
      }
      plan.opset_after = need;
      plan.notices.push_back("opset raised from " + std::to_string(plan.opset_before) + " to " + std::to_string(need) +
                             (any_axis ? " for per-channel DequantizeLinear" : " for DequantizeLinear"));
    }
  }
  return plan;
}

}  // namespace modelpress::quant
