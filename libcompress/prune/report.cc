#include <nlohmann/json.hpp>

#include "modelpress/prune.h"

namespace modelpress {

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
  return j.dump(2);
}

}  // namespace modelpress
