// Model-level pruning with reconstruction: masks come from the magnitude
// pruners (or OBS saliency), then layers are re-fitted in graph order on the
// inputs the already re-fitted prefix produces.
#include <algorithm>
#include <cmath>
#include <tuple>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "modelpress/graph.h"
#include "modelpress/reconstruct.h"
#include "modelpress/runtime.h"
#include "modelpress/sparsity.h"
#include "prune/common.h"
#include "prune/select.h"

namespace modelpress {
namespace {

// How one tensor's mask is chosen once its layer's H is known.
struct MaskRule {
  enum Kind { kFixed, kCount, kNM } kind = kFixed;
  std::vector<uint8_t> keep;  // kFixed: the mask (tensor layout)
  int64_t prune_count = 0;    // kCount: elements pruned, zeros included
  int n = 2, m = 4;           // kNM
  int reduction_axis = -1;    // kNM
};

struct Job {
  std::string tensor;
  MaskRule rule;
};

// Spatial geometry of a Conv, 1-D convolutions as 2-D with a height of 1.
struct ConvGeometry {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  std::string auto_pad = "NOTSET";
  bool one_d = false;
};

// A layer that can be re-fitted: its weight, the value it multiplies, and the
// layout of its rows.
struct Layer {
  std::string tensor;
  std::string node_name;
  int node = -1;
  std::string input;        // the activation the weight multiplies
  bool conv = false;
  ConvGeometry geo;
  int output_axis = 0;
  int64_t groups = 1;
  int64_t rows = 0, columns = 0;
  std::string reason;       // why it cannot be re-fitted ("" when it can)
  std::vector<size_t> deps;  // layers upstream of `input`
};

const onnx::AttributeProto* Attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}
int64_t IntAttr(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  const auto* a = Attr(n, name);
  return a ? a->i() : fallback;
}
std::vector<int64_t> IntsAttr(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = Attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>();
}

Layer Describe(const Model& model, const WeightInfo& info) {
  Layer l;
  l.tensor = info.name;
  const auto& graph = model.proto().graph();
  const TensorEntry* entry = model.FindTensor(info.name);
  std::vector<int64_t> shape;
  if (entry) shape.assign(entry->proto->dims().begin(), entry->proto->dims().end());
  if (info.role_node >= 0) {
    const auto& n = graph.node(info.role_node);
    l.node = info.role_node;
    l.node_name = n.name().empty() ? n.op_type() + "#" + std::to_string(info.role_node) : n.name();
    if (n.input_size() > 0) l.input = n.input(0);
  }
  auto refuse = [&](std::string why) {
    l.reason = std::move(why);
    return l;
  };
  if (!entry || entry->proto->data_type() != static_cast<int>(DType::kFloat32)) {
    return refuse("re-fit writes float32 weights only");
  }
  if (!info.via.empty()) return refuse("read through " + info.via);
  if (info.uses.size() != 1 || info.uses[0].node != info.role_node || info.uses[0].input != 1) {
    return refuse("not read by exactly one node as its weight input");
  }
  const auto& n = graph.node(info.role_node);
  l.output_axis = info.output_axis;
  if (info.role == WeightRole::kGemmWeight || info.role == WeightRole::kMatMulWeight) {
    if (shape.size() != 2) return refuse("weight of rank " + std::to_string(shape.size()) + " (2 is re-fitted)");
    if (n.op_type() == "Gemm" && IntAttr(n, "transA", 0) != 0) return refuse("Gemm with transA=1");
  } else if (info.role == WeightRole::kConvWeight) {
    if (shape.size() != 3 && shape.size() != 4) return refuse("Conv of " + std::to_string(shape.size() - 2) + " spatial dims (1 or 2 are re-fitted)");
    l.conv = true;
    l.groups = info.group;
    ConvGeometry& g = l.geo;
    g.one_d = shape.size() == 3;
    g.kw = shape.back();
    g.kh = g.one_d ? 1 : shape[2];
    const auto strides = IntsAttr(n, "strides"), dil = IntsAttr(n, "dilations"), pads = IntsAttr(n, "pads");
    const size_t sd = g.one_d ? 1 : 2;
    if ((!strides.empty() && strides.size() != sd) || (!dil.empty() && dil.size() != sd) ||
        (!pads.empty() && pads.size() != 2 * sd)) {
      return refuse("malformed strides, dilations or pads");
    }
    if (!strides.empty()) std::tie(g.sh, g.sw) = g.one_d ? std::pair(int64_t{1}, strides[0]) : std::pair(strides[0], strides[1]);
    if (!dil.empty()) std::tie(g.dh, g.dw) = g.one_d ? std::pair(int64_t{1}, dil[0]) : std::pair(dil[0], dil[1]);
    if (!pads.empty()) {
      if (g.one_d) {
        g.pad_left = pads[0];
        g.pad_right = pads[1];
      } else {
        g.pad_top = pads[0];
        g.pad_left = pads[1];
        g.pad_bottom = pads[2];
        g.pad_right = pads[3];
      }
    }
    if (const auto* a = Attr(n, "auto_pad")) g.auto_pad = a->s();
    if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1) return refuse("strides and dilations must be >= 1");
  } else {
    return refuse(std::string(WeightRoleName(info.role)) + " is not re-fitted");
  }
  auto split = SplitAtAxis(shape, l.output_axis);
  if (!split.ok()) return refuse("no output axis");
  l.rows = split->length;
  l.columns = split->outer * split->inner;
  if (l.groups < 1 || l.rows % l.groups != 0) return refuse("group count does not divide the filters");
  return l;
}

