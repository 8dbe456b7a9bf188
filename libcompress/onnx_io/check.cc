#include <onnx/checker.h>

#include "modelpress/onnx_io.h"

namespace modelpress {

Result<CheckOutcome> CheckModel(const Model& model) {
  const onnx::ModelProto& p = model.proto();
  CheckOutcome out;
  if (p.ir_version() > kCheckerMaxIrVersion) {
    out.notice = "ONNX checker skipped: IR version " + std::to_string(p.ir_version()) + " is newer than the " +
                 std::to_string(kCheckerMaxIrVersion) + " that libonnx 1.12 knows";
    return out;
  }
  for (const auto& op : p.opset_import()) {
    if ((op.domain().empty() || op.domain() == "ai.onnx") && op.version() > kCheckerMaxOpset) {
      out.notice = "ONNX checker skipped: opset " + std::to_string(op.version()) + " is newer than the " +
                   std::to_string(kCheckerMaxOpset) + " that libonnx 1.12 knows";
      return out;
    }
  }
  try {
    if (model.uses_external_data()) {
      // The checker looks for external files relative to the working folder;
      // point it at the files this model really resolved to.
      onnx::ModelProto copy = p;
      for (auto& t : *copy.mutable_graph()->mutable_initializer()) {
        if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
        for (auto& kv : *t.mutable_external_data()) {
          if (kv.key() == "location") kv.set_value((model.base_dir() / kv.value()).string());
        }
      }
      onnx::checker::check_model(copy);
    } else {
      onnx::checker::check_model(p);
    }
  } catch (const std::exception& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    return Corrupt(model.source() + ": ONNX checker: " + what);
  }
  out.ran = true;
  return out;
}

}  // namespace modelpress
