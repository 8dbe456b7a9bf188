// modelpress unpack ARTIFACT -o OUT.onnx [--tensor NAME | --graph]: restore
// the ONNX model, or write one tensor as .npy, or the graph section.
#include <algorithm>
#include <iostream>

#include "cli_base.h"
#include "modelpress/pack_reader.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

struct UnpackCliOptions {
  std::string artifact;          // input .mpk
  std::string output;            // output .onnx, or .npy with --tensor
  std::string tensor;            // when set, write only this tensor as .npy
  bool graph = false;            // write only the graph section
  pack::UnpackOptions unpack;    // threads
};

int RunUnpack(const UnpackCliOptions& o) {
  if (auto s = CheckNotSameFile(o.artifact, o.output); !s.ok()) return Fail(s);
  if (o.graph) {
    auto reader = pack::Reader::Open(o.artifact);
    if (!reader.ok()) return Fail(reader.status());
    if (auto s = pack::WriteGraphSection(*reader, o.output); !s.ok()) return Fail(s);
    std::cout << "wrote " << o.output << "\n";
    return kExitOk;
  }
  if (!o.tensor.empty()) {
    auto reader = pack::Reader::Open(o.artifact);
    if (!reader.ok()) return Fail(reader.status());
    Status written;
    if (const pack::TensorInfo* t = reader->FindTensor(o.tensor)) {
      written = pack::WriteTensorNpy(*reader, *t, o.output);
    } else {
      // Small tensors live in the graph section with their data.
      auto inline_tensors = pack::ReadGraphTensors(*reader);
      if (!inline_tensors.ok()) return Fail(inline_tensors.status());
      auto it = std::find_if(inline_tensors->begin(), inline_tensors->end(),
                             [&](const pack::GraphTensor& g) { return g.info.name == o.tensor; });
      if (it == inline_tensors->end()) return Fail(NotFound(o.artifact + ": no tensor '" + o.tensor + "'"));
      written = pack::WriteTensorNpy(it->info, it->data, o.output, reader->name());
    }
    if (!written.ok()) return Fail(written);
    std::cout << "wrote " << o.output << "\n";
    return kExitOk;
  }
  auto r = pack::UnpackModel(o.artifact, o.output, o.unpack);
  if (!r.ok()) return Fail(r.status());
  for (const auto& p : r->written) std::cout << "wrote " << p.string() << "\n";
  return kExitOk;
}

}  // namespace

void SetupUnpack(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<UnpackCliOptions>();
  CLI::App* sub = app.add_subcommand("unpack", "Restore the exact ONNX model from a .mpk artifact (or one tensor as .npy)");
  sub->add_option("artifact", o->artifact, ".mpk artifact")->required();
  sub->add_option("-o,--output", o->output, "Output .onnx file (.npy with --tensor)")->required();
  CLI::Option* tensor = sub->add_option("--tensor", o->tensor, "Write only this tensor, as a NumPy .npy file");
  sub->add_flag("--graph", o->graph,
                "Write only the graph section: the serialized ModelProto without the data of the tensors the artifact "
                "holds as payloads")
      ->excludes(tensor);
  sub->add_option("--threads", o->unpack.threads, "Worker threads (0: one per core)")->default_val(0)->check(CLI::NonNegativeNumber);
  sub->add_option_function<uint64_t>(
         "--buffer-mib", [o](uint64_t mib) { o->unpack.max_buffered_bytes = mib << 20; },
         "Most decoded tensor data held at once, in MiB; a larger tensor is held alone (default 64)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  sub->callback([o, exit_code] { *exit_code = RunUnpack(*o); });
}

}  // namespace modelpress::cli