// Pads of one spatial axis for auto_pad SAME_*, as ONNX defines them.
void SamePads(const std::string& mode, int64_t in, int64_t k, int64_t s, int64_t d, int64_t* begin, int64_t* end) {
  const int64_t out = (in + s - 1) / s;
  const int64_t total = std::max<int64_t>(0, (out - 1) * s + (k - 1) * d + 1 - in);
  *begin = mode == "SAME_LOWER" ? total - total / 2 : total / 2;
  *end = total - *begin;
}

// What is accumulated for one layer, per group: H' = X'^T X' of the inputs
// the current (pruned) model gives, and with dense targets also X'^T X and
// X^T X with the dense model's inputs X.
struct LayerStats {
  std::vector<GramAccumulator> h;
  std::vector<CrossGramAccumulator> cross;
  std::vector<GramAccumulator> dense;
};

// Adds one batch of paired rows (dense may be null) to `st`, group `g`.
Status AddRows(LayerStats* st, int64_t g, std::span<const float> rows, const float* dense, int64_t n) {
  MP_RETURN_IF_ERROR(st->h[g].Add(rows, n));
  if (dense && !st->dense.empty()) {
    const std::span<const float> d(dense, rows.size());
    MP_RETURN_IF_ERROR(st->cross[g].Add(rows, d, n));
    MP_RETURN_IF_ERROR(st->dense[g].Add(d, n));
  }
  return Status::Ok();
}

// Feeds the im2col rows of one batch [N, C, (H,) W] (and of the dense
// model's batch, when given) to the layer's accumulators: one row per output
// position and image, columns (c, kh, kw) in the weight's C order.
Status AddConvRows(const Layer& l, const runtime::Tensor& x, const float* dense, LayerStats* st) {
  const auto& s = x.shape();
  const size_t want = l.geo.one_d ? 3 : 4;
  if (s.size() != want) return InvalidArgument("input of " + std::to_string(s.size()) + " dims");
  const int64_t n = s[0], ch = s[1], ih = l.geo.one_d ? 1 : s[2], iw = s.back();
  const int64_t cg = ch / l.groups;
  if (ch % l.groups != 0 || cg * l.geo.kh * l.geo.kw != l.columns) {
    return InvalidArgument("input channels " + std::to_string(ch) + " do not match the weight");
  }
  ConvGeometry g = l.geo;
  if (g.auto_pad == "SAME_UPPER" || g.auto_pad == "SAME_LOWER") {
    SamePads(g.auto_pad, iw, g.kw, g.sw, g.dw, &g.pad_left, &g.pad_right);
    if (!g.one_d) SamePads(g.auto_pad, ih, g.kh, g.sh, g.dh, &g.pad_top, &g.pad_bottom);
  } else if (g.auto_pad == "VALID") {
    g.pad_left = g.pad_right = g.pad_top = g.pad_bottom = 0;
  }
  const int64_t oh = (ih + g.pad_top + g.pad_bottom - ((g.kh - 1) * g.dh + 1)) / g.sh + 1;
  const int64_t ow = (iw + g.pad_left + g.pad_right - ((g.kw - 1) * g.dw + 1)) / g.sw + 1;
  if (oh < 1 || ow < 1) return InvalidArgument("empty convolution output");
  auto fill = [&](const float* data, int64_t img, int64_t grp, float* out) {
    for (int64_t y = 0; y < oh; ++y) {
      for (int64_t xo = 0; xo < ow; ++xo) {
        for (int64_t c = 0; c < cg; ++c) {
          const float* plane = data + ((img * ch) + grp * cg + c) * ih * iw;
          for (int64_t i = 0; i < g.kh; ++i) {
            const int64_t yy = y * g.sh - g.pad_top + i * g.dh;
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t xx = xo * g.sw - g.pad_left + j * g.dw;
              *out++ = yy >= 0 && yy < ih && xx >= 0 && xx < iw ? plane[yy * iw + xx] : 0.0f;
            }
          }
        }
      }
    }
  };
  const size_t size = static_cast<size_t>(oh * ow * l.columns);
  std::vector<float> rows(size), dense_rows(dense ? size : 0);
  for (int64_t img = 0; img < n; ++img) {
    for (int64_t grp = 0; grp < l.groups; ++grp) {
      fill(x.data<float>(), img, grp, rows.data());
      if (dense) fill(dense, img, grp, dense_rows.data());
      MP_RETURN_IF_ERROR(AddRows(st, grp, rows, dense ? dense_rows.data() : nullptr, oh * ow));
    }
  }
  return Status::Ok();
}

