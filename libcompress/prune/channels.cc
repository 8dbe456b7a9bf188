#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>
#include <regex>

#include "modelpress/channel_groups.h"
#include "modelpress/prune.h"
#include "modelpress/sparsity.h"
#include "prune/channels_apply.h"
#include "prune/common.h"

namespace modelpress {

nlohmann::json RefitReportsJson(const std::vector<RefitReport>& refits);  // report.cc

namespace {

using prune_detail::KeptCount;

// Per-unit scores: sum of |w| (l1) or the Euclidean norm (l2) over every
// scored slice (linear weights on both sides, norm scales).
Result<std::vector<double>> Scores(const Model& model, const ChannelAnalysis& a, ChannelCriterion criterion) {
  std::vector<double> score(a.unit_group.size(), 0.0);
  for (const ChannelSlice& s : a.slices) {
    if (!s.scored) continue;
    MP_ASSIGN_OR_RETURN(TensorView v, model.View(s.tensor));
    MP_ASSIGN_OR_RETURN(AxisSplit split, SplitAtAxis(v.shape(), s.axis));
    const auto f32 = v.dtype() == DType::kFloat32 ? v.span<float>() : std::span<const float>();
    for (int64_t o = 0; o < split.outer; ++o) {
      for (int64_t l = 0; l < split.length; ++l) {
        const int64_t unit = s.units[l];
        if (unit == kFixedUnit) continue;
        double acc = 0;
        const int64_t base = (o * split.length + l) * split.inner;
        for (int64_t i = 0; i < split.inner; ++i) {
          const double w = f32.empty() ? v.AsDouble(base + i) : f32[base + i];
          acc += criterion == ChannelCriterion::kL1 ? std::fabs(w) : w * w;
        }
        score[unit] += acc;
      }
    }
  }
  if (criterion == ChannelCriterion::kL2) {
    for (double& x : score) x = std::sqrt(x);
  }
  return score;
}

// Units of `group` ordered by ascending score, ties by index.
std::vector<int64_t> Ascending(const ChannelGroup& g, const std::vector<double>& score) {
  std::vector<int64_t> u(static_cast<size_t>(g.channels));
  std::iota(u.begin(), u.end(), g.first_unit);
  std::stable_sort(u.begin(), u.end(), [&](int64_t x, int64_t y) { return score[x] < score[y]; });
  return u;
}

// Kept channels rounded up to a multiple of `k`, never above `channels`.
int64_t RoundKept(int64_t kept, int64_t channels, int64_t k) {
  const int64_t rounded = (kept + k - 1) / k * k;
  return std::max<int64_t>(1, std::min(channels, rounded));
}

// Gives back, for every tensor axis or output that would be left empty, the
// best-scoring removed unit in it, so no dimension becomes zero.
void KeepEveryRangeNonEmpty(const ChannelAnalysis& a, const std::vector<double>& score, std::vector<uint8_t>* removed) {
  std::vector<std::vector<int64_t>> ranges;
  for (const ChannelSlice& s : a.slices) ranges.push_back(s.units);
  for (size_t i = 0; i < a.fixups.size(); ++i) {
    const ShapeFixup& f = a.fixups[i];
    if (f.kind == ShapeFixup::kSplitSize || f.kind == ShapeFixup::kReshapeDim || f.kind == ShapeFixup::kConvGroup) ranges.push_back(f.units);
    if (f.kind == ShapeFixup::kSliceEnd && i > 0 && a.fixups[i - 1].kind == ShapeFixup::kSliceStart) {
      ranges.emplace_back(f.units.begin() + static_cast<int64_t>(a.fixups[i - 1].units.size()), f.units.end());
    }
  }
  for (const auto& r : ranges) {
    if (r.empty() || KeptCount(r, *removed) > 0) continue;
    int64_t best = kFixedUnit;
    for (int64_t u : r) {
      if (u != kFixedUnit && (best == kFixedUnit || score[u] > score[best])) best = u;
    }
    if (best != kFixedUnit) (*removed)[best] = 0;
  }
}

}  // namespace

Result<ChannelPruneReport> prune_detail::PruneChannelsWith(Model& model, const ChannelPruneOptions& o,
                                                          const BeforeChannelRemoval& before_removal) {
  if (!(o.ratio >= 0.0 && o.ratio < 1.0)) {
    return InvalidArgument("--ratio must be in [0, 1), got " + std::to_string(o.ratio));
  }
  if (o.round_to < 1) return InvalidArgument("--round-to must be at least 1, got " + std::to_string(o.round_to));
  std::optional<std::regex> exclude;
  if (!o.exclude.empty()) {
    try {
      exclude.emplace(o.exclude, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return InvalidArgument("--exclude '" + o.exclude + "' is not a valid regular expression: " + e.what());
    }
  }

  const ChannelAnalysis a = AnalyzeChannelGroups(model);
  ChannelPruneReport report;
  report.criterion = o.criterion == ChannelCriterion::kL1 ? "l1" : "l2";
  report.scope = o.scope == PruneScope::kGlobal ? "global" : "layer";
  report.ratio = o.ratio;
  report.round_to = o.round_to;
  report.notices = a.notices;

  // Which groups may lose channels.
  std::vector<uint8_t> eligible(a.groups.size(), 0);
  for (const ChannelGroup& g : a.groups) {
    ChannelGroupReport row;
    row.id = g.id;
    row.producers = g.producers;
    row.channels_before = row.channels_after = g.channels;
    row.reason = g.reason;
    if (g.prunable && exclude) {
      bool hit = false;
      for (const auto& p : g.producers) hit |= std::regex_search(p, *exclude);
      for (const ChannelSlice& s : a.slices) {
        if (s.produces && !s.units.empty() && s.units[0] != kFixedUnit && a.unit_group[s.units[0]] == g.id) {
          hit |= std::regex_search(s.tensor, *exclude);
        }
      }
      if (hit) row.reason = "excluded by --exclude";
    }
    if (g.prunable && row.reason.empty() && g.channels < 2) row.reason = "a single channel";
    eligible[g.id] = g.prunable && row.reason.empty();
    report.groups.push_back(std::move(row));
  }
  if (std::find(eligible.begin(), eligible.end(), 1) == eligible.end()) {
    std::string why;
    for (const auto& row : report.groups) {
      if (!row.reason.empty()) {
        why = " (e.g. group of " + row.producers.front() + ": " + row.reason + ")";
        break;
      }
    }
    return Unsupported(model.source() + ": no channel group can be pruned" + why);
  }

  MP_ASSIGN_OR_RETURN(std::vector<double> score, Scores(model, a, o.criterion));
  std::vector<uint8_t> removed(a.unit_group.size(), 0);
  if (o.scope == PruneScope::kLayer) {
    for (const ChannelGroup& g : a.groups) {
      if (!eligible[g.id]) continue;
      const int64_t kept = RoundKept(g.channels - TargetCount(o.ratio, g.channels), g.channels, o.round_to);
      const auto order = Ascending(g, score);
      for (int64_t k = 0; k < g.channels - kept; ++k) removed[order[k]] = 1;
    }
  } else {
    // One ranking across groups of scores divided by their group's mean, so
    // that wide and narrow layers compete on equal terms.
    struct Ranked {
      double s;
      int64_t unit;
    };
    std::vector<Ranked> all;
    int64_t total = 0;
    for (const ChannelGroup& g : a.groups) {
      if (!eligible[g.id]) continue;
      double mean = 0;
      for (int64_t u = g.first_unit; u < g.first_unit + g.channels; ++u) mean += score[u];
      mean /= static_cast<double>(g.channels);
      for (int64_t u = g.first_unit; u < g.first_unit + g.channels; ++u) all.push_back({mean > 0 ? score[u] / mean : 0.0, u});
      total += g.channels;
    }
    std::stable_sort(all.begin(), all.end(), [](const Ranked& x, const Ranked& y) { return x.s < y.s; });
    std::vector<int64_t> lost(a.groups.size(), 0);
    int64_t budget = TargetCount(o.ratio, total);
    for (const Ranked& r : all) {
      if (budget == 0) break;
      const ChannelGroup& g = a.groups[a.unit_group[r.unit]];
      if (lost[g.id] + 1 >= g.channels) continue;  // every group keeps a channel
      removed[r.unit] = 1;
      ++lost[g.id];
      --budget;
    }
    for (const ChannelGroup& g : a.groups) {
      if (!eligible[g.id] || lost[g.id] == 0) continue;
      const int64_t kept = RoundKept(g.channels - lost[g.id], g.channels, o.round_to);
      auto order = Ascending(g, score);
      std::reverse(order.begin(), order.end());
      for (int64_t give = kept - (g.channels - lost[g.id]); give > 0;) {
        for (int64_t u : order) {
          if (give == 0) break;
          if (removed[u]) {
            removed[u] = 0;
            --give;
          }
        }
      }
    }
  }
  KeepEveryRangeNonEmpty(a, score, &removed);

  report.parameters_before = prune_detail::CountParameters(model);
  int unknown = 0;
  report.macs_before = prune_detail::CountMacs(model, InferValueShapes(model), &unknown);
  const bool any = std::find(removed.begin(), removed.end(), 1) != removed.end();
  if (any && before_removal) MP_RETURN_IF_ERROR(before_removal(model, a, removed, &report));
  if (any) {
    MP_RETURN_IF_ERROR(prune_detail::ApplyChannelRemoval(model, a, removed, &report.notices));
  }
  report.parameters_after = prune_detail::CountParameters(model);
  int unknown_after = 0;
  report.macs_after = any ? prune_detail::CountMacs(model, InferValueShapes(model), &unknown_after) : report.macs_before;
  if (unknown > 0) {
    report.notices.push_back(std::to_string(unknown) + " Conv/Gemm/MatMul nodes have unknown shapes; their MACs are not counted");
  }
  for (ChannelGroupReport& row : report.groups) {
    const ChannelGroup& g = a.groups[row.id];
    int64_t kept = 0;
    for (int64_t u = g.first_unit; u < g.first_unit + g.channels; ++u) kept += removed[u] ? 0 : 1;
    row.channels_after = kept;
    row.pruned = kept < g.channels;
  }
  return report;
}

Result<ChannelPruneReport> PruneChannels(Model& model, const ChannelPruneOptions& o) {
  return prune_detail::PruneChannelsWith(model, o, {});
}

std::string ChannelPruneReportJson(const ChannelPruneReport& r) {
  nlohmann::json j;
  j["method"] = "channels";
  j["criterion"] = r.criterion;
  j["scope"] = r.scope;
  j["ratio"] = r.ratio;
  j["round_to"] = r.round_to;
  j["groups"] = nlohmann::json::array();
  for (const auto& g : r.groups) {
    nlohmann::json row{{"id", g.id},
                       {"producers", g.producers},
                       {"channels_before", g.channels_before},
                       {"channels_after", g.channels_after},
                       {"pruned", g.pruned}};
    if (!g.reason.empty()) row["reason"] = g.reason;
    j["groups"].push_back(std::move(row));
  }
  j["totals"] = {{"parameters_before", r.parameters_before},
                 {"parameters_after", r.parameters_after},
                 {"macs_before", r.macs_before},
                 {"macs_after", r.macs_after}};
  j["notices"] = r.notices;
  if (!r.refits.empty()) j["reconstruction"] = RefitReportsJson(r.refits);
  return j.dump(2);
}

}  // namespace modelpress
