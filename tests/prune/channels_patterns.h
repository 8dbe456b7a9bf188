// Small graphs, one per channel-coupling pattern, shared by the structured
// pruning tests (analysis, executor equivalence, ONNX Runtime oracle), and
// the helpers that silence the channels those tests remove.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <set>
#include <ostream>
#include <string>
#include <vector>

#include "modelpress/channel_groups.h"
#include "modelpress/onnx_io.h"
#include "modelpress/sparsity.h"
#include "support/model_builder.h"

namespace modelpress::channels_test {

using testing::ModelBuilder;

struct Pattern {
  const char* name;
  std::vector<int64_t> input;  // shape of the one input "x" (batch 2)
  std::function<ModelBuilder()> build;
};

// Names the pattern in test output instead of dumping its bytes.
inline void PrintTo(const Pattern& p, std::ostream* os) { *os << p.name; }

inline void Conv(ModelBuilder& b, const std::string& in, const std::string& out, const std::string& w, int64_t k,
                 int64_t c, int64_t kernel, int64_t group = 1) {
  b.Weight(w, {k, c / group, kernel, kernel}).Weight(w + "_b", {k});
  b.Node("Conv", {in, w, w + "_b"}, {out});
  const int64_t pad = kernel / 2;
  b.Attr("pads", std::vector<int64_t>{pad, pad, pad, pad});
  if (group != 1) b.Attr("group", group);
}

inline void BatchNorm(ModelBuilder& b, const std::string& in, const std::string& out, const std::string& p, int64_t c) {
  std::vector<float> var(static_cast<size_t>(c));
  for (size_t i = 0; i < var.size(); ++i) var[i] = 0.5f + 0.1f * static_cast<float>(i % 7);
  b.Weight(p + "_scale", {c}).Weight(p + "_bias", {c}).Weight(p + "_mean", {c}).Weight(p + "_var", {c}, var);
  b.Node("BatchNormalization", {in, p + "_scale", p + "_bias", p + "_mean", p + "_var"}, {out});
}

inline const std::vector<Pattern>& Patterns() {
  static const std::vector<Pattern> patterns = {
      {"chain_with_channel_scale", {2, 3, 6, 6}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 8, 3, 3);
         b.Node("Relu", {"a"}, {"r"}).Weight("scale", {8, 1, 1}).Node("Mul", {"r", "scale"}, {"s"});
         b.Weight("shift", {1, 8, 1, 1}).Node("Add", {"s", "shift"}, {"t"});
         Conv(b, "t", "y", "wc", 5, 8, 3);
         b.Output("y");
         return b;
       }},
      {"residual_add", {2, 3, 6, 6}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 8, 3, 3);
         b.Node("Relu", {"a"}, {"r"});
         Conv(b, "r", "c1", "wb", 8, 8, 3);
         b.Node("Relu", {"c1"}, {"r1"});
         Conv(b, "r1", "c2", "wb2", 8, 8, 1);
         b.Node("Add", {"r", "c2"}, {"s"}).Node("Relu", {"s"}, {"t"});
         Conv(b, "t", "y", "wc", 4, 8, 3);
         b.Output("y");
         return b;
       }},
      {"concat", {2, 3, 6, 6}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 4, 3, 3);
         b.Node("Relu", {"a"}, {"ra"});
         Conv(b, "x", "c", "wb", 6, 3, 1);
         b.Node("Relu", {"c"}, {"rb"});
         b.Node("Concat", {"ra", "x", "rb"}, {"cat"}).Attr("axis", int64_t{1});
         BatchNorm(b, "cat", "n", "bn", 13);
         Conv(b, "n", "y", "wc", 5, 13, 3);
         b.Output("y");
         return b;
       }},
      {"depthwise_batchnorm", {2, 3, 6, 6}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 8, 3, 1);
         BatchNorm(b, "a", "an", "bn1", 8);
         b.Node("Relu", {"an"}, {"r"});
         Conv(b, "r", "d", "wd", 8, 8, 3, 8);
         BatchNorm(b, "d", "dn", "bn2", 8);
         b.Weight("lo", {}, {0.0f}).Weight("hi", {}, {6.0f}).Node("Clip", {"dn", "lo", "hi"}, {"cl"});
         Conv(b, "cl", "y", "wc", 4, 8, 1);
         b.Output("y");
         return b;
       }},
      {"squeeze_excitation", {2, 3, 6, 6}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 8, 3, 3);
         b.Node("Relu", {"a"}, {"r"}).Node("GlobalAveragePool", {"r"}, {"p"});
         Conv(b, "p", "s1", "ws1", 4, 8, 1);
         b.Node("Relu", {"s1"}, {"s1r"});
         Conv(b, "s1r", "s2", "ws2", 8, 4, 1);
         b.Node("Sigmoid", {"s2"}, {"gate"}).Node("Mul", {"r", "gate"}, {"m"});
         Conv(b, "m", "y", "wc", 4, 8, 3);
         b.Output("y");
         return b;
       }},
      {"flatten_gemm", {2, 3, 4, 4}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 4, 4});
         Conv(b, "x", "a", "wa", 6, 3, 3);
         b.Node("Relu", {"a"}, {"r"}).Node("MaxPool", {"r"}, {"p"});
         b.Attr("kernel_shape", std::vector<int64_t>{2, 2}).Attr("strides", std::vector<int64_t>{2, 2});
         b.Node("Flatten", {"p"}, {"f"}).Weight("w1", {10, 24}).Weight("c1", {10});
         b.Node("Gemm", {"f", "w1", "c1"}, {"h"}).Attr("transB", int64_t{1});
         b.Node("Relu", {"h"}, {"hr"}).Weight("w2", {10, 3}).Node("Gemm", {"hr", "w2"}, {"y"});
         b.Output("y");
         return b;
       }},
      {"reshape_matmul", {2, 3, 4, 4}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 4, 4});
         Conv(b, "x", "a", "wa", 6, 3, 3);
         b.Node("Relu", {"a"}, {"r"}).Node("AveragePool", {"r"}, {"p"});
         b.Attr("kernel_shape", std::vector<int64_t>{2, 2}).Attr("strides", std::vector<int64_t>{2, 2});
         b.Initializer(testing::Int64Tensor("shape", {0, 24})).Node("Reshape", {"p", "shape"}, {"f"});
         b.Weight("w1", {24, 3}).Node("MatMul", {"f", "w1"}, {"y"});
         b.Output("y");
         return b;
       }},
      {"split_and_slice", {2, 3, 6, 6}, [] {
         ModelBuilder b(13);
         b.Input("x", {-1, 3, 6, 6});
         Conv(b, "x", "a", "wa", 8, 3, 3);
         b.Node("Relu", {"a"}, {"r"});
         b.Initializer(testing::Int64Tensor("split", {3, 5})).Node("Split", {"r", "split"}, {"s0", "s1"}).Attr("axis", int64_t{1});
         Conv(b, "s0", "b0", "wb0", 4, 3, 3);
         Conv(b, "s1", "b1", "wb1", 4, 5, 3);
         Conv(b, "x", "c", "wc", 10, 3, 3);
         b.Node("Relu", {"c"}, {"cr"});
         b.Initializer(testing::Int64Tensor("starts", {2}))
             .Initializer(testing::Int64Tensor("ends", {9}))
             .Initializer(testing::Int64Tensor("axes", {1}));
         b.Node("Slice", {"cr", "starts", "ends", "axes"}, {"sl"});
         Conv(b, "sl", "b2", "wb2", 4, 7, 1);
         b.Node("Add", {"b0", "b1"}, {"s"}).Node("Add", {"s", "b2"}, {"y"});
         b.Output("y");
         return b;
       }},
      {"mlp_hidden_gelu", {2, 5, 16}, [] {
         ModelBuilder b(13);
         b.Input("x", {-1, 5, 16});
         b.Weight("w1", {16, 32}).Node("MatMul", {"x", "w1"}, {"h0"}).Weight("b1", {32}).Node("Add", {"h0", "b1"}, {"h"});
         b.Weight("sqrt2", {}, {1.4142135f}).Weight("one", {}, {1.0f}).Weight("half", {}, {0.5f});
         b.Node("Div", {"h", "sqrt2"}, {"d"}).Node("Erf", {"d"}, {"e"}).Node("Add", {"e", "one"}, {"e1"});
         b.Node("Mul", {"h", "e1"}, {"m"}).Node("Mul", {"m", "half"}, {"g"});
         b.Weight("w2", {32, 16}).Node("MatMul", {"g", "w2"}, {"o"}).Weight("b2", {16}).Node("Add", {"o", "b2"}, {"y"});
         b.Output("y");
         return b;
       }},
      {"convtranspose", {2, 3, 4, 4}, [] {
         ModelBuilder b;
         b.Input("x", {-1, 3, 4, 4});
         b.Weight("wt", {3, 8, 2, 2}).Weight("wt_b", {8});
         b.Node("ConvTranspose", {"x", "wt", "wt_b"}, {"u"}).Attr("strides", std::vector<int64_t>{2, 2});
         b.Node("Relu", {"u"}, {"r"});
         Conv(b, "r", "y", "wc", 4, 8, 3);
         b.Output("y");
         return b;
       }},
      {"shared_weight_and_identity_alias", {2, 3, 6, 6}, [] {
         // Exporters share equal tensors (zero biases) between layers, also through Identity copies.
         ModelBuilder b;
         b.Input("x", {-1, 3, 6, 6});
         b.Weight("w", {8, 3, 3, 3}).Weight("bias", {8}).Node("Identity", {"w"}, {"w_copy"});
         b.Node("Conv", {"x", "w", "bias"}, {"a1"}).Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
         b.Node("Conv", {"x", "w_copy", "bias"}, {"a2"}).Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
         b.Node("Relu", {"a1"}, {"r1"}).Node("Tanh", {"a2"}, {"r2"});
         b.Node("Concat", {"r1", "r2"}, {"cat"}).Attr("axis", int64_t{1});
         Conv(b, "cat", "y", "wc", 4, 16, 3);
         b.Output("y");
         return b;
       }},
  };
  return patterns;
}

