#include "prune/channels_apply.h"

#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "modelpress/graph.h"
#include "modelpress/sparsity.h"

namespace modelpress::prune_detail {
namespace {

int64_t Opset(const onnx::ModelProto& p) {
  for (const auto& op : p.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") return op.version();
  }
  return 1;
}

// Replaces a tensor's data with packed little-endian `bytes` in raw_data.
void SetRaw(onnx::TensorProto* t, const std::vector<int64_t>& dims, std::string bytes) {
  t->clear_dims();
  for (int64_t d : dims) t->add_dims(d);
  t->clear_float_data();
  t->clear_int32_data();
  t->clear_int64_data();
  t->clear_double_data();
  t->clear_uint64_data();
  t->clear_external_data();
  t->set_data_location(onnx::TensorProto::DEFAULT);
  t->set_raw_data(std::move(bytes));
}

// Keeps the positions of `axis` whose `keep` byte is 1.
void SliceAxis(std::string* bytes, std::vector<int64_t>* dims, size_t elem, int axis, const std::vector<uint8_t>& keep) {
  const AxisSplit s = *SplitAtAxis(*dims, axis);
  const size_t block = static_cast<size_t>(s.inner) * elem;
  int64_t kept = 0;
  for (uint8_t k : keep) kept += k;
  std::string out;
  out.reserve(static_cast<size_t>(s.outer * kept) * block);
  for (int64_t o = 0; o < s.outer; ++o) {
    for (int64_t l = 0; l < s.length; ++l) {
      if (keep[l]) out.append(*bytes, static_cast<size_t>(o * s.length + l) * block, block);
    }
  }
  *bytes = std::move(out);
  (*dims)[axis] = kept;
}

// A copy for shape inference: weight values are not needed, only dims and types.
onnx::ModelProto Stripped(const onnx::ModelProto& p) {
  onnx::ModelProto copy;
  copy.CopyFrom(p);
  for (auto& t : *copy.mutable_graph()->mutable_initializer()) {
    if (t.data_type() != onnx::TensorProto::INT64 && t.data_type() != onnx::TensorProto::INT32) {
      t.clear_raw_data();
      t.clear_float_data();
      t.clear_double_data();
      t.clear_int32_data();
    }
  }
  copy.mutable_graph()->clear_value_info();
  return copy;
}

// Strict ONNX shape inference (node errors throw); the inferred value_info on success.
Result<onnx::ModelProto> StrictInference(const onnx::ModelProto& p) {
  onnx::ModelProto copy = Stripped(p);
  try {
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(), onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    return Corrupt(what);
  }
  return copy;
}

std::string PackInts(const std::vector<int64_t>& v, int32_t dtype) {
  std::string out;
  for (int64_t x : v) {
    if (dtype == onnx::TensorProto::INT32) {
      const int32_t y = static_cast<int32_t>(x);
      out.append(reinterpret_cast<const char*>(&y), 4);
    } else {
      out.append(reinterpret_cast<const char*>(&x), 8);
    }
  }
  return out;
}

}  // namespace

int64_t KeptCount(const std::vector<int64_t>& units, const std::vector<uint8_t>& removed) {
  int64_t n = 0;
  for (int64_t u : units) n += (u == kFixedUnit || !removed[u]) ? 1 : 0;
  return n;
}

Status ApplyChannelRemoval(Model& model, const ChannelAnalysis& a, const std::vector<uint8_t>& removed,
                           std::vector<std::string>* notices) {
  const std::string& src = model.source();
  // Judge the original first: only a model ONNX can infer strictly can be held to that after pruning.
  const bool original_infers = StrictInference(model.proto()).ok();

  onnx::ModelProto proto;
  proto.CopyFrom(model.proto());
  onnx::GraphProto* g = proto.mutable_graph();
  std::unordered_map<std::string, onnx::TensorProto*> tensors;
  for (auto& t : *g->mutable_initializer()) tensors[t.name()] = &t;
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() != "Constant" || n.output_size() != 1) continue;
    for (auto& attr : *n.mutable_attribute()) {
      if (attr.name() == "value" && attr.has_t()) tensors[n.output(0)] = attr.mutable_t();
    }
  }

  // Slices, gathered per tensor and reading node. A tensor read only by the
  // node that slices it is rewritten in place; otherwise each slicing node
  // gets its own sliced copy and the other readers keep the original.
  const GraphIndex index = IndexGraph(*g);
  std::set<std::string> names;
  for (const auto& [name, t] : tensors) names.insert(name);
  for (const auto& v : g->input()) names.insert(v.name());
  for (const auto& n : g->node()) names.insert(n.output().begin(), n.output().end());
  std::map<std::string, std::map<int, std::vector<const ChannelSlice*>>> by_tensor;
  for (const ChannelSlice& s : a.slices) by_tensor[s.tensor][s.node_index].push_back(&s);
  std::set<std::string> touched;  // tensors and Identity copies some readers stopped reading
  for (const auto& [name, by_node] : by_tensor) {
    auto it = tensors.find(name);
    if (it == tensors.end()) return Internal(src + ": sliced tensor '" + name + "' is not a constant of the graph");
    std::set<int> readers;
    if (auto c = index.consumers.find(name); c != index.consumers.end()) {
      for (const Use& u : c->second) readers.insert(u.node);
    }
    const bool direct = by_node.begin()->second.front()->value == name;
    const bool in_place = direct && by_node.size() == 1 && readers == std::set<int>{by_node.begin()->first};
    MP_ASSIGN_OR_RETURN(TensorView view, model.View(name));
    for (const auto& [node, slices] : by_node) {
      std::vector<int64_t> dims = view.shape();
      std::string bytes(view.packed_bytes(), '\0');
      view.CopyPackedTo(std::span(reinterpret_cast<std::byte*>(bytes.data()), bytes.size()));
      bool changed = false;
      for (const ChannelSlice* s : slices) {
        if (s->axis < 0 || s->axis >= static_cast<int>(dims.size()) ||
            dims[s->axis] != static_cast<int64_t>(s->units.size())) {
          return Internal(src + ": tensor '" + name + "' (read by node '" + s->node + "') has " +
                          ShapeToString(dims) + ", not " + std::to_string(s->units.size()) + " positions on axis " +
                          std::to_string(s->axis));
        }
        std::vector<uint8_t> keep(s->units.size());
        bool drops = false;
        for (size_t p = 0; p < keep.size(); ++p) {
          keep[p] = s->units[p] == kFixedUnit || !removed[s->units[p]];
          drops |= !keep[p];
        }
        if (!drops) continue;
        if (KeptCount(s->units, removed) == 0) {
          return Internal(src + ": pruning would leave tensor '" + name + "' with no position on axis " +
                          std::to_string(s->axis));
        }
        SliceAxis(&bytes, &dims, view.element_size(), s->axis, keep);
        changed = true;
      }
      if (!changed) continue;
      if (in_place) {
        SetRaw(it->second, dims, std::move(bytes));
        continue;
      }
      onnx::NodeProto* n = g->mutable_node(node);
      std::string fresh = name + "_" + (n->name().empty() ? std::to_string(node) : n->name());
      for (int k = 2; names.count(fresh); ++k) fresh = name + "_" + std::to_string(node) + "_" + std::to_string(k);
      names.insert(fresh);
      onnx::TensorProto copy;
      copy.set_name(fresh);
      copy.set_data_type(it->second->data_type());
      SetRaw(&copy, dims, std::move(bytes));
      *g->add_initializer() = std::move(copy);
      const std::string& read = slices.front()->value;
      for (int k = 0; k < n->input_size(); ++k) {
        if (n->input(k) == read) n->set_input(k, fresh);
      }
    }
    if (!in_place) {
      touched.insert(name);
      for (const auto& [node, slices] : by_node) touched.insert(slices.front()->value);
    }
  }

  // Shape integers: new values per (node, tensor), written in place when
  // only that node reads the tensor, else into a private copy.
  std::map<std::pair<int, std::string>, std::vector<int64_t>> ints;
  std::map<int, std::vector<int64_t>> split_attr;  // Split nodes without a split input: all sizes
  for (const ShapeFixup& f : a.fixups) {
    const int64_t value = KeptCount(f.units, removed);
    if (value == 0 && f.kind != ShapeFixup::kSliceStart) {
      return Internal(src + ": pruning would empty an output of node '" + g->node(f.node).name() + "'");
    }
    if (f.kind == ShapeFixup::kConvGroup) {
      for (auto& attr : *g->mutable_node(f.node)->mutable_attribute()) {
        if (attr.name() == "group") attr.set_i(value);
      }
      continue;
    }
    if (f.tensor.empty()) {
      auto& sizes = split_attr[f.node];
      if (sizes.size() <= static_cast<size_t>(f.index)) sizes.resize(f.index + 1, 0);
      sizes[f.index] = value;
      continue;
    }
    auto key = std::make_pair(f.node, f.tensor);
    if (!ints.count(key)) {
      MP_ASSIGN_OR_RETURN(TensorView v, model.View(f.tensor));
      std::vector<int64_t> vals;
      for (int64_t i = 0; i < v.size(); ++i) vals.push_back(static_cast<int64_t>(v.AsDouble(i)));
      ints[key] = std::move(vals);
    }
    auto& vals = ints[key];
    if (f.index >= static_cast<int>(vals.size())) return Internal(src + ": shape constant '" + f.tensor + "' is too short");
    vals[f.index] = value;
  }
  const GraphIndex current = IndexGraph(*g);
  for (const auto& [key, vals] : ints) {
    const auto& [node, name] = key;
    auto found = tensors.find(name);
    auto readers = current.consumers.find(name);
    if (found == tensors.end() || readers == current.consumers.end()) {
      return Internal(src + ": shape constant '" + name + "' is not a constant of the graph");
    }
    onnx::TensorProto* t = found->second;
    bool exclusive = true;
    for (const Use& u : readers->second) exclusive &= u.node == node;
    for (const auto& o : g->output()) exclusive &= o.name() != name;
    if (exclusive) {
      SetRaw(t, {t->dims().begin(), t->dims().end()}, PackInts(vals, t->data_type()));
      continue;
    }
    std::string fresh = name + "_pruned";
    for (int k = 2; names.count(fresh); ++k) fresh = name + "_pruned" + std::to_string(k);
    names.insert(fresh);
    onnx::TensorProto copy;
    copy.set_name(fresh);
    copy.set_data_type(t->data_type());
    SetRaw(&copy, {t->dims().begin(), t->dims().end()}, PackInts(vals, t->data_type()));
    *g->add_initializer() = std::move(copy);
    onnx::NodeProto* n = g->mutable_node(node);
    for (int s = 0; s < n->input_size(); ++s) {
      if (n->input(s) == name) n->set_input(s, fresh);
    }
  }
  for (const auto& [node, sizes] : split_attr) {
    onnx::NodeProto* n = g->mutable_node(node);
    if (Opset(proto) < 13) {
      bool set = false;
      for (auto& attr : *n->mutable_attribute()) {
        if (attr.name() == "split") {
          attr.clear_ints();
          for (int64_t s : sizes) attr.add_ints(s);
          set = true;
        }
      }
      if (!set) {
        auto* attr = n->add_attribute();
        attr->set_name("split");
        attr->set_type(onnx::AttributeProto::INTS);
        for (int64_t s : sizes) attr->add_ints(s);
      }
      continue;
    }
    std::string fresh = (n->name().empty() ? "split" : n->name()) + "_sizes_pruned";
    for (int k = 2; names.count(fresh); ++k) fresh = n->name() + "_sizes_pruned" + std::to_string(k);
    names.insert(fresh);
    onnx::TensorProto t;
    t.set_name(fresh);
    t.set_data_type(onnx::TensorProto::INT64);
    SetRaw(&t, {static_cast<int64_t>(sizes.size())}, PackInts(sizes, onnx::TensorProto::INT64));
    *g->add_initializer() = std::move(t);
    if (n->input_size() < 2) {
      n->add_input(fresh);
    } else {
      n->set_input(1, fresh);
    }
    for (int k = 0; k < n->attribute_size(); ++k) {
      if (n->attribute(k).name() == "num_outputs") {
        n->mutable_attribute()->DeleteSubrange(k, 1);
        break;
      }
    }
  }

  // Tensors (and the Identity copies of them) that nobody reads once every
  // reader has its own sliced copy.
  for (bool again = true; again;) {
    again = false;
    const GraphIndex now = IndexGraph(*g);
    std::set<std::string> outputs;
    for (const auto& o : g->output()) outputs.insert(o.name());
    auto dead = [&](const std::string& v) { return touched.count(v) && !now.consumers.count(v) && !outputs.count(v); };
    for (int k = g->node_size() - 1; k >= 0; --k) {
      const onnx::NodeProto& n = g->node(k);
      if (n.op_type() == "Identity" && n.output_size() == 1 && dead(n.output(0))) {
        touched.insert(n.input(0));
        g->mutable_node()->DeleteSubrange(k, 1);
        again = true;
      }
    }
    for (int k = g->initializer_size() - 1; k >= 0; --k) {
      if (dead(g->initializer(k).name())) {
        g->mutable_initializer()->DeleteSubrange(k, 1);
        again = true;
      }
    }
  }

  // Intermediate shapes are stale now; infer them again.
  const bool had_value_info = g->value_info_size() > 0;
  g->clear_value_info();
  auto inferred = StrictInference(proto);
  if (!inferred.ok()) {
    if (original_infers) {
      return Internal(src + ": the pruned graph fails ONNX shape inference (model left unchanged): " +
                      inferred.status().message());
    }
    notices->push_back("ONNX shape inference cannot judge this model (nor the original); value_info dropped");
  } else if (had_value_info) {
    *g->mutable_value_info() = inferred->graph().value_info();
  }

  MP_ASSIGN_OR_RETURN(Model pruned, Model::FromProto(std::move(proto), model.base_dir(), model.source()));
  model = std::move(pruned);
  return Status::Ok();
}

