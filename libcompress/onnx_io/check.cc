#include <onnx/checker.h>

#include "modelpress/onnx_io.h"

namespace modelpress {
namespace {

// Makes every external data location of the initializers absolute for the
// lifetime of the object.
class LocationsResolved {
 public:
  LocationsResolved(onnx::ModelProto& proto, const std::filesystem::path& base_dir) {
    if (base_dir.empty()) return;
    for (auto& t : *proto.mutable_graph()->mutable_initializer()) {
      if (t.data_location() != onnx::TensorProto::EXTERNAL) continue;
      for (auto& kv : *t.mutable_external_data()) {
        if (kv.key() != "location") continue;
        changed_.emplace_back(kv.mutable_value(), kv.value());
        kv.set_value((base_dir / kv.value()).string());
      }
    }
  }
  ~LocationsResolved() {
    for (auto& [value, original] : changed_) value->swap(original);
  }
  LocationsResolved(const LocationsResolved&) = delete;
  LocationsResolved& operator=(const LocationsResolved&) = delete;

 private:
  std::vector<std::pair<std::string*, std::string>> changed_;
};

}  // namespace

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
    // The checker looks for external files relative to the working folder:
    // point it at the files this model really resolved to. The locations are
    // rewritten in place and restored afterwards (like SaveModel, the model is
    // logically unchanged), so no copy of the tensors' bytes is ever made.
    LocationsResolved resolved(const_cast<onnx::ModelProto&>(p), model.uses_external_data() ? model.base_dir() : std::filesystem::path());
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
