#include "modelpress/channel_groups.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <set>
#include <unordered_map>

#include "modelpress/graph.h"

namespace modelpress {

ValueShapes InferValueShapes(const Model& model) {
  ValueShapes out;
  // Inference needs types and dims, not weight values: float data is left
  // out of the copy so a large model is not duplicated in memory.
  onnx::ModelProto copy;
  copy.CopyFrom(model.proto());
  for (auto& t : *copy.mutable_graph()->mutable_initializer()) {
    if (IsFloatingPoint(static_cast<DType>(t.data_type())) || t.data_type() == onnx::TensorProto::FLOAT16) {
      t.clear_raw_data();
      t.clear_float_data();
      t.clear_double_data();
      t.clear_int32_data();
    }
  }
  copy.mutable_graph()->clear_value_info();
  try {
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(false, 0, true));
  } catch (const std::exception& e) {
    out.notice = "shape inference failed, shapes unknown: " + std::string(e.what());
  }
  auto add = [&](const onnx::ValueInfoProto& v) {
    if (!v.type().has_tensor_type() || !v.type().tensor_type().has_shape()) return;
    std::vector<int64_t> dims;
    for (const auto& d : v.type().tensor_type().shape().dim()) dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
    out.dims[v.name()] = std::move(dims);
  };
  const auto& g = copy.graph();
  for (const auto& v : g.input()) add(v);
  for (const auto& v : g.value_info()) add(v);
  for (const auto& v : g.output()) add(v);
  for (const auto& t : g.initializer()) out.dims[t.name()] = {t.dims().begin(), t.dims().end()};
  for (const TensorEntry& e : model.tensors()) out.dims[e.name] = {e.proto->dims().begin(), e.proto->dims().end()};
  return out;
}