int64_t CountMacs(const Model& model, const ValueShapes& shapes, int* unknown) {
  auto dims = [&](const std::string& name) -> const std::vector<int64_t>* {
    auto it = shapes.dims.find(name);
    return it == shapes.dims.end() ? nullptr : &it->second;
  };
  auto prod = [](const std::vector<int64_t>& d, size_t from) {
    int64_t p = 1;
    for (size_t i = from; i < d.size(); ++i) p *= d[i] < 0 ? 1 : d[i];
    return p;
  };
  int64_t macs = 0;
  for (const auto& n : model.proto().graph().node()) {
    const std::string& op = n.op_type();
    if (op != "Conv" && op != "ConvTranspose" && op != "Gemm" && op != "MatMul") continue;
    if (n.input_size() < 2 || n.output_size() < 1) continue;
    const auto* x = dims(n.input(0));
    const auto* w = dims(n.input(1));
    const auto* y = dims(n.output(0));
    if (!x || !w || !y || x->empty() || w->empty()) {
      ++*unknown;
      continue;
    }
    if (op == "Conv") {
      macs += prod(*y, 0) * prod(*w, 1);
    } else if (op == "ConvTranspose") {
      macs += prod(*x, 0) * prod(*w, 1);
    } else if (op == "Gemm") {
      bool trans_a = false;
      for (const auto& attr : n.attribute()) trans_a |= attr.name() == "transA" && attr.i() != 0;
      const int64_t k = (*x)[trans_a ? 0 : x->size() - 1];
      macs += prod(*y, 0) * (k < 0 ? 1 : k);
    } else {
      const int64_t k = x->back();
      macs += prod(*y, 0) * (k < 0 ? 1 : k);
    }
  }
  return macs;
}

int64_t CountParameters(const Model& model) {
  int64_t n = 0;
  for (const TensorEntry& e : model.tensors()) {
    if (!IsFloatingPoint(static_cast<DType>(e.proto->data_type()))) continue;
    int64_t c = 1;
    for (int64_t d : e.proto->dims()) c *= d;
    n += c;
  }
  return n;
}

}  // namespace modelpress::prune_detail
