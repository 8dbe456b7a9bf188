// Recipe parsing. yaml-cpp throws; every call into it stays inside this file
// and its exceptions become InvalidArgument with the file and line.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "modelpress/pipeline.h"

namespace modelpress::pipeline {

std::string StageName(const Stage& stage) {
  struct Visitor {
    std::string operator()(const PruneStage&) const { return "prune"; }
    std::string operator()(const PruneChannelsStage&) const { return "prune_channels"; }
    std::string operator()(const QuantizeStage&) const { return "quantize"; }
    std::string operator()(const PackStage&) const { return "pack"; }
  };
  return std::visit(Visitor{}, stage);
}

namespace {

// Thrown inside the parser only; caught in ParseRecipe.
struct RecipeError {
  Status status;
};

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void Fail(const YAML::Node& at, const std::string& what) const {
    const YAML::Mark m = at.Mark();
    std::string where = source_;
    // Nodes made up by yaml-cpp (a missing key) carry no position.
    if (m.line >= 0) where += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    throw RecipeError{InvalidArgument(where + ": " + what)};
  }

  // Refuses keys of `map` not in `known` (in the order written), naming the line of the key.
  void OnlyKeys(const YAML::Node& map, const std::string& what, const std::vector<std::string>& known) const {
    for (const auto& kv : map) {
      const std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        Fail(kv.first, "unknown key '" + key + "' in " + what + " (known: " + list + ")");
      }
    }
  }

  YAML::Node Map(const YAML::Node& n, const std::string& what) const {
    if (n.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!n.IsMap()) Fail(n, what + " must be a mapping of keys to values");
    return n;
  }

  std::string String(const YAML::Node& n, const std::string& key) const {
    if (!n.IsScalar()) Fail(n, "'" + key + "' must be a string");
    return n.Scalar();
  }