// Runs every calibration batch once through `model` (and `dense`, when
// given, first) and accumulates the statistics of the layers in `ready`.
Status CollectGrams(const Model& model, const Model* dense, const std::vector<Layer*>& ready,
                    const quant::CalibrationData& data, std::vector<LayerStats>* stats) {
  std::unordered_map<std::string, std::vector<size_t>> watched;
  stats->clear();
  for (size_t i = 0; i < ready.size(); ++i) {
    watched[ready[i]->input].push_back(i);
    LayerStats st;
    const size_t g = static_cast<size_t>(ready[i]->groups);
    st.h.assign(g, GramAccumulator(ready[i]->columns));
    if (dense) {
      st.cross.assign(g, CrossGramAccumulator(ready[i]->columns));
      st.dense.assign(g, GramAccumulator(ready[i]->columns));
    }
    stats->push_back(std::move(st));
  }
  MP_ASSIGN_OR_RETURN(runtime::Executor exec, runtime::Executor::Create(model));
  std::optional<runtime::Executor> dense_exec;
  if (dense) {
    MP_ASSIGN_OR_RETURN(runtime::Executor e, runtime::Executor::Create(*dense));
    dense_exec.emplace(std::move(e));
  }
  Status problem;
  // The dense model's values of the watched tensors for the current batch.
  std::unordered_map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> dense_values;
  for (int64_t b = 0; b < data.batches; ++b) {
    MP_ASSIGN_OR_RETURN(std::vector<runtime::Tensor> inputs, data.batch(b));
    dense_values.clear();
    if (dense_exec) {
      auto out = dense_exec->Run(inputs, [&](const std::string& name, const runtime::Tensor& t) {
        if (!watched.count(name) || t.dtype() != DType::kFloat32) return;
        const auto v = t.values<float>();
        dense_values[name] = {t.shape(), std::vector<float>(v.begin(), v.end())};
      });
      if (!out.ok()) return out.status().WithPrefix(data.source + ", calibration batch " + std::to_string(b));
    }
    auto out = exec.Run(inputs, [&](const std::string& name, const runtime::Tensor& t) {
      const auto it = watched.find(name);
      if (it == watched.end() || !problem.ok()) return;
      const float* dv = nullptr;
      if (dense_exec) {
        const auto d = dense_values.find(name);
        if (d != dense_values.end() && d->second.first == t.shape()) dv = d->second.second.data();
        if (!dv) problem = Internal("the dense model gave no value of the same shape for '" + name + "'");
      }
      for (size_t i : it->second) {
        if (!problem.ok()) break;
        const Layer& l = *ready[i];
        if (t.dtype() != DType::kFloat32) {
          problem = Unsupported("input '" + name + "' of " + l.node_name + " is " + DTypeName(t.dtype()) +
                                ", re-fit needs float32");
        } else if (l.conv) {
          problem = AddConvRows(l, t, dv, &(*stats)[i]);
        } else if (t.rank() < 1 || t.shape().back() != l.columns) {
          problem = InvalidArgument("input '" + name + "' has shape " + ShapeToString(t.shape()) + ", its last dim is not " +
                                    std::to_string(l.columns));
        } else {
          problem = AddRows(&(*stats)[i], 0, t.values<float>(), dv, t.size() / l.columns);
        }
      }
      if (!problem.ok()) problem = problem.WithPrefix(model.source() + ": input '" + name + "'");
    });
    if (!out.ok()) return out.status().WithPrefix(data.source + ", calibration batch " + std::to_string(b));
    MP_RETURN_IF_ERROR(problem);
  }
  return Status::Ok();
}

