// Builds the inspect reports; printing them is inspect.cc's job.
#include "inspect_report.h"

#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <vector>

#include "modelpress/graph.h"
#include "modelpress/onnx_io.h"
#include "modelpress/pack.h"
#include "modelpress/sparsity.h"
#include "modelpress/tensor.h"

namespace modelpress::cli {
namespace {

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

}  // namespace

bool IsArtifact(const std::string& path) {
  static const unsigned char kMagic[8] = {0x89, 'M', 'P', 'K', 0x0D, 0x0A, 0x1A, 0x0A};
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, 8) && std::memcmp(head, kMagic, 8) == 0;
}

Result<nlohmann::json> InspectModelJson(const std::string& path, bool check) {
  MP_ASSIGN_OR_RETURN(const Model model, LoadModel(path));
  const onnx::ModelProto& p = model.proto();
  const std::vector<WeightInfo> infos = AnalyzeWeights(model);

  nlohmann::json tensors = nlohmann::json::array();
  int64_t params = 0, nonzero = 0;
  uint64_t bytes = 0;
  for (size_t i = 0; i < model.tensors().size(); ++i) {
    const TensorEntry& e = model.tensors()[i];
    const WeightInfo& w = infos[i];
    const std::vector<int64_t> shape(e.proto->dims().begin(), e.proto->dims().end());
    const int64_t count = ElementCount(shape).value_or(0);
    uint64_t tensor_bytes = 0;
    int64_t zeros = 0;
    std::string storage = "unviewable", nm = "n/a";
    auto view = model.View(e);
    if (view.ok()) {
      tensor_bytes = view->packed_bytes();
      storage = StorageName(view->storage());
      zeros = CountZeros(*view);
      if (IsLinearWeight(w.role)) {
        const NMCheck c = CheckNM(*view, w.reduction_axis, 2, 4);
        if (c.applicable) nm = c.compliant() ? "yes" : "no";
      }
    }
    nlohmann::json t{{"name", e.name},
                     {"source", e.source == TensorSource::kInitializer ? "initializer" : "constant"},
                     {"role", std::string(WeightRoleName(w.role))},
                     {"shape", shape},
                     {"dtype", DTypeName(e.proto->data_type())},
                     {"storage", storage},
                     {"parameters", count},
                     {"bytes", tensor_bytes},
                     {"zeros", zeros},
                     {"zero_fraction", count ? static_cast<double>(zeros) / count : 0.0},
                     {"nm_2_4", nm}};
    if (w.output_axis >= 0) {
      t["output_axis"] = w.output_axis;
      t["reduction_axis"] = w.reduction_axis;
    }
    if (w.group != 1) t["group"] = w.group;
    if (!w.via.empty()) t["via"] = w.via;
    tensors.push_back(std::move(t));
    params += count;
    nonzero += count - zeros;
    bytes += tensor_bytes;
  }

  std::map<std::string, int> ops;
  for (const auto& n : p.graph().node()) ops[(n.domain().empty() ? "" : n.domain() + ".") + n.op_type()]++;

  nlohmann::json checker;
  if (check) {
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

  nlohmann::json j;
  j["file"] = path;
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
  j["tensors"] = std::move(tensors);
  j["totals"] = {{"tensors", model.tensors().size()}, {"parameters", params}, {"nonzero_parameters", nonzero},
                 {"bytes", bytes}};
  return j;
}

Result<nlohmann::json> InspectArtifactJson(const std::string& path) {
  MP_ASSIGN_OR_RETURN(auto reader, pack::Reader::Open(path));
  const pack::ArtifactInfo& info = reader.info();
  nlohmann::json j;
  j["file"] = path;
  j["format"] = "mpk";
  j["version"] = std::to_string(info.version_major) + "." + std::to_string(info.version_minor);
  j["bytes"] = info.file_size;
  j["onnx_bytes"] = info.onnx_size;
  j["byte_exact_onnx"] = info.exact_onnx;
  j["graph"] = {{"stored_bytes", info.skeleton_stored}, {"bytes", info.skeleton_bytes},
                {"dictionary", info.graph_dictionary}};
  j["index_bytes"] = info.index_bytes;
  j["shared_tables"] = {{"count", info.shared_tables}, {"bytes", info.shared_table_bytes}};
  j["external_files"] = nlohmann::json::array();
  for (const auto& f : info.files) {
    j["external_files"].push_back({{"name", f.name}, {"bytes", f.size}, {"residue_stored_bytes", f.residue_stored}});
  }
  j["tensors"] = nlohmann::json::array();
  uint64_t bytes = 0, stored = 0, elements = 0;
  double bound = 0;
  for (const auto& t : reader.tensors()) {
    std::vector<std::byte> buf(t.bytes);
    std::string detail;
    MP_RETURN_IF_ERROR(reader.ReadTensor(t, buf, &detail));
    const double b = pack::EntropyBoundBits(t.dtype, buf);
    const double bpe =
        t.element_count ? 8.0 * static_cast<double>(t.stored_bytes) / static_cast<double>(t.element_count) : 0;
    bytes += t.bytes;
    stored += t.stored_bytes;
    elements += t.element_count;
    bound += b;
    j["tensors"].push_back({{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes},
                            {"stored_bytes", t.stored_bytes}, {"bits_per_element", bpe}, {"bound_bits", b},
                            {"encoder", std::string(pack::EncoderName(t.encoder))}, {"streams", detail}});
  }
  j["totals"] = {{"tensors", reader.tensors().size()}, {"bytes", bytes}, {"stored_bytes", stored},
                 {"bound_bytes", bound / 8}, {"elements", elements}};
  // Tensors the graph section holds with their data; the graph's stored
  // bytes include them.
  MP_ASSIGN_OR_RETURN(const std::vector<pack::GraphTensor> inline_tensors, pack::ReadGraphTensors(reader));
  j["graph_tensors"] = nlohmann::json::array();
  uint64_t inline_bytes = 0;
  for (const pack::GraphTensor& g : inline_tensors) {
    inline_bytes += g.info.bytes;
    j["graph_tensors"].push_back({{"name", g.info.name}, {"dtype", DTypeName(g.info.dtype)}, {"shape", g.info.shape},
                                  {"bytes", g.info.bytes}, {"storage", g.info.storage == 0 ? "raw" : "typed"}});
  }
  j["graph"]["tensors"] = inline_tensors.size();
  j["graph"]["tensor_bytes"] = inline_bytes;
  return j;
}

Result<std::string> InspectJson(const std::string& path, bool check) {
  if (IsArtifact(path)) {
    MP_ASSIGN_OR_RETURN(const nlohmann::json j, InspectArtifactJson(path));
    return j.dump(2);
  }
  MP_ASSIGN_OR_RETURN(const nlohmann::json j, InspectModelJson(path, check));
  return j.dump(2);
}

}  // namespace modelpress::cli
