#include <algorithm>
#include <regex>

#include "modelpress/sparsity.h"
#include "prune/common.h"

namespace modelpress {
namespace {

Result<std::optional<std::regex>> Compile(const std::string& pattern, const char* flag) {
  if (pattern.empty()) return std::optional<std::regex>();
  try {
    return std::optional<std::regex>(std::regex(pattern, std::regex::ECMAScript));
  } catch (const std::regex_error& e) {
    return InvalidArgument(std::string(flag) + " '" + pattern + "' is not a valid regular expression: " + e.what());
  }
}

bool Prunable(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBfloat16; }

}  // namespace

PruneTensorReport ReportRow(const Candidate& c, double target) {
  PruneTensorReport r;
  r.name = c.entry->name;
  r.role = WeightRoleName(c.info->role);
  r.shape.assign(c.entry->proto->dims().begin(), c.entry->proto->dims().end());
  r.dtype = DTypeName(c.entry->proto->data_type());
  r.parameters = ElementCount(r.shape).value_or(0);
  r.target = target;
  return r;
}

int64_t ZerosOf(const Model& model, const std::string& name) {
  auto v = model.View(name);
  return v.ok() ? CountZeros(*v) : 0;
}

Result<Selection> SelectTensors(const Model& model, const std::vector<WeightInfo>& infos, const TensorFilter& filter) {
  MP_ASSIGN_OR_RETURN(auto include, Compile(filter.include, "--include"));
  MP_ASSIGN_OR_RETURN(auto exclude, Compile(filter.exclude, "--exclude"));
  if (filter.min_params < 0) return InvalidArgument("--min-params must not be negative");

  std::vector<Candidate> in_role;
  for (size_t i = 0; i < infos.size(); ++i) {
    if (std::find(filter.roles.begin(), filter.roles.end(), infos[i].role) == filter.roles.end()) continue;
    if (include && !std::regex_search(infos[i].name, *include)) continue;
    in_role.push_back({&model.tensors()[i], &infos[i]});
  }
  if (include && in_role.empty()) {
    return InvalidArgument("--include '" + filter.include + "' matches no tensor of an eligible role in " + model.source());
  }

  // The first and last linear weights by position of the node that reads them.
  int first_node = -1, last_node = -1;
  if (filter.keep_first_last) {
    for (const WeightInfo& w : infos) {
      if (!IsLinearWeight(w.role) || w.role_node < 0) continue;
      if (first_node < 0 || w.role_node < first_node) first_node = w.role_node;
      if (w.role_node > last_node) last_node = w.role_node;
    }
  }

  Selection sel;
  for (const Candidate& c : in_role) {
    PruneTensorReport row = ReportRow(c, 0.0);
    const auto dtype = static_cast<DType>(c.entry->proto->data_type());
    if (exclude && std::regex_search(c.entry->name, *exclude)) {
      row.reason = "excluded by --exclude";
    } else if (!Prunable(dtype)) {
      row.reason = "dtype " + row.dtype + " is not prunable (float32, float16 and bfloat16 are)";
    } else if (row.parameters < filter.min_params) {
      row.reason = std::to_string(row.parameters) + " parameters, fewer than --min-params " + std::to_string(filter.min_params);
    } else if (filter.keep_first_last && (c.info->role_node == first_node || c.info->role_node == last_node)) {
      row.reason = c.info->role_node == first_node ? "first weight layer kept dense" : "last weight layer kept dense";
    } else if (!model.View(*c.entry).ok()) {
      row.reason = "data cannot be viewed";
    } else {
      sel.eligible.push_back(c);
      continue;
    }
    row.zeros_before = row.zeros_after = ZerosOf(model, row.name);
    sel.skipped.push_back(std::move(row));
  }
  if (sel.eligible.empty()) {
    return Unsupported(model.source() + ": no tensor left to prune (eligible: Conv, ConvTranspose, Gemm and MatMul weights " +
                       "of float32, float16 or bfloat16" + (sel.skipped.empty() ? "" : "; all were filtered out") + ")");
  }
  return sel;
}

}  // namespace modelpress