// Layers (indices) whose node lies upstream of every layer's input.
void FindDependencies(const Model& model, std::vector<Layer>& layers) {
  const auto& graph = model.proto().graph();
  const GraphIndex index = IndexGraph(graph);
  std::unordered_map<int, size_t> layer_of_node;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].reason.empty()) layer_of_node[layers[i].node] = i;
  }
  for (Layer& l : layers) {
    if (!l.reason.empty()) continue;
    std::unordered_set<int> seen;
    std::vector<std::string> stack = {l.input};
    std::unordered_set<std::string> visited;
    while (!stack.empty()) {
      const std::string v = stack.back();
      stack.pop_back();
      if (!visited.insert(v).second) continue;
      const auto p = index.producer.find(v);
      if (p == index.producer.end() || !seen.insert(p->second).second) continue;
      const auto& node = graph.node(p->second);
      for (const auto& in : node.input()) {
        if (!in.empty()) stack.push_back(in);
      }
    }
    for (int node : seen) {
      const auto it = layer_of_node.find(node);
      if (it != layer_of_node.end()) l.deps.push_back(it->second);
    }
  }
}

// One tensor taking part in KeepRowsAlive: its current weights, its mask,
// the score masks are chosen by (null: |w|) and where its output rows lie.
struct RowFloorItem {
  TensorView w;
  std::vector<uint8_t>* keep = nullptr;
  const float* score = nullptr;
  int64_t length = 0, inner = 1;  // rows along the output axis, elements after it
  int64_t Row(int64_t e) const { return (e / inner) % length; }
  double Score(int64_t e) const { return score ? static_cast<double>(score[e]) : std::abs(w.AsDouble(e)); }
};

// A row (output channel) whose weights are all pruned has a constant output,
// and no re-fit can bring it back: a layer emptied that way cuts the model
// off from its input. So every row that has a nonzero weight keeps at least
// one, its highest-scoring. Each weight given back this way is paid for by
// pruning the lowest-scoring kept weight of the pool (one tensor, or all the
// tensors of a global selection) in a row that keeps two or more, so the
// pruned count stays exact. Returns the number of rows given a weight back.
int64_t KeepRowsAlive(std::span<RowFloorItem> pool) {
  std::vector<std::vector<int64_t>> kept(pool.size()), best(pool.size());
  int64_t restored = 0;
  for (size_t i = 0; i < pool.size(); ++i) {
    const RowFloorItem& it = pool[i];
    kept[i].assign(static_cast<size_t>(it.length), 0);
    best[i].assign(static_cast<size_t>(it.length), -1);
    for (int64_t e = 0; e < it.w.size(); ++e) {
      const int64_t r = it.Row(e);
      if ((*it.keep)[e]) ++kept[i][r];
      if (it.w.AsDouble(e) == 0) continue;
      if (best[i][r] < 0 || it.Score(e) > it.Score(best[i][r])) best[i][r] = e;
    }
    for (int64_t r = 0; r < it.length; ++r) {
      if (kept[i][r] == 0 && best[i][r] >= 0) {
        (*it.keep)[best[i][r]] = 1;
        kept[i][r] = 1;
        ++restored;
      }
    }
  }
  if (restored == 0) return 0;
  struct Candidate {
    double score;
    size_t item;
    int64_t e;
  };
  std::vector<Candidate> candidates;
  for (size_t i = 0; i < pool.size(); ++i) {
    const RowFloorItem& it = pool[i];
    for (int64_t e = 0; e < it.w.size(); ++e) {
      if ((*it.keep)[e] && kept[i][it.Row(e)] >= 2) candidates.push_back({it.Score(e), i, e});
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.score, a.item, a.e) < std::tie(b.score, b.item, b.e);
  });
  int64_t removed = 0;
  for (const Candidate& c : candidates) {
    if (removed == restored) break;
    int64_t& n = kept[c.item][pool[c.item].Row(c.e)];
    if (n < 2) continue;
    (*pool[c.item].keep)[c.e] = 0;
    --n;
    ++removed;
  }
  return restored;
}

// The rows of a weight with output axis `axis` (false when it has none).
bool RowsOf(const TensorView& w, int axis, RowFloorItem* item) {
  if (axis < 0) return false;
  auto split = SplitAtAxis(w.shape(), axis);
  if (!split.ok() || split->length < 1) return false;
  item->length = split->length;
  item->inner = split->inner;
  return true;
}

