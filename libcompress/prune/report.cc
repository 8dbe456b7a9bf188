#include <nlohmann/json.hpp>

#include "modelpress/prune.h"

namespace modelpress {

nlohmann::json RefitReportsJson(const std::vector<RefitReport>& refits) {
  nlohmann::json a = nlohmann::json::array();
  for (const RefitReport& f : refits) {
    nlohmann::json row{{"tensor", f.tensor},         {"node", f.node},       {"method", f.method},
                       {"rows", f.rows},             {"columns", f.columns}, {"samples", f.samples},
                       {"error_before", f.error_before}, {"error_after", f.error_after}};
    if (!f.reason.empty()) row["reason"] = f.reason;
    a.push_back(std::move(row));
  }
  return a;
}

std::string PruneReportJson(const PruneReport& r) {
  nlohmann::json j;
  j["method"] = r.method;
  auto frac = [](int64_t zeros, int64_t n) { return n > 0 ? static_cast<double>(zeros) / static_cast<double>(n) : 0.0; };
  j["tensors"] = nlohmann::json::array();
  for (const auto& t : r.tensors) {
    nlohmann::json row{{"name", t.name},
                       {"role", t.role},
                       {"shape", t.shape},
                       {"dtype", t.dtype},
                       {"parameters", t.parameters},
                       {"zeros_before", t.zeros_before},
                       {"zeros_after", t.zeros_after},
                       {"sparsity_before", frac(t.zeros_before, t.parameters)},
                       {"sparsity_after", frac(t.zeros_after, t.parameters)},
                       {"pruned", t.pruned}};
    if (t.pruned) row["target"] = t.target;
    if (!t.reason.empty()) row["reason"] = t.reason;
    j["tensors"].push_back(std::move(row));
  }
  j["totals"] = {{"parameters", r.parameters},
                 {"zeros_before", r.zeros_before},
                 {"zeros_after", r.zeros_after},
                 {"sparsity_before", frac(r.zeros_before, r.parameters)},
                 {"sparsity_after", frac(r.zeros_after, r.parameters)}};
  j["notices"] = r.notices;
  if (!r.refits.empty()) j["reconstruction"] = RefitReportsJson(r.refits);
  return j.dump(2);
}

}  // namespace modelpress
