// modelpress inspect MODEL [--json]: what is in a model and where its bytes are.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "modelpress/graph.h"
#include "modelpress/onnx_io.h"
#include "modelpress/sparsity.h"
#include "subcommands.h"

namespace modelpress::cli {

// A .mpk artifact (pack.cc); chosen by its magic number.
int RunInspectArtifact(const std::string& path, bool json);

namespace {

bool IsArtifact(const std::string& path) {
  static const unsigned char kMagic[8] = {0x89, 'M', 'P', 'K', 0x0D, 0x0A, 0x1A, 0x0A};
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, 8) && std::memcmp(head, kMagic, 8) == 0;
}

struct InspectOptions {
  std::string model;  // path of the .onnx file
  bool json = false;  // print JSON (docs/inspect_json.md) instead of tables
  bool check = true;  // run ONNX's checker
};

struct TensorRow {
  std::string name, source, role, dtype, storage, nm;
  std::vector<int64_t> shape;
  int64_t params = 0, zeros = 0;
  uint64_t bytes = 0;
  int output_axis = -1, reduction_axis = -1;
  int64_t group = 1;
  std::string via;
};

nlohmann::json ValueInfoJson(const onnx::ValueInfoProto& v) {
  nlohmann::json j{{"name", v.name()}};
  if (v.type().has_tensor_type()) {
    const auto& tt = v.type().tensor_type();
    j["dtype"] = DTypeName(tt.elem_type());
    if (tt.has_shape()) {
      nlohmann::json shape = nlohmann::json::array();
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value()) {
          shape.push_back(d.dim_value());
        } else {
          shape.push_back(d.dim_param().empty() ? "?" : d.dim_param());
        }
      }
      j["shape"] = shape;
    }
  }
  return j;
}

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
  auto loaded = LoadModel(o.model);
  if (!loaded.ok()) return Fail(loaded.status());
  const Model& model = *loaded;
  const onnx::ModelProto& p = model.proto();
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);

  std::vector<TensorRow> rows;
  for (size_t i = 0; i < model.tensors().size(); ++i) {
    const TensorEntry& e = model.tensors()[i];
    const WeightInfo& w = infos[i];
    TensorRow r;
    r.name = e.name;
    r.source = e.source == TensorSource::kInitializer ? "initializer" : "constant";
    r.role = WeightRoleName(w.role);
    r.dtype = DTypeName(e.proto->data_type());
    r.shape.assign(e.proto->dims().begin(), e.proto->dims().end());
    r.params = ElementCount(r.shape).value_or(0);
    r.output_axis = w.output_axis;
    r.reduction_axis = w.reduction_axis;
    r.group = w.group;
    r.via = w.via;
    r.nm = "n/a";
    auto view = model.View(e);
    if (view.ok()) {
      r.bytes = view->packed_bytes();
      r.storage = StorageName(view->storage());
      r.zeros = CountZeros(*view);
      if (IsLinearWeight(w.role)) {
        const NMCheck nm = CheckNM(*view, w.reduction_axis, 2, 4);
        if (nm.applicable) r.nm = nm.compliant() ? "yes" : "no";
      }
    } else {
      r.storage = "unviewable";
    }
    rows.push_back(std::move(r));
  }

  std::map<std::string, int> ops;
  for (const auto& n : p.graph().node()) ops[(n.domain().empty() ? "" : n.domain() + ".") + n.op_type()]++;

  nlohmann::json checker;
  if (o.check) {
    auto c = CheckModel(model);
    if (!c.ok()) {
      checker = {{"status", "failed"}, {"message", c.status().message()}};
    } else if (!c->ran) {
      checker = {{"status", "skipped"}, {"message", c->notice}};
    } else {
      checker = {{"status", "passed"}};
    }
  } else {
    checker = {{"status", "not run"}};
  }

  int64_t params = 0, nonzero = 0;
  uint64_t bytes = 0;
  for (const auto& r : rows) {
    params += r.params;
    nonzero += r.params - r.zeros;
    bytes += r.bytes;
  }

  nlohmann::json j;
  j["file"] = o.model;
  j["format"] = "onnx";
  j["ir_version"] = p.ir_version();
  j["opsets"] = nlohmann::json::array();
  for (const auto& op : p.opset_import()) j["opsets"].push_back({{"domain", op.domain()}, {"version", op.version()}});
  j["producer"] = {{"name", p.producer_name()}, {"version", p.producer_version()}};
  j["external_data"] = model.uses_external_data();
  j["checker"] = checker;
  j["nodes"] = p.graph().node_size();
  j["ops"] = ops;
  j["inputs"] = nlohmann::json::array();
  std::set<std::string> initializer_names;
  for (const auto& t : p.graph().initializer()) initializer_names.insert(t.name());
  for (const auto& v : p.graph().input()) {
    if (!initializer_names.count(v.name())) j["inputs"].push_back(ValueInfoJson(v));
  }
  j["outputs"] = nlohmann::json::array();
  for (const auto& v : p.graph().output()) j["outputs"].push_back(ValueInfoJson(v));
  j["tensors"] = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json t{{"name", r.name},       {"source", r.source}, {"role", r.role},
                     {"shape", r.shape},     {"dtype", r.dtype},   {"storage", r.storage},
                     {"parameters", r.params}, {"bytes", r.bytes}, {"zeros", r.zeros},
                     {"zero_fraction", r.params ? static_cast<double>(r.zeros) / r.params : 0.0},
                     {"nm_2_4", r.nm}};
    if (r.output_axis >= 0) {
      t["output_axis"] = r.output_axis;
      t["reduction_axis"] = r.reduction_axis;
    }
    if (r.group != 1) t["group"] = r.group;
    if (!r.via.empty()) t["via"] = r.via;
    j["tensors"].push_back(std::move(t));
  }
  j["totals"] = {{"tensors", rows.size()}, {"parameters", params}, {"nonzero_parameters", nonzero}, {"bytes", bytes}};

  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }

  std::cout << "model     " << o.model << (model.uses_external_data() ? "  (external data)" : "") << "\n";
  std::cout << "format    ONNX, IR version " << p.ir_version() << ", opset";
  for (const auto& op : p.opset_import()) std::cout << " " << (op.domain().empty() ? "ai.onnx" : op.domain()) << " " << op.version();
  std::cout << "\nproducer  " << (p.producer_name().empty() ? "-" : p.producer_name() + " " + p.producer_version()) << "\n";
  std::cout << "checker   " << checker["status"].get<std::string>();
  if (checker.contains("message")) std::cout << ": " << checker["message"].get<std::string>();
  std::cout << "\nnodes     " << p.graph().node_size() << ":";
  for (const auto& [op, n] : ops) std::cout << " " << op << "×" << n;
  for (const auto& v : j["inputs"]) std::cout << "\ninput     " << ValueInfoText(v);
  for (const auto& v : j["outputs"]) std::cout << "\noutput    " << ValueInfoText(v);
  std::cout << "\n\n";

  // Largest tensors first, so the eye lands where the bytes are.
  std::vector<const TensorRow*> order;
  for (const auto& r : rows) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->bytes > b->bytes; });
  std::vector<std::vector<std::string>> table = {{"tensor", "role", "shape", "dtype", "bytes", "share", "zeros", "2:4"}};
  for (const TensorRow* r : order) {
    table.push_back({r->name, r->role + (r->via.empty() ? "" : " (via " + r->via + ")"), ShapeToString(r->shape), r->dtype,
                     HumanBytes(r->bytes), bytes ? Percent(static_cast<double>(r->bytes) / bytes) : "-",
                     r->params ? Percent(static_cast<double>(r->zeros) / r->params) : "-", r->nm});
  }
  PrintTable(table, {4, 5, 6});
  std::cout << "\ntotal     " << Grouped(params) << " parameters (" << Grouped(nonzero) << " nonzero, "
            << (params ? Percent(1.0 - static_cast<double>(nonzero) / params) : "0.0%") << " zeros) in " << rows.size()
            << " tensors, " << HumanBytes(bytes) << "\n";
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