// The mask of a layer under `rule`: fixed, or by saliency (OBS when `gram` is
// given, else |w|) keeping the count or N:M pattern exact.
Result<std::vector<uint8_t>> ChooseMask(const TensorView& w, const Layer* layer, const MaskRule& rule,
                                        std::span<const double> gram, const ReconstructOptions& o) {
  if (rule.kind == MaskRule::kFixed) return rule.keep;
  std::vector<float> saliency;
  TensorView s = w;
  if (layer && !gram.empty()) {
    MP_ASSIGN_OR_RETURN(saliency, ObsSaliency(w, layer->output_axis, gram, layer->groups, o.refit.damp, o.refit.threads));
    s = TensorView(DType::kFloat32, w.shape(), reinterpret_cast<const std::byte*>(saliency.data()), w.size(),
                   sizeof(float), Storage::kRaw);
  }
  std::vector<uint8_t> keep(static_cast<size_t>(w.size()), 1);
  if (rule.kind == MaskRule::kNM) {
    // Elements already zero are never kept again, as with magnitude N:M.
    std::vector<uint8_t> nonzero(keep.size());
    for (int64_t i = 0; i < w.size(); ++i) nonzero[i] = w.AsDouble(i) != 0;
    MP_RETURN_IF_ERROR(NMMask({s, nonzero}, rule.reduction_axis, rule.n, rule.m, keep));
    return keep;
  }
  // Zeros of w have saliency 0 and are pruned first; force them anyway so a
  // saliency that underflows cannot reorder them.
  std::vector<uint8_t> nonzero(keep.size());
  for (int64_t i = 0; i < w.size(); ++i) nonzero[i] = w.AsDouble(i) != 0;
  prune_detail::Segment seg{s, nonzero, keep.data(), nullptr};
  prune_detail::PruneSmallest(std::span(&seg, 1), rule.prune_count, o.refit.threads);
  RowFloorItem item{w, &keep, saliency.empty() ? nullptr : saliency.data()};
  if (layer && RowsOf(w, layer->output_axis, &item)) KeepRowsAlive(std::span(&item, 1));
  return keep;
}

Result<Model> Clone(const Model& model) {
  return Model::FromProto(onnx::ModelProto(model.proto()), model.base_dir(), model.source());
}

// The dense model the re-fits aim at, when o.dense_targets asks for one.
Result<std::optional<Model>> DenseTargets(const Model& model, const ReconstructOptions& o) {
  if (!o.dense_targets) return std::optional<Model>();
  MP_ASSIGN_OR_RETURN(Model d, Clone(model));
  return std::optional<Model>(std::move(d));
}

