// Pieces shared by the pruners (internal to libcompress/prune).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "modelpress/channel_groups.h"
#include "modelpress/prune.h"

namespace modelpress {

// InvalidArgument unless 0 <= sparsity < 1.
Status CheckSparsity(double sparsity);

// floor(sparsity * n), where a product within a relative 1e-9 of an integer
// is that integer, so the decimals users write count as meant (0.7 * 10 is 7).
int64_t TargetCount(double sparsity, int64_t n);

// A tensor a pruner may change.
struct Candidate {
  const TensorEntry* entry = nullptr;
  const WeightInfo* info = nullptr;
};

// The tensors a filter admits, and the rows of those it turned away.
struct Selection {
  std::vector<Candidate> eligible;
  std::vector<PruneTensorReport> skipped;
};

// Applies `filter` to the model's tensors (infos from AnalyzeWeights, same
// order). Fails on an invalid regex, an --include that matches no tensor of
// an eligible role, or a model with nothing eligible left.
Result<Selection> SelectTensors(const Model& model, const std::vector<WeightInfo>& infos, const TensorFilter& filter);

// A report row for a candidate, before pruning.
PruneTensorReport ReportRow(const Candidate& c, double target);

// Exact zeros of a tensor, counted on its current data.
int64_t ZerosOf(const Model& model, const std::string& name);

namespace prune_detail {

// Called by PruneChannelsWith once the units to remove are chosen and before
// the model is sliced (only when some unit goes); may change weight values
// (not shapes) and add to the report. An error stops the pruning.
using BeforeChannelRemoval = std::function<Status(Model& model, const ChannelAnalysis& analysis,
                                                  const std::vector<uint8_t>& removed, ChannelPruneReport* report)>;

// PruneChannels with a hook between selection and removal.
Result<ChannelPruneReport> PruneChannelsWith(Model& model, const ChannelPruneOptions& options,
                                             const BeforeChannelRemoval& before_removal);

}  // namespace prune_detail
}  // namespace modelpress
