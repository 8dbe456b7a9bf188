// Time of one large-layer re-fit: a [in, out] MatMul weight, `samples` input
// rows, masks at 50% (unstructured) and 2:4, OBS blocks and (optionally) the
// exact per-row solve. Inputs and weights are read from .npy files so that the
// numpy peer (refit_peer.py) works on the same data.
// usage: refit_bench X.npy W.npy [--exact]      (prints one JSON line per case)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "modelpress/npy.h"
#include "modelpress/prune.h"
#include "modelpress/reconstruct.h"

using namespace modelpress;

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: refit_bench X.npy W.npy [--exact]\n");
    return 2;
  }
  const bool exact = argc > 3 && std::strcmp(argv[3], "--exact") == 0;
  auto x = ReadNpy(argv[1]);
  auto w = ReadNpy(argv[2]);
  if (!x.ok() || !w.ok() || x->dtype != DType::kFloat32 || w->dtype != DType::kFloat32 || x->shape.size() != 2 ||
      w->shape.size() != 2 || x->shape[1] != w->shape[0]) {
    std::fprintf(stderr, "refit_bench: X [n, in] and W [in, out] float32 expected\n");
    return 2;
  }
  const int64_t n = x->shape[0], in = w->shape[0];

  auto t0 = std::chrono::steady_clock::now();
  GramAccumulator acc(in);
  if (!acc.Add({x->as<float>(), static_cast<size_t>(x->size())}, n).ok()) return 1;
  std::vector<double> h = acc.ReleaseGram();  // moved out, so H is held once
  const double gram_s = Seconds(t0);

  struct Case {
    const char* name;
    bool nm;
  };
  // Each run re-fits W in place (as the model-level pruner does with the
  // model's tensor), so every run after the first reads W again; the old
  // copy is released first, so only one is held.
  bool fresh = true;
  for (const Case& c : {Case{"50%", false}, Case{"2:4", true}}) {
    for (RefitMethod m : {RefitMethod::kObs, RefitMethod::kExact}) {
      if (m == RefitMethod::kExact && !exact) continue;
      if (!fresh) {
        w->data = std::vector<std::byte>();
        auto again = ReadNpy(argv[2]);
        if (!again.ok()) return 1;
        *w = std::move(*again);
      }
      fresh = false;
      const MutableTensorView wm{DType::kFloat32, w->shape, std::span<std::byte>(w->data)};
      std::vector<uint8_t> keep(static_cast<size_t>(w->size()));
      if (c.nm ? !NMMask({wm.view(), {}}, 0, 2, 4, keep).ok() : !UnstructuredMask({wm.view(), {}}, 0.5, keep).ok()) {
        return 1;
      }
      RefitOptions o;
      o.method = m;
      t0 = std::chrono::steady_clock::now();
      auto r = RefitWeightsInPlace(wm, 1, keep, h, 1, o);
      const double refit_s = Seconds(t0);
      if (!r.ok()) {
        std::fprintf(stderr, "refit_bench: %s\n", r.status().message().c_str());
        return 1;
      }
      std::printf("{\"case\":\"%s\",\"method\":\"%s\",\"samples\":%lld,\"in\":%lld,\"out\":%lld,\"gram_s\":%.3f,"
                  "\"refit_s\":%.3f,\"error_before\":%.5f,\"error_after\":%.5f}\n",
                  c.name, std::string(RefitMethodName(m)).c_str(), static_cast<long long>(n), static_cast<long long>(in),
                  static_cast<long long>(w->shape[1]), gram_s, refit_s, r->error_before, r->error_after);
      std::fflush(stdout);
    }
  }
  return 0;
}