// Prunes every job's tensor in `model` and re-fits those whose layer allows
// it, layer after layer in dependency order. With `dense` (same graph, the
// unpruned weights) the re-fit targets are the dense model's layer outputs
// X w (w from `dense`); without, each layer's own outputs X' w.
Status ReconstructLayers(Model& model, const Model* dense, const std::vector<Job>& jobs,
                         const quant::CalibrationData& data, const ReconstructOptions& o,
                         std::vector<RefitReport>* reports) {
  if (data.batches < 1) return InvalidArgument(data.source + ": no calibration batches");
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);
  std::unordered_map<std::string, const WeightInfo*> info_of;
  for (const WeightInfo& w : infos) info_of[w.name] = &w;
  std::vector<Layer> layers;
  for (const Job& j : jobs) {
    const auto it = info_of.find(j.tensor);
    if (it == info_of.end()) return Internal("re-fit: no tensor '" + j.tensor + "'");
    layers.push_back(Describe(model, *it->second));
  }
  FindDependencies(model, layers);

  auto finish = [&](size_t i, std::span<double> gram, int64_t samples, const RefitTarget* target) -> Status {
    const Layer& l = layers[i];
    MP_ASSIGN_OR_RETURN(TensorView w, model.View(l.tensor));
    // The re-fit's target weights: the dense ones (the current ones differ
    // after an earlier step of a gradual schedule).
    MP_ASSIGN_OR_RETURN(TensorView target_w, dense ? dense->View(l.tensor) : model.View(l.tensor));
    const bool fit = l.reason.empty() && samples > 0;
    MP_ASSIGN_OR_RETURN(std::vector<uint8_t> keep, ChooseMask(w, fit ? &l : nullptr, jobs[i].rule, fit ? std::span<const double>(gram) : std::span<const double>(), o));
    RefitReport r;
    r.tensor = l.tensor;
    r.node = l.node_name;
    r.rows = l.rows;
    r.columns = l.columns;
    r.samples = samples;
    if (!fit) {
      r.method = "none";
      r.reason = l.reason.empty() ? "its input was never computed on the calibration data" : l.reason;
      MP_ASSIGN_OR_RETURN(MutableTensorView m, model.MutableTensor(l.tensor));
      MP_RETURN_IF_ERROR(ApplyMask(m, keep));
    } else {
      // The re-fit starts from the target weights and runs in place, in the
      // model's tensor and in the layer's Gram storage.
      MP_ASSIGN_OR_RETURN(MutableTensorView m, model.MutableTensor(l.tensor));
      const std::span<float> dst = m.span<float>();
      if (m.dtype != DType::kFloat32 || static_cast<int64_t>(dst.size()) != target_w.size()) {
        return Internal("re-fit: '" + l.tensor + "' is not float32 or changed size");
      }
      if (dense) {
        for (int64_t e = 0; e < target_w.size(); ++e) dst[e] = static_cast<float>(target_w.AsDouble(e));
      }
      MP_ASSIGN_OR_RETURN(RefitResult res, RefitWeightsInPlace(m, l.output_axis, keep, gram, l.groups, o.refit, target));
      r.method = std::string(RefitMethodName(res.method));
      r.error_before = res.error_before;
      r.error_after = res.error_after;
    }
    reports->push_back(std::move(r));
    return Status::Ok();
  };

  std::vector<uint8_t> done(layers.size(), 0);
  for (size_t i = 0; i < layers.size(); ++i) {
    if (!layers[i].reason.empty()) {
      MP_RETURN_IF_ERROR(finish(i, {}, 0, nullptr).WithPrefix(model.source() + ": tensor '" + layers[i].tensor + "'"));
      done[i] = 1;
    }
  }
  while (std::find(done.begin(), done.end(), 0) != done.end()) {
    std::vector<Layer*> ready;
    std::vector<size_t> ids;
    for (size_t i = 0; i < layers.size(); ++i) {
      if (done[i]) continue;
      const bool free = std::all_of(layers[i].deps.begin(), layers[i].deps.end(), [&](size_t d) { return done[d] != 0; });
      if (free) {
        ready.push_back(&layers[i]);
        ids.push_back(i);
      }
    }
    if (ready.empty()) return Internal(model.source() + ": re-fit found a cycle between layers");
    std::vector<LayerStats> stats;
    MP_RETURN_IF_ERROR(CollectGrams(model, dense, ready, data, &stats));
    for (size_t k = 0; k < ids.size(); ++k) {
      std::vector<double> gram, cross, dense_gram;
      const int64_t samples = stats[k].h.empty() ? 0 : stats[k].h[0].rows();
      // Each accumulator's matrix is moved out, so a layer's matrices are not
      // held twice during its re-fit.
      for (size_t g = 0; g < stats[k].h.size(); ++g) {
        auto append = [](std::vector<double>& to, std::vector<double> m) {
          if (to.empty()) {
            to = std::move(m);
          } else {
            to.insert(to.end(), m.begin(), m.end());
          }
        };
        append(gram, stats[k].h[g].ReleaseGram());
        if (dense) {
          append(cross, stats[k].cross[g].ReleaseCross());
          append(dense_gram, stats[k].dense[g].ReleaseGram());
        }
      }
      const RefitTarget target{cross, dense_gram};
      MP_RETURN_IF_ERROR(finish(ids[k], gram, samples, dense ? &target : nullptr).WithPrefix(model.source() + ": tensor '" + layers[ids[k]].tensor + "'"));
      done[ids[k]] = 1;
    }
  }
  return Status::Ok();
}

Status CheckReconstructOptions(const ReconstructOptions& o) {
  if (!(o.refit.damp >= 0)) return InvalidArgument("--damp must be >= 0, got " + std::to_string(o.refit.damp));
  if (o.batch < 1) return InvalidArgument("the calibration batch must be at least 1");
  if (o.steps < 1) return InvalidArgument("--steps must be at least 1, got " + std::to_string(o.steps));
  return Status::Ok();
}