  double Number(const YAML::Node& n, const std::string& key, double lo, double hi, bool hi_open) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v) || !std::isfinite(v)) {
      Fail(n, "'" + key + "' must be a number, got '" + Text(n) + "'");
    }
    if (v < lo || v > hi || (hi_open && v == hi)) {
      std::ostringstream range;
      range << "[" << lo << ", " << hi << (hi_open ? ")" : "]");
      Fail(n, "'" + key + "' must be in " + range.str() + ", got " + n.Scalar());
    }
    return v;
  }

  int64_t Integer(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) const {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v)) {
      Fail(n, "'" + key + "' must be an integer, got '" + Text(n) + "'");
    }
    if (v < lo || v > hi) {
      Fail(n, "'" + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + n.Scalar());
    }
    return v;
  }

  bool Bool(const YAML::Node& n, const std::string& key) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      Fail(n, "'" + key + "' must be true or false, got '" + Text(n) + "'");
    }
    return v;
  }

  template <class T>
  T Choice(const YAML::Node& n, const std::string& key, const std::map<std::string, T>& choices) const {
    const std::string s = String(n, key);
    auto it = choices.find(s);
    if (it == choices.end()) {
      std::string list;
      for (const auto& [k, v] : choices) list += (list.empty() ? "" : ", ") + k;
      Fail(n, "'" + key + "' must be one of " + list + ", got '" + s + "'");
    }
    return it->second;
  }

  std::string Regex(const YAML::Node& n, const std::string& key) const {
    const std::string s = String(n, key);
    try {
      std::regex re(s, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      Fail(n, "'" + key + "' is not a valid regular expression: '" + s + "'");
    }
    return s;
  }

  std::vector<std::string> StringList(const YAML::Node& n, const std::string& key) const {
    std::vector<std::string> out;
    if (n.IsScalar()) {
      // "a,b" as on the command line.
      std::stringstream ss(n.Scalar());
      for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) out.push_back(item);
      }
    } else if (n.IsSequence()) {
      for (const auto& item : n) out.push_back(String(item, key));
    } else {
      Fail(n, "'" + key + "' must be a list of strings");
    }
    if (out.empty()) Fail(n, "'" + key + "' must not be empty");
    return out;
  }

  static std::string Text(const YAML::Node& n) {
    if (n.IsScalar()) return n.Scalar();
    if (n.IsSequence()) return "a list";
    if (n.IsMap()) return "a mapping";
    return "nothing";
  }

  void Filter(const std::string& key, const YAML::Node& v, TensorFilter* f) const {
    static const std::map<std::string, WeightRole> kRoles = {
        {"conv", WeightRole::kConvWeight},     {"convtranspose", WeightRole::kConvTransposeWeight},
        {"gemm", WeightRole::kGemmWeight},     {"matmul", WeightRole::kMatMulWeight},
        {"embedding", WeightRole::kEmbedding}, {"bias", WeightRole::kBias},
        {"norm", WeightRole::kNormParam}};
    if (key == "include") f->include = Regex(v, key);
    if (key == "exclude") f->exclude = Regex(v, key);
    if (key == "min_params") f->min_params = Integer(v, key, 0, INT64_MAX);
    if (key == "keep_first_last") f->keep_first_last = Bool(v, key);
    if (key == "roles") {
      f->roles.clear();
      for (const std::string& r : StringList(v, key)) {
        auto it = kRoles.find(r);
        if (it == kRoles.end()) {
          Fail(v, "'roles' lists '" + r + "'; roles are conv, convtranspose, gemm, matmul, embedding, bias, norm");
        }
        f->roles.push_back(it->second);
      }
    }
  }

  // `reconstruct: true` or a map of its settings.
  ReconstructSettings Reconstruct(const YAML::Node& v, bool with_saliency) const {
    ReconstructSettings r;
    if (v.IsScalar()) {
      r.enabled = Bool(v, "reconstruct");
      return r;
    }
    const YAML::Node m = Map(v, "'reconstruct'");
    std::vector<std::string> keys = {"samples", "damp", "refit", "batch"};
    if (with_saliency) keys.push_back("saliency");
    OnlyKeys(m, "'reconstruct'", keys);
    r.enabled = true;
    for (const auto& kv : m) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& x = kv.second;
      if (key == "samples") r.samples = Integer(x, key, 1, INT64_MAX);
      if (key == "damp") r.options.refit.damp = Number(x, key, 0, 1e6, false);
      if (key == "batch") r.options.batch = Integer(x, key, 1, 1 << 20);
      if (key == "refit") {
        r.options.refit.method = Choice(x, key, std::map<std::string, RefitMethod>{
                                                    {"auto", RefitMethod::kAuto}, {"exact", RefitMethod::kExact},
                                                    {"obs", RefitMethod::kObs}});
      }
      if (key == "saliency") {
        r.options.saliency = Choice(x, key, std::map<std::string, MaskSaliency>{{"magnitude", MaskSaliency::kMagnitude},
                                                                                {"obs", MaskSaliency::kObs}});
      }
    }
    return r;
  }

  PruneStage Prune(const YAML::Node& body) const {
    const YAML::Node m = Map(body, "the prune stage");
    PruneStage st;
    if (m["method"]) {
      st.method = Choice(m["method"], "method",
                         std::map<std::string, PruneStage::Method>{{"unstructured", PruneStage::Method::kUnstructured},
                                                                   {"nm", PruneStage::Method::kNM}});
    }
    const bool nm = st.method == PruneStage::Method::kNM;
    if (nm) {
      OnlyKeys(m, "a prune stage of method nm",
               {"method", "n", "m", "include", "exclude", "min_params", "keep_first_last", "roles", "reconstruct"});
    } else {
      OnlyKeys(m, "a prune stage of method unstructured",
               {"method", "sparsity", "scope", "layers", "threads", "include", "exclude", "min_params", "keep_first_last",
                "roles", "reconstruct"});
      if (!m["sparsity"]) Fail(body.IsNull() ? body : m, "the unstructured prune stage needs 'sparsity'");
    }
    TensorFilter* filter = nm ? &st.nm.filter : &st.unstructured.filter;
    for (const auto& kv : m) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      Filter(key, v, filter);
      if (key == "sparsity") st.unstructured.sparsity = Number(v, key, 0, 1, true);
      if (key == "scope") {
        st.unstructured.scope = Choice(v, key, std::map<std::string, PruneScope>{{"layer", PruneScope::kLayer},
                                                                                 {"global", PruneScope::kGlobal}});
      }
      if (key == "threads") st.unstructured.threads = static_cast<int>(Integer(v, key, 0, 4096));
      if (key == "layers") {
        if (!v.IsMap()) Fail(v, "'layers' must map tensor names to sparsities");
        for (const auto& layer : v) {
          st.unstructured.layer_sparsity.emplace_back(layer.first.Scalar(),
                                                      Number(layer.second, layer.first.Scalar(), 0, 1, true));
        }
      }
      if (key == "reconstruct") st.reconstruct = Reconstruct(v, true);
      if (key == "n") st.nm.n = static_cast<int>(Integer(v, key, 1, 64));
      if (key == "m") st.nm.m = static_cast<int>(Integer(v, key, 1, 64));
    }
    if (nm && st.nm.n >= st.nm.m) Fail(m["n"] ? m["n"] : m, "'n' must be smaller than 'm'");
    return st;
  }

  PruneChannelsStage PruneChannels(const YAML::Node& body) const {
    const YAML::Node m = Map(body, "the prune_channels stage");
    OnlyKeys(m, "the prune_channels stage", {"ratio", "criterion", "scope", "round_to", "exclude", "reconstruct"});
    if (!m["ratio"]) Fail(body.IsNull() ? body : m, "the prune_channels stage needs 'ratio'");
    PruneChannelsStage st;
    for (const auto& kv : m) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "ratio") st.options.ratio = Number(v, key, 0, 1, true);
      if (key == "criterion") {
        st.options.criterion = Choice(v, key, std::map<std::string, ChannelCriterion>{{"l1", ChannelCriterion::kL1},
                                                                                      {"l2", ChannelCriterion::kL2}});
      }
      if (key == "scope") {
        st.options.scope = Choice(v, key, std::map<std::string, PruneScope>{{"layer", PruneScope::kLayer},
                                                                            {"global", PruneScope::kGlobal}});
      }
      if (key == "round_to") st.options.round_to = Integer(v, key, 1, 1 << 20);
      if (key == "exclude") st.options.exclude = Regex(v, key);
      if (key == "reconstruct") st.reconstruct = Reconstruct(v, false);
    }
    return st;
  }

  QuantizeStage Quantize(const YAML::Node& body) const {
    const YAML::Node m = Map(body, "the quantize stage");
    OnlyKeys(m, "the quantize stage",
             {"mode", "per_channel", "activations", "calibrate", "percentile", "samples", "batch", "exclude", "op_types",
              "reduce_range", "quantize_bias", "threads"});
    QuantizeStage st;
    quant::QuantizeOptions& o = st.options;
    for (const auto& kv : m) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "mode") {
        o.mode = Choice(v, key, std::map<std::string, quant::QuantMode>{{"weight-only", quant::QuantMode::kWeightOnly},
                                                                        {"static", quant::QuantMode::kStatic}});
      }
      if (key == "per_channel") o.per_channel = Bool(v, key);
      if (key == "activations") {
        o.activations = Choice(v, key, std::map<std::string, quant::Scheme>{{"uint8", quant::Scheme::kUint8Asymmetric},
                                                                            {"int8", quant::Scheme::kInt8Symmetric}});
      }
      if (key == "calibrate") {
        o.calibration.method = Choice(v, key, std::map<std::string, quant::CalibrationMethod>{
                                                  {"minmax", quant::CalibrationMethod::kMinMax},
                                                  {"percentile", quant::CalibrationMethod::kPercentile},
                                                  {"entropy", quant::CalibrationMethod::kEntropy}});
      }
      if (key == "percentile") {
        o.calibration.percentile = Number(v, key, 0, 100, false);
        if (o.calibration.percentile == 0) Fail(v, "'percentile' must be above 0");
      }
      if (key == "samples") st.samples = Integer(v, key, 0, INT64_MAX);
      if (key == "batch") o.calibration.batch = Integer(v, key, 1, 1 << 20);
      if (key == "exclude") o.exclude = Regex(v, key);
      if (key == "op_types") o.op_types = StringList(v, key);
      if (key == "reduce_range") o.reduce_range = Bool(v, key);
      if (key == "quantize_bias") o.quantize_bias = Bool(v, key);
      if (key == "threads") o.threads = static_cast<int>(Integer(v, key, 0, 4096));
    }
    const bool is_static = o.mode == quant::QuantMode::kStatic;
    for (const char* k : {"activations", "calibrate", "percentile", "samples", "batch", "quantize_bias"}) {
      if (!is_static && m[k]) Fail(m[k], std::string("'") + k + "' applies to mode static only");
    }
    return st;
  }

  PackStage Pack(const YAML::Node& body) const {
    const YAML::Node m = Map(body, "the pack stage");
    OnlyKeys(m, "the pack stage", {"level", "threads", "verify", "min_tensor_bytes", "inline_up_to"});
    PackStage st;
    for (const auto& kv : m) {
      const std::string key = kv.first.Scalar();
      const YAML::Node& v = kv.second;
      if (key == "level") st.options.level = static_cast<int>(Integer(v, key, 1, 22));
      if (key == "threads") st.options.threads = static_cast<int>(Integer(v, key, 0, 4096));
      if (key == "verify") st.options.verify = Bool(v, key);
      if (key == "min_tensor_bytes") st.options.min_tensor_bytes = Integer(v, key, 0, INT64_MAX);
      if (key == "inline_up_to") {
        st.options.inline_up_to = Integer(v, key, 0, static_cast<int64_t>(pack::PackOptions::kMaxInlineUpTo));
      }
    }
    return st;
  }

  Recipe Parse(const std::string& text, const std::filesystem::path& base_dir) const {
    Recipe r;
    r.source = source_;
    r.text = text;
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      // e.mark is the position; e.msg the reason without it.
      throw RecipeError{InvalidArgument(source_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                                        std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg)};
    }
    if (!root.IsMap()) Fail(root, "a recipe is a mapping with a 'stages' list (see docs/recipes.md)");
    OnlyKeys(root, "the recipe", {"version", "name", "description", "calibration", "stages"});
    if (root["version"] && Integer(root["version"], "version", 1, 1) != 1) Fail(root["version"], "unknown version");
    if (root["name"]) r.name = String(root["name"], "name");
    if (root["description"]) r.description = String(root["description"], "description");
    if (root["calibration"]) {
      const YAML::Node c = Map(root["calibration"], "'calibration'");
      OnlyKeys(c, "'calibration'", {"data"});
      if (c["data"]) {
        const std::filesystem::path p = String(c["data"], "data");
        r.calib_data = p.is_absolute() || base_dir.empty() ? p : base_dir / p;
      }
    }
    const YAML::Node stages = root["stages"];
    if (!stages) Fail(root, "the recipe has no 'stages' list");
    if (!stages.IsSequence() || stages.size() == 0) Fail(stages, "'stages' must be a non-empty list of stages");
    bool quantized = false;
    for (const auto& item : stages) {
      std::string key;
      YAML::Node body;
      if (item.IsScalar()) {
        key = item.Scalar();  // "- pack" with default options
      } else if (item.IsMap() && item.size() == 1) {
        key = item.begin()->first.Scalar();
        body = item.begin()->second;
      } else {
        Fail(item, "each stage is one key (prune, prune_channels, quantize or pack) with its options");
      }
      const YAML::Node at = item.IsMap() ? item.begin()->first : item;
      if (!r.stages.empty() && std::holds_alternative<PackStage>(r.stages.back())) {
        Fail(at, "'pack' must be the last stage");
      }
      if (key == "prune" || key == "prune_channels") {
        if (quantized) Fail(at, "'" + key + "' after 'quantize': prune before quantizing (the weights are int8 then)");
        if (key == "prune") r.stages.push_back(Prune(body));
        if (key == "prune_channels") r.stages.push_back(PruneChannels(body));
      } else if (key == "quantize") {
        if (quantized) Fail(at, "a model is quantized once: a second 'quantize' stage");
        quantized = true;
        r.stages.push_back(Quantize(body));
      } else if (key == "pack") {
        r.stages.push_back(Pack(body));
      } else {
        Fail(at, "unknown stage '" + key + "' (known: prune, prune_channels, quantize, pack)");
      }
    }
    return r;
  }

 private:
  std::string source_;
};

}  // namespace

Result<Recipe> ParseRecipe(const std::string& text, const std::string& source, const std::filesystem::path& base_dir) {
  try {
    return Parser(source).Parse(text, base_dir);
  } catch (const RecipeError& e) {
    return e.status;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  } catch (const std::exception& e) {
    return InvalidArgument(source + ": " + e.what());
  }
}

Result<Recipe> LoadRecipe(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound(path.string() + ": no such recipe file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path.string() + ": cannot read the recipe");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return IoError(path.string() + ": cannot read the recipe");
  return ParseRecipe(ss.str(), path.string(), path.parent_path());
}

}  // namespace modelpress::pipeline
