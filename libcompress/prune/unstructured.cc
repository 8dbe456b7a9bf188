#include <map>

#include "prune/common.h"
#include "prune/select.h"

namespace modelpress {

Result<PruneReport> PruneUnstructured(Model& model, const UnstructuredOptions& o) {
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
  std::vector<prune_detail::Segment> global;
  std::vector<size_t> rows_of_global;
  int64_t global_total = 0;
  for (const Candidate& c : sel.eligible) {
    const auto it = overrides.find(c.entry->name);
    const double target = it != overrides.end() ? it->second : o.sparsity;
    PruneTensorReport row = ReportRow(c, target);
    row.pruned = true;
    MP_ASSIGN_OR_RETURN(MutableTensorView w, model.MutableTensor(c.entry->name));
    prune_detail::Segment seg{w.view(), {}, nullptr, w.bytes.data()};
    row.zeros_before = ZerosOf(model, row.name);
    if (o.scope == PruneScope::kGlobal && it == overrides.end()) {
      global.push_back(seg);
      rows_of_global.push_back(report.tensors.size());
      global_total += row.parameters;
    } else {
      prune_detail::PruneSmallest(std::span(&seg, 1), TargetCount(target, row.parameters), o.threads);
    }
    report.tensors.push_back(std::move(row));
  }
  if (!global.empty()) prune_detail::PruneSmallest(global, TargetCount(o.sparsity, global_total), o.threads);
  for (PruneTensorReport& row : report.tensors) {
    row.zeros_after = ZerosOf(model, row.name);
    report.parameters += row.parameters;
    report.zeros_before += row.zeros_before;
    report.zeros_after += row.zeros_after;
  }
  for (auto& row : sel.skipped) report.tensors.push_back(std::move(row));
  return report;
}

}  // namespace modelpress
