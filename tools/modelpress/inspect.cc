// modelpress inspect MODEL [--json]: what is in a model and where its bytes are.
#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "inspect_report.h"
#include "subcommands.h"

namespace modelpress::cli {

// A .mpk artifact (pack.cc); chosen by its magic number.
int RunInspectArtifact(const std::string& path, bool json);

namespace {

struct InspectOptions {
  std::string model;  // path of the .onnx file
  bool json = false;  // print JSON (docs/inspect_json.md) instead of tables
  bool check = true;  // run ONNX's checker
};

std::string ValueInfoText(const nlohmann::json& j) {
  std::string s = j["name"].get<std::string>();
  if (j.contains("dtype")) s += " " + j["dtype"].get<std::string>();
  if (j.contains("shape")) {
    s += " [";
    bool first = true;
    for (const auto& d : j["shape"]) {
      if (!first) s += ", ";
      s += d.is_string() ? d.get<std::string>() : std::to_string(d.get<int64_t>());
      first = false;
    }
    s += "]";
  }
  return s;
}

int RunInspect(const InspectOptions& o) {
  if (IsArtifact(o.model)) return RunInspectArtifact(o.model, o.json);
  auto report = InspectModelJson(o.model, o.check);
  if (!report.ok()) return Fail(report.status());
  const nlohmann::json& j = *report;
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }

  const nlohmann::json& checker = j["checker"];
  std::cout << "model     " << o.model << (j["external_data"].get<bool>() ? "  (external data)" : "") << "\n";
  std::cout << "format    ONNX, IR version " << j["ir_version"].get<int64_t>() << ", opset";
  for (const auto& op : j["opsets"]) {
    const std::string domain = op["domain"].get<std::string>();
    std::cout << " " << (domain.empty() ? "ai.onnx" : domain) << " " << op["version"].get<int64_t>();
  }
  const std::string producer = j["producer"]["name"].get<std::string>();
  std::cout << "\nproducer  " << (producer.empty() ? "-" : producer + " " + j["producer"]["version"].get<std::string>())
            << "\n";
  std::cout << "checker   " << checker["status"].get<std::string>();
  if (checker.contains("message")) std::cout << ": " << checker["message"].get<std::string>();
  std::cout << "\nnodes     " << j["nodes"].get<int64_t>() << ":";
  for (const auto& [op, n] : j["ops"].items()) std::cout << " " << op << "×" << n.get<int>();
  for (const auto& v : j["inputs"]) std::cout << "\ninput     " << ValueInfoText(v);
  for (const auto& v : j["outputs"]) std::cout << "\noutput    " << ValueInfoText(v);
  std::cout << "\n\n";

  const uint64_t bytes = j["totals"]["bytes"].get<uint64_t>();
  const int64_t params = j["totals"]["parameters"].get<int64_t>();
  const int64_t nonzero = j["totals"]["nonzero_parameters"].get<int64_t>();
  // Largest tensors first, so the eye lands where the bytes are.
  std::vector<const nlohmann::json*> order;
  for (const auto& t : j["tensors"]) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const nlohmann::json* a, const nlohmann::json* b) {
    return (*a)["bytes"].get<uint64_t>() > (*b)["bytes"].get<uint64_t>();
  });
  std::vector<std::vector<std::string>> table = {
      {"tensor", "role", "shape", "dtype", "bytes", "share", "zeros", "2:4"}};
  for (const nlohmann::json* t : order) {
    const auto& r = *t;
    const uint64_t b = r["bytes"].get<uint64_t>();
    const int64_t p = r["parameters"].get<int64_t>();
    const std::string via = r.contains("via") ? " (via " + r["via"].get<std::string>() + ")" : "";
    table.push_back({r["name"].get<std::string>(), r["role"].get<std::string>() + via,
                     ShapeToString(r["shape"].get<std::vector<int64_t>>()), r["dtype"].get<std::string>(),
                     HumanBytes(b), bytes ? Percent(static_cast<double>(b) / bytes) : "-",
                     p ? Percent(static_cast<double>(r["zeros"].get<int64_t>()) / p) : "-",
                     r["nm_2_4"].get<std::string>()});
  }
  PrintTable(table, {4, 5, 6});
  std::cout << "\ntotal     " << Grouped(params) << " parameters (" << Grouped(nonzero) << " nonzero, "
            << (params ? Percent(1.0 - static_cast<double>(nonzero) / params) : "0.0%") << " zeros) in "
            << j["tensors"].size() << " tensors, " << HumanBytes(bytes) << "\n";
  return kExitOk;
}

}  // namespace

void SetupInspect(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* sub = app.add_subcommand("inspect", "Show a model's graph summary and where its bytes are");
  sub->add_option("model", o->model, "ONNX model file")->required();
  sub->add_flag("--json", o->json, "Print JSON (schema in docs/inspect_json.md)");
  sub->add_flag("!--no-check", o->check, "Do not run ONNX's checker");
  sub->callback([o, exit_code] { *exit_code = RunInspect(*o); });
}

}  // namespace modelpress::cli
