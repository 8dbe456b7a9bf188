// modelpress convert MODEL -o OUT: load and save again, choosing where tensor data lives.
#include <iostream>
#include <map>

#include "cli_common.h"
#include "modelpress/onnx_io.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

const std::map<std::string, ExternalData> kExternalChoices = {
    {"auto", ExternalData::kAuto}, {"always", ExternalData::kAlways}, {"never", ExternalData::kNever}};

struct ConvertOptions {
  std::string model;           // input .onnx
  std::string output;          // output .onnx
  SaveOptions save;            // external data policy
  bool check = true;           // run ONNX's checker on the result
};

int RunConvert(const ConvertOptions& o) {
  if (auto s = CheckNotSameFile(o.model, o.output); !s.ok()) return Fail(s);
  auto model = LoadModel(o.model);
  if (!model.ok()) return Fail(model.status());
  if (o.check) {
    auto c = CheckModel(*model);
    if (!c.ok()) return Fail(c.status());
    if (!c->ran) std::cerr << "modelpress: notice: " << c->notice << "\n";
  }
  if (auto s = SaveModel(*model, o.output, o.save); !s.ok()) return Fail(s);
  std::cout << "wrote " << o.output << "\n";
  return kExitOk;
}

}  // namespace

void SetupConvert(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand("convert", "Load a model and save it again (e.g. to move weights to external data)");
  sub->add_option("model", o->model, "ONNX model file")->required();
  sub->add_option("-o,--output", o->output, "Output ONNX file")->required();
  sub->add_option("--external-data", o->save.external, "Where tensor data goes")
      ->transform(CLI::CheckedTransformer(kExternalChoices, CLI::ignore_case))
      ->default_str("auto");
  sub->add_option("--external-threshold", o->save.external_threshold,
                  "Tensors of at least this many bytes go to external data")
      ->default_val(1024);
  sub->add_flag("!--no-check", o->check, "Do not run ONNX's checker");
  sub->callback([o, exit_code] { *exit_code = RunConvert(*o); });
}

}  // namespace modelpress::cli
