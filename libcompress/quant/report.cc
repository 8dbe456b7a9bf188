#include <cmath>
#include <nlohmann/json.hpp>

#include "modelpress/quant.h"

namespace modelpress::quant {

std::string QuantReportJson(const QuantReport& r) {
  // JSON has no infinity: an exact (noise-free) tensor's SQNR is the string "Infinity".
  auto db = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(v > 0 ? "Infinity" : "-Infinity"); };
  nlohmann::json j;
  j["mode"] = r.mode;
  j["per_channel"] = r.per_channel;
  if (!r.activations.empty()) j["activations"] = r.activations;
  if (!r.calibration.empty()) {
    j["calibration"] = r.calibration;
    j["calibration_samples"] = r.calibration_samples;
  }
  j["opset_before"] = r.opset_before;
  j["opset_after"] = r.opset_after;
  j["tensors"] = nlohmann::json::array();
  for (const auto& t : r.tensors) {
    nlohmann::json row{{"name", t.name}, {"kind", t.kind}, {"node", t.node}, {"dtype", t.dtype},
                       {"axis", t.axis}, {"scales", t.scales}, {"zero_points", t.zero_points}};
    if (t.kind != "activation") {
      row["shape"] = t.shape;
    } else {
      row["range"] = {t.rmin, t.rmax};
    }
    if (t.kind == "weight") {
      row["zeros_before"] = t.zeros_before;
      row["zeros_after"] = t.zeros_after;
    }
    row["sqnr_db"] = t.has_sqnr ? db(t.sqnr_db) : nlohmann::json(nullptr);
    j["tensors"].push_back(std::move(row));
  }
  j["skipped"] = nlohmann::json::array();
  for (const auto& s : r.skipped) j["skipped"].push_back({{"node", s.name}, {"op_type", s.op_type}, {"reason", s.reason}});
  j["totals"] = {{"weight_bytes_before", r.weight_bytes_before}, {"weight_bytes_after", r.weight_bytes_after}};
  j["notices"] = r.notices;
  return j.dump(2);
}

}  // namespace modelpress::quant
