// modelpress pack MODEL -o OUT.mpk: the distribution artifact; and the
// artifact half of `modelpress inspect` (dispatched by magic number).
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "inspect_report.h"
#include "modelpress/pack.h"
#include "modelpress/tensor.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

struct PackCliOptions {
  std::string model;             // input .onnx
  std::string output;            // output .mpk
  pack::PackOptions pack;        // zstd level, threads
};

std::string Ratio(uint64_t a, uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f×", b ? static_cast<double>(a) / static_cast<double>(b) : 0.0);
  return buf;
}

int RunPack(const PackCliOptions& o) {
  if (auto s = CheckNotSameFile(o.model, o.output); !s.ok()) return Fail(s);
  auto r = pack::PackModel(o.model, o.output, o.pack);
  if (!r.ok()) return Fail(r.status());
  uint64_t tensor_bytes = 0, stored = 0;
  for (const auto& t : r->tensors) {
    tensor_bytes += t.bytes;
    stored += t.stored_bytes;
  }
  std::cout << "wrote " << o.output << ": " << HumanBytes(r->input_bytes) << " -> " << HumanBytes(r->artifact_bytes) << " ("
            << Ratio(r->input_bytes, r->artifact_bytes) << " smaller); " << r->tensors.size() << " tensors "
            << HumanBytes(tensor_bytes) << " -> " << HumanBytes(stored) << ", graph " << HumanBytes(r->graph_stored_bytes)
            << (r->graph_tensors ? " with " + std::to_string(r->graph_tensors) + " small tensors inside" : std::string())
            << (r->shared_tables ? ", " + std::to_string(r->shared_tables) + " shared code tables " +
                                       HumanBytes(r->shared_table_bytes)
                                 : std::string())
            << (r->exact_onnx ? "; unpack restores the .onnx byte for byte" : "; unpack restores every tensor and the graph exactly")
            << "\n";
  for (const auto& why : r->inline_tensors) std::cerr << "modelpress: notice: kept in the graph section: " << why << "\n";
  return kExitOk;
}

std::string Fixed(double v, int digits = 2) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

