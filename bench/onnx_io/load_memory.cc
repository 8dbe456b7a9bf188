// Memory of loading a model with external data: peak RSS and anonymous
// (copied) memory after LoadModel, and after reading every weight once.
// usage: load_memory MODEL.onnx
#include <modelpress/graph.h>
#include <modelpress/onnx_io.h>
#include <modelpress/sparsity.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

// A field of /proc/self/status in MB.
double StatusMB(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string k;
  while (in >> k) {
    if (k == key + ":") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

void Print(const char* when) {
  std::printf("%-28s peak RSS %7.1f MB  anonymous %7.1f MB  file-backed %7.1f MB\n", when, StatusMB("VmHWM"),
              StatusMB("RssAnon"), StatusMB("RssFile"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: load_memory MODEL.onnx\n");
    return 2;
  }
  Print("before loading");
  auto model = modelpress::LoadModel(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().message().c_str());
    return 1;
  }
  const auto roles = modelpress::AnalyzeWeights(*model);
  uint64_t bytes = 0;
  for (const auto& e : model->tensors()) bytes += model->View(e)->packed_bytes();
  std::printf("%zu tensors, %.1f MB of weights\n", roles.size(), bytes / 1048576.0);
  Print("after load + analysis");
  int64_t zeros = 0;
  for (const auto& e : model->tensors()) zeros += modelpress::CountZeros(*model->View(e));
  Print("after reading every weight");
  return zeros < 0;
}
