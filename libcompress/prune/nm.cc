#include "modelpress/sparsity.h"
#include "prune/common.h"

namespace modelpress {

Result<PruneReport> PruneNM(Model& model, const NMOptions& o) {
  if (o.m <= 0 || o.n < 0 || o.n > o.m || o.m > 64) {
    return InvalidArgument("N:M needs 0 <= N <= M and 0 < M <= 64 (got " + std::to_string(o.n) + ":" + std::to_string(o.m) + ")");
  }
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);
  MP_ASSIGN_OR_RETURN(Selection sel, SelectTensors(model, infos, o.filter));
  PruneReport report;
  report.method = "nm";
  const double target = 1.0 - static_cast<double>(o.n) / o.m;
  std::vector<PruneTensorReport> skipped = std::move(sel.skipped);
  int pruned = 0;
  for (const Candidate& c : sel.eligible) {
    PruneTensorReport row = ReportRow(c, target);
    row.zeros_before = row.zeros_after = ZerosOf(model, row.name);
    const int axis = c.info->reduction_axis;
    auto split = SplitAtAxis(row.shape, axis);
    if (!split.ok()) {
      row.reason = "no reduction axis";
    } else if (split->length % o.m != 0) {
      row.reason = "reduction length " + std::to_string(split->length) + " is not a multiple of " + std::to_string(o.m);
    }
    if (!row.reason.empty()) {
      skipped.push_back(std::move(row));
      continue;
    }
    MP_ASSIGN_OR_RETURN(MutableTensorView w, model.MutableTensor(c.entry->name));
    Mask keep(static_cast<size_t>(row.parameters));
    MP_RETURN_IF_ERROR(NMMask({w.view(), {}}, axis, o.n, o.m, keep).WithPrefix(model.source() + ": tensor '" + row.name + "'"));
    MP_RETURN_IF_ERROR(ApplyMask(w, keep));
    row.pruned = true;
    row.zeros_after = ZerosOf(model, row.name);
    report.parameters += row.parameters;
    report.zeros_before += row.zeros_before;
    report.zeros_after += row.zeros_after;
    report.tensors.push_back(std::move(row));
    ++pruned;
  }
  for (auto& row : skipped) report.tensors.push_back(std::move(row));
  if (pruned == 0) {
    return Unsupported(model.source() + ": no tensor can be pruned " + std::to_string(o.n) + ":" + std::to_string(o.m) +
                       " (every eligible tensor was skipped; see the reasons with --report)");
  }
  return report;
}

}  // namespace modelpress