int RunInspectArtifact(const std::string& path, bool json) {
  auto report = InspectArtifactJson(path);
  if (!report.ok()) return Fail(report.status());
  const nlohmann::json& j = *report;
  std::vector<std::vector<std::string>> table = {
      {"tensor", "dtype", "shape", "bytes", "stored", "bits/elem", "bound", "vs bound", "encoder"}};
  for (const auto& t : j["tensors"]) {
    const std::vector<int64_t> shape = t["shape"].get<std::vector<int64_t>>();
    const int64_t count = ElementCount(shape).value_or(0);
    const uint64_t stored_bytes = t["stored_bytes"].get<uint64_t>();
    const double b = t["bound_bits"].get<double>();
    const double bound_bpe = count ? b / static_cast<double>(count) : 0;
    const double vs = b > 0 ? 8.0 * static_cast<double>(stored_bytes) / b - 1.0 : 0;
    table.push_back({t["name"].get<std::string>(), t["dtype"].get<std::string>(), ShapeToString(shape),
                     HumanBytes(t["bytes"].get<uint64_t>()), HumanBytes(stored_bytes),
                     Fixed(t["bits_per_element"].get<double>()), Fixed(bound_bpe),
                     b > 0 ? (vs >= 0 ? "+" : "") + Fixed(100 * vs, 1) + "%" : "-",
                     t["encoder"].get<std::string>() + " " + t["streams"].get<std::string>()});
  }
  const uint64_t bytes = j["totals"]["bytes"].get<uint64_t>();
  const uint64_t stored = j["totals"]["stored_bytes"].get<uint64_t>();
  const uint64_t elements = j["totals"]["elements"].get<uint64_t>();
  const double bound = 8 * j["totals"]["bound_bytes"].get<double>();
  if (json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "artifact  " << path << "  (modelpress artifact, format " << j["version"].get<std::string>() << ")\n";
  const bool exact = j["byte_exact_onnx"].get<bool>();
  std::cout << "size      " << HumanBytes(j["bytes"].get<uint64_t>()) << " from a "
            << HumanBytes(j["onnx_bytes"].get<uint64_t>()) << " .onnx" << (j["external_files"].empty() ? "" : " + external data") << "; unpack gives "
            << (exact ? "the same bytes (checked)" : "every tensor and the graph exactly") << "\n";
  std::cout << "graph     " << HumanBytes(j["graph"]["stored_bytes"].get<uint64_t>()) << " stored ("
            << HumanBytes(j["graph"]["bytes"].get<uint64_t>()) << " serialized, zstd"
            << (j["graph"]["dictionary"].get<bool>() ? " with the built-in graph dictionary" : "") << ")";
  if (const uint64_t n = j["graph"]["tensors"].get<uint64_t>(); n > 0) {
    std::cout << ", holding " << n << " tensor" << (n == 1 ? "" : "s") << " ("
              << HumanBytes(j["graph"]["tensor_bytes"].get<uint64_t>()) << ") with their data";
  }
  std::cout << "\n";
  if (const uint64_t n = j["shared_tables"]["count"].get<uint64_t>(); n > 0) {
    std::cout << "tables    " << n << " shared code table" << (n == 1 ? "" : "s") << ", "
              << HumanBytes(j["shared_tables"]["bytes"].get<uint64_t>())
              << " in the index (streams marked 'shared' use them)\n";
  }
  for (const auto& f : j["external_files"]) {
    std::cout << "external  " << f["name"].get<std::string>() << ": " << HumanBytes(f["bytes"].get<uint64_t>()) << ", "
              << HumanBytes(f["residue_stored_bytes"].get<uint64_t>()) << " stored outside tensors\n";
  }
  std::cout << "\n";
  std::vector<size_t> width(table[0].size(), 0);
  auto display_width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char c : s) w += (c & 0xc0) != 0x80;
    return w;
  };
  for (const auto& row : table) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  }
  for (const auto& row : table) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - display_width(row[c]), ' ');
      line += (c >= 3 && c <= 7) ? pad + row[c] : row[c] + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
  std::cout << "\ntotal     " << j["tensors"].size() << " tensors, " << HumanBytes(bytes) << " -> " << HumanBytes(stored)
            << " (" << Fixed(elements ? 8.0 * static_cast<double>(stored) / static_cast<double>(elements) : 0)
            << " bits/elem); order-0 bound " << HumanBytes(static_cast<uint64_t>(bound / 8)) << " ("
            << (bound > 0 ? Fixed(100 * (8.0 * static_cast<double>(stored) / bound - 1), 1) + "% above" : "-") << ")\n";
  return kExitOk;
}

void SetupPack(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PackCliOptions>();
  CLI::App* sub = app.add_subcommand("pack", "Pack a model into a compressed .mpk distribution artifact");
  sub->add_option("model", o->model, "ONNX model file")->required();
  sub->add_option("-o,--output", o->output, "Output .mpk file")->required();
  sub->add_option("--level", o->pack.level, "zstd level (1-22) of the graph and of streams where zstd wins")
      ->default_val(19)
      ->check(CLI::Range(1, 22));
  sub->add_option("--threads", o->pack.threads, "Worker threads (0: one per core)")->default_val(0)->check(CLI::NonNegativeNumber);
  sub->add_option("--min-tensor-bytes", o->pack.min_tensor_bytes,
                  "Tensors smaller than this stay inside the graph section instead of having a payload of their own")
      ->default_val(o->pack.min_tensor_bytes);
  sub->add_option("--inline-up-to", o->pack.inline_up_to,
                  "Tensors of at most this many bytes also stay inside the graph section when the artifact is smaller so "
                  "(0: never; at most 65536)")
      ->default_val(o->pack.inline_up_to)
      ->check(CLI::Range(uint64_t{0}, pack::PackOptions::kMaxInlineUpTo));
  sub->callback([o, exit_code] { *exit_code = RunPack(*o); });
}

}  // namespace modelpress::cli
