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
    onnx::checker::check_model(p);
  } catch (const std::exception& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    return Corrupt(model.source() + ": ONNX checker: " + what);
  }
  out.ran = true;
  return out;
}

}  // namespace modelpress