// Fixed masks (or counts for OBS saliency) from the magnitude pruner's result
// in `pruned`, a pruned copy of `current`. Unstructured masks (`u` given) are
// then made to keep a weight in every row (KeepRowsAlive), within each layer
// or, for the tensors of a global selection, across them.
Result<std::vector<Job>> JobsFrom(const Model& current, const Model& pruned, const PruneReport& report,
                                  const ReconstructOptions& o, const NMOptions* nm, const UnstructuredOptions* u) {
  std::vector<Job> jobs;
  const std::vector<WeightInfo> infos = AnalyzeWeights(pruned);
  std::unordered_map<std::string, const WeightInfo*> info_of;
  for (const WeightInfo& w : infos) info_of[w.name] = &w;
  for (const PruneTensorReport& row : report.tensors) {
    if (!row.pruned) continue;
    Job j;
    j.tensor = row.name;
    MP_ASSIGN_OR_RETURN(TensorView v, pruned.View(row.name));
    j.rule.kind = MaskRule::kFixed;
    j.rule.keep.resize(static_cast<size_t>(v.size()));
    for (int64_t i = 0; i < v.size(); ++i) j.rule.keep[i] = v.AsDouble(i) != 0;
    if (nm && o.saliency == MaskSaliency::kObs) {
      j.rule.kind = MaskRule::kNM;
      j.rule.n = nm->n;
      j.rule.m = nm->m;
      const auto it = info_of.find(row.name);
      if (it != info_of.end()) j.rule.reduction_axis = it->second->reduction_axis;
    }
    jobs.push_back(std::move(j));
  }
  if (u) {
    std::vector<RowFloorItem> global;
    for (Job& j : jobs) {
      MP_ASSIGN_OR_RETURN(TensorView w, current.View(j.tensor));
      const auto it = info_of.find(j.tensor);
      RowFloorItem item{w, &j.rule.keep, nullptr};
      if (it == info_of.end() || !RowsOf(w, it->second->output_axis, &item)) continue;
      const bool own = std::any_of(u->layer_sparsity.begin(), u->layer_sparsity.end(),
                                   [&](const auto& p) { return p.first == j.tensor; });
      if (u->scope == PruneScope::kGlobal && !own) {
        global.push_back(item);
      } else {
        KeepRowsAlive(std::span(&item, 1));
      }
    }
    KeepRowsAlive(global);
    if (o.saliency == MaskSaliency::kObs) {
      for (Job& j : jobs) {
        j.rule.kind = MaskRule::kCount;
        j.rule.prune_count = std::count(j.rule.keep.begin(), j.rule.keep.end(), uint8_t{0});
      }
    }
  }
  return jobs;
}

// Prunes with `prune` on a copy of `current`, then re-fits `current` with the
// resulting masks; `dense` gives the targets (null: none).
template <class Prune>
Result<PruneReport> PruneStep(Model& current, const Model* dense, const quant::CalibrationData& data,
                              const ReconstructOptions& o, const NMOptions* nm, const UnstructuredOptions* u,
                              Prune prune) {
  MP_ASSIGN_OR_RETURN(Model pruned, Clone(current));
  MP_ASSIGN_OR_RETURN(PruneReport report, prune(pruned));
  MP_ASSIGN_OR_RETURN(std::vector<Job> jobs, JobsFrom(current, pruned, report, o, nm, u));
  MP_ASSIGN_OR_RETURN(Model work, Clone(current));
  MP_RETURN_IF_ERROR(ReconstructLayers(work, dense, jobs, data, o, &report.refits));
  report.zeros_after = 0;
  for (PruneTensorReport& row : report.tensors) {
    if (!row.pruned) continue;
    row.zeros_after = ZerosOf(work, row.name);
    report.zeros_after += row.zeros_after;
  }
  current = std::move(work);
  return report;
}

// Sparsity after step t of `steps` on the way to `target`: the kept fraction
// shrinks by the same factor at every step, (1 - target)^(t / steps).
double StepSparsity(double target, int t, int steps) {
  if (t >= steps) return target;
  return 1.0 - std::pow(1.0 - target, static_cast<double>(t) / steps);
}

}  // namespace

Result<PruneReport> PruneUnstructuredReconstructed(Model& model, const UnstructuredOptions& options,
                                                   const quant::CalibrationData& data, const ReconstructOptions& o) {
  MP_RETURN_IF_ERROR(CheckReconstructOptions(o));
  MP_ASSIGN_OR_RETURN(Model current, Clone(model));
  MP_ASSIGN_OR_RETURN(std::optional<Model> dense, DenseTargets(model, o));
  PruneReport report, first;
  // With several steps, each layer's final count is fixed first: the count
  // the one-step selection (global threshold and KeepRowsAlive included)
  // gives it. The steps then approach every layer's count on its own, so the
  // masks are re-chosen on re-fitted weights within a layer, but the share of
  // each layer does not depend on how a re-fit scaled its weights.
  UnstructuredOptions base = options;
  if (o.steps > 1) {
    MP_ASSIGN_OR_RETURN(Model alloc, Clone(model));
    MP_ASSIGN_OR_RETURN(PruneReport r0, PruneUnstructured(alloc, options));
    ReconstructOptions mag = o;
    mag.saliency = MaskSaliency::kMagnitude;
    MP_ASSIGN_OR_RETURN(std::vector<Job> jobs0, JobsFrom(model, alloc, r0, mag, nullptr, &options));
    base.scope = PruneScope::kLayer;
    base.layer_sparsity.clear();
    for (const Job& j : jobs0) {
      const double pruned = static_cast<double>(std::count(j.rule.keep.begin(), j.rule.keep.end(), uint8_t{0}));
      base.layer_sparsity.emplace_back(j.tensor, std::min(pruned / static_cast<double>(j.rule.keep.size()), 1 - 1e-12));
    }
  }
  for (int t = 1; t <= o.steps; ++t) {
    UnstructuredOptions step = base;
    step.sparsity = StepSparsity(base.sparsity, t, o.steps);
    for (auto& [name, s] : step.layer_sparsity) s = StepSparsity(s, t, o.steps);
    MP_ASSIGN_OR_RETURN(report, PruneStep(current, dense ? &*dense : nullptr, data, o, nullptr, &step,
                                          [&](Model& m) { return PruneUnstructured(m, step); }));
    if (t == 1) first = report;
  }
  // Sparsity before: that of the model as given, not of the previous step.
  report.zeros_before = first.zeros_before;
  for (size_t i = 0; i < report.tensors.size() && i < first.tensors.size(); ++i) {
    report.tensors[i].zeros_before = first.tensors[i].zeros_before;
  }
  model = std::move(current);
  return report;
}