namespace {

bool IsDefaultDomain(const onnx::NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }

const onnx::AttributeProto* FindAttr(const onnx::NodeProto& n, std::string_view name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t IntAttr(const onnx::NodeProto& n, std::string_view name, int64_t fallback) {
  const auto* a = FindAttr(n, name);
  return a != nullptr && a->has_i() ? a->i() : fallback;
}

std::optional<std::vector<int64_t>> IntsAttr(const onnx::NodeProto& n, std::string_view name) {
  const auto* a = FindAttr(n, name);
  if (a == nullptr) return std::nullopt;
  return std::vector<int64_t>(a->ints().begin(), a->ints().end());
}

std::string NodeName(const onnx::NodeProto& n, int index) {
  return n.op_type() + " node '" + (n.name().empty() ? "#" + std::to_string(index) : n.name()) + "'";
}

// Operators computing each output element from the same element of their
// single activation input (channel order and count preserved).
const std::set<std::string>& Unary() {
  static const std::set<std::string> ops = {
      "Relu",    "LeakyRelu", "Elu",      "Selu",  "Celu",   "Sigmoid",    "HardSigmoid", "HardSwish", "Tanh",
      "Clip",    "Softplus",  "Softsign", "Erf",   "Exp",    "Log",        "Neg",         "Abs",       "Sqrt",
      "Gelu",    "Identity",  "Dropout",  "Cast",  "Floor",  "Ceil",       "Round",       "Sign",      "Reciprocal",
      "Mish",    "ThresholdedRelu", "Shrink", "Not", "IsNaN", "IsInf", "Sin", "Cos"};
  return ops;
}

const std::set<std::string>& Binary() {
  static const std::set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu"};
  return ops;
}

const std::set<std::string>& Pooling() {
  static const std::set<std::string> ops = {"MaxPool",       "AveragePool",   "GlobalAveragePool",
                                            "GlobalMaxPool", "LpPool",        "GlobalLpPool"};
  return ops;
}

const std::set<std::string>& Reductions() {
  static const std::set<std::string> ops = {"ReduceMean", "ReduceSum",       "ReduceMax",      "ReduceMin",
                                            "ReduceProd", "ReduceL1",        "ReduceL2",       "ReduceLogSum",
                                            "ReduceLogSumExp", "ReduceSumSquare"};
  return ops;
}

// Channels of one value: along `axis` (of a value of rank `rank`), position
// p is raw channel ids[p], or kFixedUnit.
struct Info {
  int axis = 0;
  int rank = 0;
  std::vector<int64_t> ids;
};

class Analyzer {
 public:
  explicit Analyzer(const Model& model)
      : model_(model), g_(model.proto().graph()), index_(IndexGraph(g_)), shapes_(InferValueShapes(model)) {
    for (const auto& op : model.proto().opset_import()) {
      if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
    }
    for (const auto& o : g_.output()) graph_outputs_.insert(o.name());
  }

  ChannelAnalysis Run() {
    for (int i = 0; i < g_.node_size(); ++i) Visit(i);
    for (const auto& o : g_.output()) {
      if (const Info* x = Find(o.name())) BlockAll(*x, "channels reach the graph output '" + o.name() + "'");
    }
    return Assemble();
  }

 private:
  // ---- raw channel ids, their spaces (one per producer) and coupling ----
  int64_t NewSpace(int64_t size, int node) {
    const int space = static_cast<int>(space_node_.size());
    space_node_.push_back(node);
    space_parent_.push_back(space);
    space_reason_.emplace_back();
    const int64_t first = static_cast<int64_t>(id_parent_.size());
    for (int64_t i = 0; i < size; ++i) {
      id_parent_.push_back(first + i);
      id_space_.push_back(space);
    }
    return first;
  }
  std::vector<int64_t> NewIds(int64_t size, int node) {
    std::vector<int64_t> ids(static_cast<size_t>(size));
    std::iota(ids.begin(), ids.end(), NewSpace(size, node));
    return ids;
  }
  int64_t FindId(int64_t id) {
    while (id_parent_[id] != id) id = id_parent_[id] = id_parent_[id_parent_[id]];
    return id;
  }
  int FindSpace(int s) {
    while (space_parent_[s] != s) s = space_parent_[s] = space_parent_[space_parent_[s]];
    return s;
  }
  void Block(int64_t id, const std::string& reason) {
    if (id == kFixedUnit) return;
    std::string& r = space_reason_[FindSpace(id_space_[id])];
    if (r.empty()) r = reason;
  }
  void BlockAll(const Info& x, const std::string& reason) {
    for (int64_t id : x.ids) Block(id, reason);
  }
  void Unify(int64_t a, int64_t b, const std::string& where) {
    if (a == kFixedUnit && b == kFixedUnit) return;
    if (a == kFixedUnit || b == kFixedUnit) {
      Block(a == kFixedUnit ? b : a, "coupled by " + where + " to channels that cannot be removed");
      return;
    }
    const int sa = FindSpace(id_space_[a]), sb = FindSpace(id_space_[b]);
    if (sa != sb) {
      const int keep = std::min(sa, sb), drop = std::max(sa, sb);
      space_parent_[drop] = keep;
      if (space_reason_[keep].empty()) space_reason_[keep] = space_reason_[drop];
    }
    const int64_t ra = FindId(a), rb = FindId(b);
    if (ra != rb) id_parent_[std::max(ra, rb)] = std::min(ra, rb);
  }

  // ---- values, shapes and constants ----
  const Info* Find(const std::string& name) const {
    auto it = info_.find(name);
    return it == info_.end() ? nullptr : &it->second;
  }
  const std::vector<int64_t>* Dims(const std::string& name) const {
    auto it = shapes_.dims.find(name);
    return it == shapes_.dims.end() ? nullptr : &it->second;
  }
  int RankOf(const std::string& name, int fallback) const {
    const auto* d = Dims(name);
    return d != nullptr ? static_cast<int>(d->size()) : fallback;
  }
  // The constant behind `name`, also through Identity nodes (exporters share
  // equal tensors, e.g. zero biases, by reading one through Identity copies).
  const TensorEntry* Const(std::string name) const {
    for (int hops = 0; !name.empty() && hops < 16; ++hops) {
      if (const TensorEntry* e = model_.FindTensor(name)) return e;
      auto p = index_.producer.find(name);
      if (p == index_.producer.end()) return nullptr;
      const onnx::NodeProto& n = g_.node(p->second);
      if (!IsDefaultDomain(n) || n.op_type() != "Identity" || n.input_size() != 1) return nullptr;
      name = n.input(0);
    }
    return nullptr;
  }
  // A constant `node` reads through exactly one input, which may therefore be
  // sliced for it (other readers keep the original: the pruner gives `node`
  // a private copy).
  bool Sliceable(const std::string& name, int node) const {
    const TensorEntry* e = Const(name);
    if (e == nullptr || graph_outputs_.count(name) || graph_outputs_.count(e->name)) return false;
    if (DTypeSize(e->proto->data_type()) == 0) return false;
    auto it = index_.consumers.find(name);
    if (it == index_.consumers.end()) return false;
    int slots = 0;
    for (const Use& u : it->second) {
      if (u.input < 0) return false;
      slots += u.node == node;
    }
    return slots == 1;
  }
  std::optional<std::vector<int64_t>> ConstInts(const std::string& name) const {
    const TensorEntry* e = Const(name);
    if (e == nullptr) return std::nullopt;
    auto v = model_.View(*e);
    if (!v.ok()) return std::nullopt;
    std::vector<int64_t> out;
    for (int64_t i = 0; i < v->size(); ++i) out.push_back(static_cast<int64_t>(v->AsDouble(i)));
    return out;
  }
  std::vector<int64_t> ConstDims(const std::string& name) const {
    const TensorEntry* e = Const(name);
    return e ? std::vector<int64_t>(e->proto->dims().begin(), e->proto->dims().end()) : std::vector<int64_t>{};
  }
  void AddSlice(const std::string& tensor, int node, int axis, const std::vector<int64_t>& ids, bool produces, bool scored) {
    slices_.push_back({Const(tensor)->name, tensor, g_.node(node).name(), node, axis, ids, produces, scored});
  }
  void Set(const std::string& value, Info x) {
    if (!value.empty()) info_[value] = std::move(x);
  }

  // ---- one node ----
  void Visit(int i) {
    const onnx::NodeProto& n = g_.node(i);
    std::vector<const Info*> in(n.input_size(), nullptr);
    bool any = false;
    for (int s = 0; s < n.input_size(); ++s) {
      in[s] = Find(n.input(s));
      any |= in[s] != nullptr;
    }
    const std::string& op = n.op_type();
    const std::string where = NodeName(n, i);
    if (!IsDefaultDomain(n)) {
      BlockInputs(in, "read by " + where + " of domain '" + n.domain() + "'");
      return;
    }
    if (op == "Conv" || op == "ConvTranspose") return VisitConv(i, in);
    if (op == "Gemm") return VisitGemm(i, in);
    if (op == "MatMul") return VisitMatMul(i, in);
    if (!any) return;
    if (op == "BatchNormalization" || op == "InstanceNormalization") return VisitNorm(i, in);
    if (Unary().count(op)) {
      for (int s = 1; s < n.input_size(); ++s) {
        if (in[s]) BlockAll(*in[s], "used as a parameter of " + where);
      }
      if (!in[0]) return;
      if (n.output_size() > 1 && !n.output(1).empty() && index_.consumers.count(n.output(1))) {
        return BlockAll(*in[0], "the mask output of " + where + " is used");
      }
      return Set(n.output(0), *in[0]);
    }
    if (Binary().count(op)) return VisitBinary(i, in);
    if (Pooling().count(op)) {
      if (!in[0] || in[0]->axis != 1) return BlockInputs(in, "pooled by " + where + " along the channel axis");
      if (n.output_size() > 1 && !n.output(1).empty()) return BlockAll(*in[0], "the indices of " + where + " are used");
      return Set(n.output(0), *in[0]);
    }
    if (op == "Concat") return VisitConcat(i, in);
    if (op == "Split") return VisitSplit(i, in);
    if (op == "Slice") return VisitSlice(i, in);
    if (op == "Pad") return VisitPad(i, in);
    if (op == "Transpose") {
      const Info& x = *in[0];
      std::vector<int64_t> perm = IntsAttr(n, "perm").value_or(std::vector<int64_t>{});
      if (perm.empty()) {
        for (int k = x.rank - 1; k >= 0; --k) perm.push_back(k);
      }
      auto it = std::find(perm.begin(), perm.end(), x.axis);
      if (it == perm.end()) return BlockAll(x, where + " has a malformed perm");
      return Set(n.output(0), {static_cast<int>(it - perm.begin()), x.rank, x.ids});
    }
    if (op == "Flatten" || op == "Reshape" || op == "Squeeze" || op == "Unsqueeze") return VisitReshape(i, in);
    if (Reductions().count(op)) return VisitReduce(i, in);
    if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax" || op == "LayerNormalization") {
      if (!in[0]) return BlockInputs(in, "used as a parameter of " + where);
      const Info& x = *in[0];
      const int64_t def = op == "LayerNormalization" || opset_ >= 13 ? -1 : 1;
      int64_t axis = IntAttr(n, "axis", def);
      if (axis < 0) axis += x.rank;
      // Softmax from opset 13 and Hardmax/LogSoftmax alike normalise one axis; LayerNormalization and the
      // older Softmax normalise every axis from `axis` on.
      const bool one_axis = op != "LayerNormalization" && opset_ >= 13;
      const bool mixes = one_axis ? x.axis == axis : x.axis >= axis;
      if (mixes) return BlockAll(x, "normalised across channels by " + where);
      for (int s = 1; s < n.input_size(); ++s) {
        if (in[s]) return BlockAll(*in[s], "used as a parameter of " + where);
      }
      return Set(n.output(0), x);
    }
    if (op == "Shape" || op == "Size") return;  // reads only the shape, which stays consistent at run time
    BlockInputs(in, "read by " + where + ", which modelpress cannot prove keeps channels apart");
  }

  void BlockInputs(const std::vector<const Info*>& in, const std::string& reason) {
    for (const Info* x : in) {
      if (x) BlockAll(*x, reason);
    }
  }

  void VisitConv(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    const bool transpose = n.op_type() == "ConvTranspose";
    const Info* x = in.empty() ? nullptr : in[0];
    const std::string w = n.input_size() > 1 ? n.input(1) : "";
    const std::string b = n.input_size() > 2 ? n.input(2) : "";
    for (size_t s = 1; s < in.size(); ++s) {
      if (in[s]) BlockAll(*in[s], "used as a weight of " + where);
    }
    const int64_t group = IntAttr(n, "group", 1);
    const std::vector<int64_t> wd = ConstDims(w);
    const bool w_ok = Sliceable(w, i) && wd.size() >= 3;
    const bool b_ok = b.empty() || (Sliceable(b, i) && ConstDims(b).size() == 1);
    if (x && x->axis != 1) return BlockAll(*x, "reaches " + where + " on an axis other than its channel axis");
    if (!w_ok || !b_ok) {
      if (x) BlockAll(*x, "the weight or bias of " + where + " is not a constant (or is read twice by it)");
      return;
    }
    const int rank = RankOf(n.output(0), x ? x->rank : static_cast<int>(wd.size()));
    if (group == 1) {
      const int in_axis = transpose ? 0 : 1, out_axis = transpose ? 1 : 0;
      if (x) AddSlice(w, i, in_axis, x->ids, false, true);
      std::vector<int64_t> out = NewIds(wd[out_axis], i);
      AddSlice(w, i, out_axis, out, true, true);
      if (!b.empty()) AddSlice(b, i, 0, out, true, false);
      return Set(n.output(0), {1, rank, std::move(out)});
    }
    // Depthwise with one filter per channel: output channel c is input channel c.
    const int64_t channels = x ? static_cast<int64_t>(x->ids.size()) : -1;
    if (!transpose && x && group == channels && wd[0] == channels && wd[1] == 1) {
      AddSlice(w, i, 0, x->ids, true, true);
      if (!b.empty()) AddSlice(b, i, 0, x->ids, true, false);
      fixups_.push_back({ShapeFixup::kConvGroup, i, "", 0, x->ids});
      return Set(n.output(0), {1, rank, x->ids});
    }
    if (x) BlockAll(*x, "read by " + where + " with group=" + std::to_string(group) + ", which ties channels by group");
  }

  void VisitGemm(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    for (size_t s = 1; s < in.size(); ++s) {
      if (in[s]) BlockAll(*in[s], "used as B or C of " + where);
    }
    const Info* a = in.empty() ? nullptr : in[0];
    const std::string b = n.input_size() > 1 ? n.input(1) : "";
    const std::string c = n.input_size() > 2 ? n.input(2) : "";
    const bool trans_a = IntAttr(n, "transA", 0) != 0, trans_b = IntAttr(n, "transB", 0) != 0;
    const std::vector<int64_t> bd = ConstDims(b);
    const bool b_ok = Sliceable(b, i) && bd.size() == 2;
    if (a && (trans_a || a->axis != 1 || a->rank != 2 || !b_ok)) {
      return BlockAll(*a, "read by " + where + " other than as the features of A with a constant B");
    }
    if (!b_ok || Const(n.input(0))) return;
    if (a) AddSlice(b, i, trans_b ? 1 : 0, a->ids, false, true);
    const int64_t features = trans_b ? bd[0] : bd[1];
    std::vector<int64_t> out = NewIds(features, i);
    AddSlice(b, i, trans_b ? 0 : 1, out, true, true);
    if (!c.empty()) {
      const std::vector<int64_t> cd = ConstDims(c);
      if (!Sliceable(c, i)) {
        Block(out.front(), "the C input of " + where + " is not a constant");
      } else if (!cd.empty() && cd.back() == features && features != 1) {
        AddSlice(c, i, static_cast<int>(cd.size()) - 1, out, true, false);
      } else if (!cd.empty() && cd.back() != 1) {
        Block(out.front(), "the C input of " + where + " has an unexpected shape");
      }
    }
    Set(n.output(0), {1, 2, std::move(out)});
  }

  void VisitMatMul(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    const Info* a = in.size() > 0 ? in[0] : nullptr;
    if (in.size() > 1 && in[1]) {
      BlockAll(*in[1], "the right operand of " + where);
      if (a) BlockAll(*a, "multiplied by another activation in " + where);
      return;
    }
    const std::string b = n.input_size() > 1 ? n.input(1) : "";
    const std::vector<int64_t> bd = ConstDims(b);
    const bool b_ok = Sliceable(b, i) && bd.size() == 2;
    const int rank = a ? a->rank : RankOf(n.input(0), -1);
    if (a && (a->axis != a->rank - 1 || !b_ok)) {
      return BlockAll(*a, "read by " + where + " other than along the reduction axis of a constant 2-D B");
    }
    if (!b_ok || Const(n.input(0)) || rank < 2) return;
    if (a) AddSlice(b, i, 0, a->ids, false, true);
    std::vector<int64_t> out = NewIds(bd[1], i);
    AddSlice(b, i, 1, out, true, true);
    Set(n.output(0), {rank - 1, rank, std::move(out)});
  }

  void VisitNorm(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    for (size_t s = 1; s < in.size(); ++s) {
      if (in[s]) return BlockInputs(in, "used as a parameter of " + where);
    }
    if (!in[0]) return;
    const Info& x = *in[0];
    if (x.axis != 1) return BlockAll(x, "normalised by " + where + " on another axis");
    for (int o = 1; o < n.output_size(); ++o) {
      if (!n.output(o).empty() && index_.consumers.count(n.output(o))) return BlockAll(x, "training outputs of " + where + " are used");
    }
    for (int s = 1; s < n.input_size(); ++s) {
      if (!Sliceable(n.input(s), i) || ConstDims(n.input(s)).size() != 1) {
        return BlockAll(x, "parameter '" + n.input(s) + "' of " + where + " is not a 1-D constant read only by that node");
      }
    }
    for (int s = 1; s < n.input_size(); ++s) AddSlice(n.input(s), i, 0, x.ids, true, s == 1);
    Set(n.output(0), x);
  }

  void VisitBinary(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    int out_rank = RankOf(n.output(0), -1);
    for (int s = 0; s < n.input_size(); ++s) {
      const int r = in[s] ? in[s]->rank : RankOf(n.input(s), -1);
      if (r < 0) return BlockInputs(in, "the shape of '" + n.input(s) + "' (input of " + where + ") is unknown");
      out_rank = std::max(out_rank, r);
    }
    // The channel axis in output coordinates (numpy broadcasting aligns trailing dims).
    int axis = -1;
    const Info* first = nullptr;
    for (const Info* x : in) {
      if (!x) continue;
      const int a = x->axis + (out_rank - x->rank);
      if (axis >= 0 && a != axis) return BlockInputs(in, "combined on different axes by " + where);
      axis = a;
      if (!first) first = x;
    }
    for (const Info* x : in) {
      if (!x || x == first) continue;
      if (x->ids.size() != first->ids.size()) return BlockInputs(in, "broadcast across channels by " + where);
      for (size_t p = 0; p < x->ids.size(); ++p) Unify(first->ids[p], x->ids[p], where);
    }
    for (int s = 0; s < n.input_size(); ++s) {
      if (in[s]) continue;
      const std::string& name = n.input(s);
      const bool constant = Const(name) != nullptr;
      const std::vector<int64_t> d = constant ? ConstDims(name) : (Dims(name) ? *Dims(name) : std::vector<int64_t>{});
      const int a = axis - (out_rank - static_cast<int>(d.size()));
      if (a < 0 || d[a] == 1) continue;  // broadcast over the channels
      if (constant && d[a] == static_cast<int64_t>(first->ids.size()) && Sliceable(name, i)) {
        AddSlice(name, i, a, first->ids, true, false);
        continue;
      }
      return BlockInputs(in, "combined in " + where + " with '" + name + "', whose channels cannot be removed with them");
    }
    Set(n.output(0), {axis, out_rank, first->ids});
  }

  void VisitConcat(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    const Info* any = nullptr;
    for (const Info* x : in) any = any ? any : x;
    int64_t axis = IntAttr(n, "axis", 0);
    if (axis < 0) axis += any->rank;
    std::vector<int64_t> ids;
    if (axis != any->axis) {
      // Concatenated along another axis: every input must carry the same channels.
      for (const Info* x : in) {
        if (!x || x->axis != any->axis || x->ids.size() != any->ids.size()) {
          return BlockInputs(in, "concatenated by " + where + " with inputs whose channels differ");
        }
        for (size_t p = 0; p < x->ids.size(); ++p) Unify(any->ids[p], x->ids[p], where);
      }
      return Set(n.output(0), *any);
    }
    for (int s = 0; s < n.input_size(); ++s) {
      if (in[s]) {
        if (in[s]->axis != axis || in[s]->rank != any->rank) return BlockInputs(in, "concatenated on mismatched axes by " + where);
        ids.insert(ids.end(), in[s]->ids.begin(), in[s]->ids.end());
        continue;
      }
      const std::vector<int64_t> d = Const(n.input(s)) ? ConstDims(n.input(s)) : (Dims(n.input(s)) ? *Dims(n.input(s)) : std::vector<int64_t>{});
      if (static_cast<int64_t>(d.size()) <= axis || d[axis] < 0) {
        return BlockInputs(in, "concatenated by " + where + " with '" + n.input(s) + "' of unknown channel count");
      }
      ids.insert(ids.end(), static_cast<size_t>(d[axis]), kFixedUnit);
    }
    Set(n.output(0), {static_cast<int>(axis), any->rank, std::move(ids)});
  }

  void VisitSplit(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    if (!in[0]) return BlockInputs(in, "used as the split sizes of " + where);
    const Info& x = *in[0];
    int64_t axis = IntAttr(n, "axis", 0);
    if (axis < 0) axis += x.rank;
    if (axis != x.axis) {
      for (const auto& o : n.output()) Set(o, x);
      return;
    }
    const std::string split_input = n.input_size() > 1 ? n.input(1) : "";
    std::vector<int64_t> sizes;
    if (!split_input.empty()) {
      auto v = ConstInts(split_input);
      if (!v || !model_.FindTensor(split_input)) return BlockAll(x, "the split sizes of " + where + " are not a constant");
      sizes = *v;
    } else if (auto attr = IntsAttr(n, "split")) {
      sizes = *attr;
    } else {
      const int64_t parts = n.output_size(), length = static_cast<int64_t>(x.ids.size());
      if (parts == 0 || length % parts != 0) return BlockAll(x, where + " splits unevenly without sizes");
      sizes.assign(static_cast<size_t>(parts), length / parts);
    }
    if (static_cast<int>(sizes.size()) != n.output_size() ||
        std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != static_cast<int64_t>(x.ids.size())) {
      return BlockAll(x, "the split sizes of " + where + " do not match its channels");
    }
    int64_t at = 0;
    for (int o = 0; o < n.output_size(); ++o) {
      std::vector<int64_t> part(x.ids.begin() + at, x.ids.begin() + at + sizes[o]);
      at += sizes[o];
      fixups_.push_back({ShapeFixup::kSplitSize, i, split_input, o, part});
      Set(n.output(o), {x.axis, x.rank, std::move(part)});
    }
  }

  void VisitSlice(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    if (!in[0]) return BlockInputs(in, "used as the bounds of " + where);
    const Info& x = *in[0];
    const int64_t length = static_cast<int64_t>(x.ids.size());
    if (opset_ < 10) {
      auto axes = IntsAttr(n, "axes");
      bool touches = !axes;
      for (int64_t a : axes.value_or(std::vector<int64_t>{})) touches |= (a < 0 ? a + x.rank : a) == x.axis;
      if (touches) return BlockAll(x, "sliced on the channel axis by " + where + " (opset < 10)");
      return Set(n.output(0), x);
    }
    auto starts = ConstInts(n.input(1)), ends = ConstInts(n.input(2));
    std::optional<std::vector<int64_t>> axes, steps;
    if (n.input_size() > 3 && !n.input(3).empty()) axes = ConstInts(n.input(3));
    if (n.input_size() > 4 && !n.input(4).empty()) steps = ConstInts(n.input(4));
    if (!starts || !ends || !model_.FindTensor(n.input(1)) || !model_.FindTensor(n.input(2)) || (n.input_size() > 3 && !n.input(3).empty() && !axes) ||
        (n.input_size() > 4 && !n.input(4).empty() && !steps)) {
      return BlockAll(x, "the bounds of " + where + " are not constant");
    }
    if (ends->size() != starts->size() || (axes && axes->size() != starts->size()) ||
        (steps && steps->size() != starts->size())) {
      return BlockAll(x, "the bounds of " + where + " have different lengths");
    }
    int j = -1;
    for (size_t k = 0; k < starts->size(); ++k) {
      int64_t a = axes ? (*axes)[k] : static_cast<int64_t>(k);
      if (a < 0) a += x.rank;
      if (a == x.axis) j = static_cast<int>(k);
    }
    if (j < 0) return Set(n.output(0), x);
    if (steps && (*steps)[j] != 1) return BlockAll(x, "sliced with a step by " + where);
    auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + length : v, int64_t{0}, length); };
    const int64_t s = clamp((*starts)[j]), e = std::max(s, clamp((*ends)[j]));
    if (s == e) return BlockAll(x, where + " keeps no channel");
    fixups_.push_back({ShapeFixup::kSliceStart, i, n.input(1), j, {x.ids.begin(), x.ids.begin() + s}});
    fixups_.push_back({ShapeFixup::kSliceEnd, i, n.input(2), j, {x.ids.begin(), x.ids.begin() + e}});
    Set(n.output(0), {x.axis, x.rank, {x.ids.begin() + s, x.ids.begin() + e}});
  }

  void VisitPad(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    if (!in[0]) return BlockInputs(in, "used as a parameter of " + where);
    const Info& x = *in[0];
    std::optional<std::vector<int64_t>> pads = opset_ < 11 ? IntsAttr(n, "pads") : ConstInts(n.input_size() > 1 ? n.input(1) : "");
    if (!pads || static_cast<int>(pads->size()) != 2 * x.rank || (n.input_size() > 3 && !n.input(3).empty())) {
      return BlockAll(x, "the pads of " + where + " are not known constants");
    }
    if ((*pads)[x.axis] != 0 || (*pads)[x.axis + x.rank] != 0) return BlockAll(x, where + " pads the channel axis");
    Set(n.output(0), x);
  }

  // Flatten, Reshape, Squeeze, Unsqueeze: accepted when the channel axis is
  // either kept whole or merged with neighbouring dims into one output axis,
  // which then holds each channel as blocks of `inner` features, repeated
  // for every `outer` index. Anything that splits the channel axis is refused.
  void VisitReshape(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    if (!in[0]) return BlockInputs(in, "used as the shape of " + where);
    const Info& x = *in[0];
    const std::vector<int64_t>* din = Dims(n.input(0));
    const std::vector<int64_t>* dout = Dims(n.output(0));
    if (!din || !dout || static_cast<int>(din->size()) != x.rank) {
      return BlockAll(x, "reshaped by " + where + " with unknown shapes");
    }
    std::vector<int64_t> a = *din, b = *dout;
    // A symbolic leading (batch) dim on both sides is the same dim.
    if (!a.empty() && !b.empty() && a[0] < 0 && b[0] < 0 && x.axis > 0) a[0] = b[0] = 1;
    for (int64_t d : a) {
      if (d < 0) return BlockAll(x, "reshaped by " + where + " with unknown dims");
    }
    for (int64_t d : b) {
      if (d < 0) return BlockAll(x, "reshaped by " + where + " with unknown dims");
    }
    const int64_t before = std::accumulate(a.begin(), a.begin() + x.axis, int64_t{1}, std::multiplies<>());
    const int64_t after = std::accumulate(a.begin() + x.axis + 1, a.end(), int64_t{1}, std::multiplies<>());
    const int64_t length = static_cast<int64_t>(x.ids.size());
    int64_t prefix = 1;
    for (size_t j = 0; j < b.size(); ++j) {
      const int64_t suffix = std::accumulate(b.begin() + j + 1, b.end(), int64_t{1}, std::multiplies<>());
      if (prefix > 0 && before % prefix == 0 && suffix > 0 && after % suffix == 0 &&
          b[j] == (before / prefix) * length * (after / suffix) && b[j] > 0) {
        const int64_t outer = before / prefix, inner = after / suffix;
        std::vector<int64_t> ids;
        ids.reserve(static_cast<size_t>(b[j]));
        for (int64_t o = 0; o < outer; ++o) {
          for (int64_t id : x.ids) ids.insert(ids.end(), static_cast<size_t>(inner), id);
        }
        if (n.op_type() == "Reshape") {
          // The shape constant's entry for this axis must follow the channels (0 and -1 follow by themselves).
          auto shape = ConstInts(n.input(1));
          if (!shape || shape->size() != b.size() || !model_.FindTensor(n.input(1))) {
            return BlockAll(x, "the shape of " + where + " is not a constant");
          }
          for (size_t k = 0; k < shape->size(); ++k) {
            const bool copies = (*shape)[k] == 0 && IntAttr(n, "allowzero", 0) == 0;
            if (copies && (k == j) != (k == static_cast<size_t>(x.axis))) {
              return BlockAll(x, "the shape of " + where + " copies a dim across the channel axis");
            }
          }
          if ((*shape)[j] > 0) fixups_.push_back({ShapeFixup::kReshapeDim, i, n.input(1), static_cast<int>(j), ids});
        }
        return Set(n.output(0), {static_cast<int>(j), static_cast<int>(b.size()), std::move(ids)});
      }
      prefix *= b[j];
    }
    BlockAll(x, "reshaped by " + where + " in a way that splits or mixes channels");
  }

  void VisitReduce(int i, const std::vector<const Info*>& in) {
    const onnx::NodeProto& n = g_.node(i);
    const std::string where = NodeName(n, i);
    if (!in[0]) return BlockInputs(in, "used as the axes of " + where);
    const Info& x = *in[0];
    std::optional<std::vector<int64_t>> axes = IntsAttr(n, "axes");
    if (n.input_size() > 1 && !n.input(1).empty()) axes = ConstInts(n.input(1));
    if (!axes && n.input_size() > 1 && !n.input(1).empty()) return BlockAll(x, "the axes of " + where + " are not constant");
    const bool keep = IntAttr(n, "keepdims", 1) != 0;
    if (!axes || axes->empty()) {
      if (IntAttr(n, "noop_with_empty_axes", 0) != 0) return Set(n.output(0), x);
      return BlockAll(x, "reduced across channels by " + where);
    }
    int removed_before = 0;
    for (int64_t a : *axes) {
      if (a < 0) a += x.rank;
      if (a == x.axis) return BlockAll(x, "reduced across channels by " + where);
      if (a < x.axis) ++removed_before;
    }
    const int rank = keep ? x.rank : x.rank - static_cast<int>(axes->size());
    Set(n.output(0), {keep ? x.axis : x.axis - removed_before, rank, x.ids});
  }

  // ---- result ----
  ChannelAnalysis Assemble() {
    ChannelAnalysis out;
    out.notices.reserve(1);
    if (!shapes_.notice.empty()) out.notices.push_back(shapes_.notice);
    std::vector<int64_t> unit_of(id_parent_.size(), kFixedUnit);
    std::vector<int> group_of_space(space_node_.size(), -1);
    for (size_t s = 0; s < space_node_.size(); ++s) {
      const int root = FindSpace(static_cast<int>(s));
      if (group_of_space[root] < 0) {
        group_of_space[root] = static_cast<int>(out.groups.size());
        ChannelGroup grp;
        grp.id = group_of_space[root];
        grp.prunable = space_reason_[root].empty();
        grp.reason = space_reason_[root];
        out.groups.push_back(std::move(grp));
      }
      group_of_space[s] = group_of_space[root];
      const onnx::NodeProto& n = g_.node(space_node_[s]);
      out.groups[group_of_space[s]].producers.push_back(n.name().empty() ? n.output(0) : n.name());
    }
    // Number the units group by group so each group owns a contiguous range.
    std::vector<std::vector<int64_t>> ids_of_group(out.groups.size());
    for (size_t id = 0; id < id_parent_.size(); ++id) ids_of_group[group_of_space[id_space_[id]]].push_back(static_cast<int64_t>(id));
    int64_t next = 0;
    std::unordered_map<int64_t, int64_t> unit_of_root;
    for (ChannelGroup& grp : out.groups) {
      grp.first_unit = next;
      for (int64_t id : ids_of_group[grp.id]) {
        const int64_t root = FindId(id);
        auto [it, fresh] = unit_of_root.emplace(root, next);
        if (fresh) {
          out.unit_group.push_back(grp.id);
          ++next;
        }
        unit_of[id] = it->second;
      }
      grp.channels = next - grp.first_unit;
    }
    auto map = [&](std::vector<int64_t>& ids) {
      for (int64_t& id : ids) id = id == kFixedUnit ? kFixedUnit : unit_of[id];
    };
    for (ChannelSlice& s : slices_) map(s.units);
    for (ShapeFixup& f : fixups_) map(f.units);
    out.slices = std::move(slices_);
    out.fixups = std::move(fixups_);
    return out;
  }

  const Model& model_;
  const onnx::GraphProto& g_;
  const GraphIndex index_;
  const ValueShapes shapes_;
  int64_t opset_ = 1;
  std::set<std::string> graph_outputs_;
  std::unordered_map<std::string, Info> info_;
  std::vector<int64_t> id_parent_;
  std::vector<int> id_space_;
  std::vector<int> space_node_;
  std::vector<int> space_parent_;
  std::vector<std::string> space_reason_;
  std::vector<ChannelSlice> slices_;
  std::vector<ShapeFixup> fixups_;
};

}  // namespace

ChannelAnalysis AnalyzeChannelGroups(const Model& model) { return Analyzer(model).Run(); }

}  // namespace modelpress
