// modelpress convert MODEL -o OUT: load and save again, choosing where tensor data lives.
#include <iostream>

#include "cli_common.h"
#include "modelpress/onnx_io.h"
#include "subcommands.h"

namespace modelpress::cli {
namespace {

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
  if (const int code = CheckAndSave(*model, o.output, o.save, o.check); code != kExitOk) return code;
  std::cout << "wrote " << o.output << "\n";
  return kExitOk;
}

}  // namespace

void SetupConvert(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ConvertOptions>();
  CLI::App* sub = app.add_subcommand("convert", "Load a model and save it again (e.g. to move weights to external data)");
  sub->add_option("model", o->model, "ONNX model file")->required();
  AddModelOutputOptions(sub, &o->output, &o->save);
  sub->add_flag("!--no-check", o->check, "Do not run ONNX's checker");
  sub->callback([o, exit_code] { *exit_code = RunConvert(*o); });
}

}  // namespace modelpress::cli
