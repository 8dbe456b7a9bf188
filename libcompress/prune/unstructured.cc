#include <map>

#include "prune/common.h"
#include "prune/select.h"

namespace modelpress {

namespace {

// Whether a tensor can be zeroed on its way out instead of in memory.
bool Deferrable(const TensorView& v) {
  return v.storage() == Storage::kExternal && v.dtype() == DType::kFloat32 && v.contiguous();
}

// PruneUnstructured; with `save`, deferrable tensors are zeroed by edits
// registered in it (see PruneUnstructuredOnSave).
Result<PruneReport> Prune(Model& model, const UnstructuredOptions& o, SaveOptions* save) {
  MP_RETURN_IF_ERROR(CheckSparsity(o.sparsity));
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);
  MP_ASSIGN_OR_RETURN(Selection sel, SelectTensors(model, infos, o.filter));

  std::map<std::string, double> overrides;
  for (const auto& [name, s] : o.layer_sparsity) {
    MP_RETURN_IF_ERROR(CheckSparsity(s).WithPrefix("--layer " + name));
    const bool known = std::any_of(sel.eligible.begin(), sel.eligible.end(), [&](const Candidate& c) { return c.entry->name == name; });
    if (!known) return InvalidArgument("--layer " + name + ": no eligible tensor of that name in " + model.source());
    overrides[name] = s;
  }

  PruneReport report;
  report.method = o.scope == PruneScope::kGlobal ? "unstructured-global" : "unstructured-layer";
  // Segments of the global selection, and the report row of every segment.
  std::vector<prune_detail::Segment> global;
  std::vector<size_t> rows_of_global;
  int64_t global_total = 0;
  // Registers the zeroing of segment `index` of a selection as a save edit.
  auto defer = [&](const std::string& name, std::shared_ptr<prune_detail::Selection> decision, size_t index) {
    save->edits[name] = [decision, index](uint64_t offset, std::span<const std::byte> in, std::span<std::byte> out) {
      decision->ZeroFloat32(index, static_cast<int64_t>(offset / sizeof(float)), reinterpret_cast<const uint32_t*>(in.data()),
                            reinterpret_cast<uint32_t*>(out.data()), static_cast<int64_t>(in.size() / sizeof(float)));
    };
  };
  auto finish_row = [&](PruneTensorReport& row, const prune_detail::Segment& seg) {
    // Keys of magnitude 0 are exact zeros except for float64 values too
    // small for float32, which are counted on the data instead.
    row.zeros_before = seg.weights.dtype() == DType::kFloat64 ? row.zeros_before : seg.zero_keys;
    row.zeros_after = seg.pruned;  // every pruned element is 0 and every 0 is pruned
  };
  for (const Candidate& c : sel.eligible) {
    const auto it = overrides.find(c.entry->name);
    const double target = it != overrides.end() ? it->second : o.sparsity;
    PruneTensorReport row = ReportRow(c, target);
    row.pruned = true;
    MP_ASSIGN_OR_RETURN(TensorView view, model.View(*c.entry));
    prune_detail::Segment seg{view, {}, nullptr, nullptr};
    if (save == nullptr || !Deferrable(view)) {
      MP_ASSIGN_OR_RETURN(MutableTensorView w, model.MutableTensor(c.entry->name));
      seg = {w.view(), {}, nullptr, w.bytes.data()};
    }
    if (seg.weights.dtype() == DType::kFloat64) row.zeros_before = ZerosOf(model, row.name);
    if (o.scope == PruneScope::kGlobal && it == overrides.end()) {
      global.push_back(seg);
      rows_of_global.push_back(report.tensors.size());
      global_total += row.parameters;
    } else {
      std::shared_ptr<prune_detail::Selection> decision;
      prune_detail::PruneSmallest(std::span(&seg, 1), TargetCount(target, row.parameters), o.threads, &decision);
      finish_row(row, seg);
      if (seg.zero_out == nullptr) defer(row.name, decision, 0);
    }
    report.tensors.push_back(std::move(row));
  }
  if (!global.empty()) {
    std::shared_ptr<prune_detail::Selection> decision;
    prune_detail::PruneSmallest(global, TargetCount(o.sparsity, global_total), o.threads, &decision);
    for (size_t i = 0; i < global.size(); ++i) {
      PruneTensorReport& row = report.tensors[rows_of_global[i]];
      finish_row(row, global[i]);
      if (global[i].zero_out == nullptr) defer(row.name, decision, i);
    }
  }
  for (PruneTensorReport& row : report.tensors) {
    report.parameters += row.parameters;
    report.zeros_before += row.zeros_before;
    report.zeros_after += row.zeros_after;
  }
  for (auto& row : sel.skipped) report.tensors.push_back(std::move(row));
  return report;
}

}  // namespace

Result<PruneReport> PruneUnstructured(Model& model, const UnstructuredOptions& o) { return Prune(model, o, nullptr); }

Result<PruneReport> PruneUnstructuredOnSave(Model& model, const UnstructuredOptions& o, SaveOptions* save) {
  return Prune(model, o, save);
}

}  // namespace modelpress