// The units a test removes: floor(0.3 * C) per prunable group, taken from the
// end of the group every other unit, so index mapping is exercised.
inline std::set<int64_t> ChosenUnits(const ChannelAnalysis& a) {
  std::set<int64_t> units;
  for (const ChannelGroup& g : a.groups) {
    if (!g.prunable || g.channels < 2) continue;
    const auto k = static_cast<int64_t>(std::floor(0.3 * static_cast<double>(g.channels) + 1e-9));
    for (int64_t j = 0; j < k; ++j) units.insert(g.first_unit + g.channels - 1 - 2 * j);
  }
  return units;
}

// Silences the chosen units: every tensor that computes them is zeroed at their positions, and every
// tensor that reads them is scaled by 1e-3 there, so they score lowest yet their readers are nonzero.
inline void SilenceUnits(Model& m, const ChannelAnalysis& a, const std::set<int64_t>& units) {
  for (const ChannelSlice& s : a.slices) {
    auto w = m.MutableTensor(s.tensor);
    ASSERT_TRUE(w.ok()) << w.status().message();
    auto split = SplitAtAxis(w->shape, s.axis);
    ASSERT_TRUE(split.ok());
    // Producers (filters, biases, norm parameters) become zero, so the channel is zero everywhere; readers
    // only shrink, so their weights are still there to be removed, and removing the wrong ones shows.
    const float factor = s.produces ? 0.0f : 1e-3f;
    auto f = w->span<float>();
    for (int64_t o = 0; o < split->outer; ++o) {
      for (int64_t l = 0; l < split->length; ++l) {
        if (!units.count(s.units[l])) continue;
        for (int64_t i = 0; i < split->inner; ++i) f[(o * split->length + l) * split->inner + i] *= factor;
      }
    }
  }
}

}  // namespace modelpress::channels_test