Result<PruneReport> PruneNMReconstructed(Model& model, const NMOptions& options, const quant::CalibrationData& data,
                                         const ReconstructOptions& o) {
  MP_RETURN_IF_ERROR(CheckReconstructOptions(o));
  MP_ASSIGN_OR_RETURN(Model current, Clone(model));
  MP_ASSIGN_OR_RETURN(std::optional<Model> dense, DenseTargets(model, o));
  MP_ASSIGN_OR_RETURN(PruneReport report, PruneStep(current, dense ? &*dense : nullptr, data, o, &options, nullptr,
                                                    [&](Model& m) { return PruneNM(m, options); }));
  model = std::move(current);
  return report;
}

Result<ChannelPruneReport> PruneChannelsReconstructed(Model& model, const ChannelPruneOptions& options,
                                                      const quant::CalibrationData& data, const ReconstructOptions& o) {
  MP_RETURN_IF_ERROR(CheckReconstructOptions(o));
  MP_ASSIGN_OR_RETURN(Model work, Clone(model));
  auto refit = [&](Model& m, const ChannelAnalysis& a, const std::vector<uint8_t>& removed,
                   ChannelPruneReport* report) -> Status {
    // The layers reading removed channels: their columns of those channels
    // are masked (so the unsliced model computes what the sliced one will),
    // the rest of each row is re-fitted.
    const std::vector<WeightInfo> infos = AnalyzeWeights(m);
    std::map<std::string, std::vector<uint8_t>> masks;
    std::vector<std::string> order;
    for (const ChannelSlice& s : a.slices) {
      if (s.produces) continue;
      const auto info = std::find_if(infos.begin(), infos.end(), [&](const WeightInfo& w) { return w.name == s.tensor; });
      if (info == infos.end() || !IsLinearWeight(info->role) || info->reduction_axis != s.axis) continue;
      MP_ASSIGN_OR_RETURN(TensorView v, m.View(s.tensor));
      MP_ASSIGN_OR_RETURN(AxisSplit split, SplitAtAxis(v.shape(), s.axis));
      if (static_cast<int64_t>(s.units.size()) != split.length) continue;
      auto [it, fresh] = masks.try_emplace(s.tensor, std::vector<uint8_t>(static_cast<size_t>(v.size()), 1));
      if (fresh) order.push_back(s.tensor);
      bool any = false;
      for (int64_t o1 = 0; o1 < split.outer; ++o1) {
        for (int64_t p = 0; p < split.length; ++p) {
          if (s.units[p] == kFixedUnit || !removed[s.units[p]]) continue;
          any = true;
          for (int64_t i = 0; i < split.inner; ++i) it->second[(o1 * split.length + p) * split.inner + i] = 0;
        }
      }
      if (!any && fresh) {
        masks.erase(it);
        order.pop_back();
      }
    }
    std::vector<Job> jobs;
    for (const std::string& name : order) {
      Job j;
      j.tensor = name;
      j.rule.keep = std::move(masks[name]);
      jobs.push_back(std::move(j));
    }
    MP_ASSIGN_OR_RETURN(std::optional<Model> dense, DenseTargets(m, o));
    return ReconstructLayers(m, dense ? &*dense : nullptr, jobs, data, o, &report->refits);
  };
  MP_ASSIGN_OR_RETURN(ChannelPruneReport report, prune_detail::PruneChannelsWith(work, options, refit));
  model = std::move(work);
  return report;
}

}  // namespace modelpress
