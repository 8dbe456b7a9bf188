// Train-prune-retrain with modelpress masks: what a training loop linking
// libcompress does between fine-tuning rounds. The "training" here is a
// random nudge of every weight, enough to show that pruned weights stay
// pruned while the schedule raises the sparsity round by round.
#include <modelpress/prune.h>
#include <modelpress/sparsity.h>

#include <cstdio>
#include <random>
#include <vector>

int main() {
  using namespace modelpress;
  std::mt19937 rng(0);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<float> weights(300 * 64);  // a Linear layer [out=300, in=64]
  for (float& w : weights) w = noise(rng) * 20;

  const IterativeSchedule schedule{.fraction = 0.2, .target = 0.9};
  Mask keep(weights.size(), 1);
  for (int round = 1; round <= schedule.Rounds(); ++round) {
    const double sparsity = schedule.SparsityAt(round);
    TensorView view(DType::kFloat32, {300, 64}, reinterpret_cast<const std::byte*>(weights.data()),
                    static_cast<int64_t>(weights.size()), sizeof(float), Storage::kRaw);
    Mask next(weights.size());
    if (Status s = UnstructuredMask({view, keep}, sparsity, next); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
    keep = std::move(next);
    MutableTensorView mutable_view{DType::kFloat32, {300, 64}, std::as_writable_bytes(std::span(weights))};
    if (!ApplyMask(mutable_view, keep).ok()) return 1;

    for (float& w : weights) w += noise(rng);  // a fine-tuning step moves every weight...
    if (!ApplyMask(mutable_view, keep).ok()) return 1;  // ...and the mask is applied after each step

    const int64_t zeros = CountZeros(view);
    std::printf("round %2d: target %.3f, sparsity %.3f\n", round, sparsity, static_cast<double>(zeros) / weights.size());
    if (zeros != static_cast<int64_t>(sparsity * weights.size() + 1e-6)) return 1;
  }
  return 0;
}
