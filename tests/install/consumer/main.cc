// Prints the number of linear weights of a model: proof that an installed
// modelpress can be found, compiled against and linked.
#include <modelpress/graph.h>
#include <modelpress/onnx_io.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto model = modelpress::LoadModel(argv[1]);
  if (!model.ok()) {
    std::cerr << model.status().message() << "\n";
    return 1;
  }
  int linear = 0;
  for (const auto& w : modelpress::AnalyzeWeights(*model)) linear += modelpress::IsLinearWeight(w.role);
  std::cout << "linear weights: " << linear << "\n";
  return 0;
}
