#include "modelpress/graph.h"

#include <set>

namespace modelpress {
namespace {

int64_t IntAttr(const onnx::NodeProto& n, std::string_view name, int64_t fallback) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name && a.has_i()) return a.i();
  }
  return fallback;
}

bool IsDefaultDomain(const onnx::NodeProto& n) { return n.domain().empty() || n.domain() == "ai.onnx"; }

// Ops a weight may pass through unchanged in layout on its way to the
// operator that gives it a role (input slot 0 only).
bool IsPassThrough(const onnx::NodeProto& n) {
  return IsDefaultDomain(n) &&
         (n.op_type() == "DequantizeLinear" || n.op_type() == "QuantizeLinear" || n.op_type() == "Identity" ||
          n.op_type() == "Cast");
}

struct RoleAt {
  WeightRole role = WeightRole::kOther;
  int output_axis = -1;
  int reduction_axis = -1;
  int64_t group = 1;
};

// The role a value of rank `rank` gets from being input `slot` of node `n`.
RoleAt RoleOf(const onnx::GraphProto& g, const GraphIndex& index, const onnx::NodeProto& n, int slot, int rank) {
  RoleAt r;
  if (!IsDefaultDomain(n) || slot < 0) return r;
  const std::string& op = n.op_type();
  if (op == "Conv" || op == "ConvTranspose") {
    if (slot == 1 && rank >= 3) {
      const bool transpose = op == "ConvTranspose";
      r.role = transpose ? WeightRole::kConvTransposeWeight : WeightRole::kConvWeight;
      r.output_axis = transpose ? 1 : 0;
      r.reduction_axis = transpose ? 0 : 1;
      r.group = IntAttr(n, "group", 1);
    } else if (slot == 2) {
      r.role = WeightRole::kBias;
    }
  } else if (op == "Gemm") {
    if (slot == 2) {
      r.role = WeightRole::kBias;
    } else if (rank == 2) {
      r.role = WeightRole::kGemmWeight;
      const bool trans = IntAttr(n, slot == 1 ? "transB" : "transA", 0) != 0;
      // B [in, out] (or [out, in] when transposed); a constant A [M, K] (or [K, M]).
      if (slot == 1) {
        r.output_axis = trans ? 0 : 1;
        r.reduction_axis = trans ? 1 : 0;
      } else {
        r.output_axis = trans ? 1 : 0;
        r.reduction_axis = trans ? 0 : 1;
      }
    }
  } else if (op == "MatMul") {
    if (rank >= 2) {
      r.role = WeightRole::kMatMulWeight;
      r.output_axis = slot == 1 ? rank - 1 : rank - 2;
      r.reduction_axis = slot == 1 ? rank - 2 : rank - 1;
    }
  } else if (op == "BatchNormalization" || op == "InstanceNormalization" || op == "LayerNormalization" ||
             op == "GroupNormalization") {
    if (slot >= 1) r.role = WeightRole::kNormParam;
  } else if (op == "Gather") {
    if (slot == 0) r.role = WeightRole::kEmbedding;
  } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {
    if (slot >= 1) r.role = WeightRole::kQuantParam;
  } else if (op == "Add") {
    // A bias added right after a MatMul or Gemm (PyTorch's Linear on 3-D input).
    const int other = slot == 0 ? 1 : 0;
    if (other < n.input_size()) {
      auto p = index.producer.find(n.input(other));
      if (p != index.producer.end()) {
        const std::string& pop = g.node(p->second).op_type();
        if ((pop == "MatMul" || pop == "Gemm") && rank <= 1) r.role = WeightRole::kBias;
      }
    }
  }
  return r;
}

bool SameRole(const RoleAt& a, const RoleAt& b) {
  return a.role == b.role && a.output_axis == b.output_axis && a.reduction_axis == b.reduction_axis && a.group == b.group;
}

}  // namespace

std::string_view WeightRoleName(WeightRole role) {
  switch (role) {
    case WeightRole::kConvWeight: return "conv_weight";
    case WeightRole::kConvTransposeWeight: return "convtranspose_weight";
    case WeightRole::kGemmWeight: return "gemm_weight";
    case WeightRole::kMatMulWeight: return "matmul_weight";
    case WeightRole::kBias: return "bias";
    case WeightRole::kNormParam: return "norm_param";
    case WeightRole::kEmbedding: return "embedding";
    case WeightRole::kQuantParam: return "quant_param";
    case WeightRole::kOther: return "other";
    case WeightRole::kUnused: return "unused";
  }
  return "?";
}

bool IsLinearWeight(WeightRole role) {
  return role == WeightRole::kConvWeight || role == WeightRole::kConvTransposeWeight ||
         role == WeightRole::kGemmWeight || role == WeightRole::kMatMulWeight;
}

namespace {

// Names a subgraph reads from enclosing scopes (read but not produced inside).
void OuterReads(const onnx::GraphProto& sub, std::set<std::string>* reads) {
  std::set<std::string> local;
  for (const auto& v : sub.input()) local.insert(v.name());
  for (const auto& t : sub.initializer()) local.insert(t.name());
  for (const auto& n : sub.node()) {
    for (const auto& o : n.output()) local.insert(o);
  }
  for (const auto& n : sub.node()) {
    for (const auto& i : n.input()) {
      if (!i.empty() && !local.count(i)) reads->insert(i);
    }
    for (const auto& a : n.attribute()) {
      std::set<std::string> inner;
      if (a.has_g()) OuterReads(a.g(), &inner);
      for (const auto& g : a.graphs()) OuterReads(g, &inner);
      for (const auto& name : inner) {
        if (!local.count(name)) reads->insert(name);
      }
    }
  }
}

}  // namespace

GraphIndex IndexGraph(const onnx::GraphProto& graph) {
  GraphIndex index;
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& n = graph.node(i);
    for (int s = 0; s < n.input_size(); ++s) {
      if (!n.input(s).empty()) index.consumers[n.input(s)].push_back({i, s});
    }
    std::set<std::string> captured;
    for (const auto& a : n.attribute()) {
      if (a.has_g()) OuterReads(a.g(), &captured);
      for (const auto& g : a.graphs()) OuterReads(g, &captured);
    }
    for (const auto& name : captured) index.consumers[name].push_back({i, -1});
    for (const std::string& o : n.output()) {
      if (!o.empty()) index.producer.emplace(o, i);
    }
  }
  return index;
}

std::vector<WeightInfo> AnalyzeWeights(const Model& model) {
  const onnx::GraphProto& g = model.proto().graph();
  const GraphIndex index = IndexGraph(g);
  std::vector<WeightInfo> infos;
  infos.reserve(model.tensors().size());
  for (const TensorEntry& e : model.tensors()) {
    WeightInfo info;
    info.name = e.name;
    const int rank = e.proto->dims_size();
    if (auto it = index.consumers.find(e.name); it != index.consumers.end()) info.uses = it->second;
    if (info.uses.empty()) {
      bool is_output = false;
      for (const auto& o : g.output()) is_output |= o.name() == e.name;
      info.role = is_output ? WeightRole::kOther : WeightRole::kUnused;
      infos.push_back(std::move(info));
      continue;
    }
    // Follow pass-through ops (DequantizeLinear of a quantized weight, Identity, Cast)
    // breadth-first to the nodes that give the tensor its role.
    struct Reader {
      Use use;
      std::string via;
    };
    std::vector<Reader> frontier;
    for (const Use& u : info.uses) frontier.push_back({u, ""});
    std::vector<std::pair<RoleAt, Reader>> roles;
    std::set<int> expanded;  // pass-through nodes already followed
    for (size_t k = 0; k < frontier.size(); ++k) {
      const Reader rd = frontier[k];
      const onnx::NodeProto& n = g.node(rd.use.node);
      if (IsPassThrough(n) && rd.use.input == 0 && n.output_size() >= 1) {
        if (!expanded.insert(rd.use.node).second) continue;
        auto it = index.consumers.find(n.output(0));
        if (it != index.consumers.end()) {
          for (const Use& u : it->second) frontier.push_back({u, rd.via.empty() ? n.op_type() : rd.via});
        }
        continue;
      }
      roles.push_back({RoleOf(g, index, n, rd.use.input, rank), rd});
    }
    if (roles.empty()) {
      info.role = WeightRole::kOther;
      infos.push_back(std::move(info));
      continue;
    }
    // A linear-weight role wins over incidental uses; disagreeing linear roles conflict.
    const auto* chosen = &roles.front();
    for (const auto& r : roles) {
      if (IsLinearWeight(r.first.role) && !IsLinearWeight(chosen->first.role)) chosen = &r;
    }
    for (const auto& r : roles) {
      if (IsLinearWeight(r.first.role) && !SameRole(r.first, chosen->first)) info.conflicting = true;
    }
    if (info.conflicting) {
      info.role = WeightRole::kOther;
    } else {
      info.role = chosen->first.role;
      info.output_axis = chosen->first.output_axis;
      info.reduction_axis = chosen->first.reduction_axis;
      info.group = chosen->first.group;
      info.role_node = chosen->second.use.node;
      info.via = chosen->second.via;
    }
    infos.push_back(std::move(info));
  }
  return infos;
}

}  // namespace modelpress
