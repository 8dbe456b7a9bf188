// Conv and ConvTranspose against direct scalar loops written from the ONNX
// definitions, over groups, strides, pads, dilations and auto_pad.
#include <gtest/gtest.h>

#include <algorithm>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

struct ConvCase {
  int64_t n, c, h, w, m, kh, kw, group;
  std::vector<int64_t> strides, pads, dilations;  // pads: top, left, bottom, right
};

// Y[n, m, oh, ow] = B[m] + sum over c in m's group, kh, kw of X * W.
std::vector<float> DirectConv2d(const ConvCase& p, const std::vector<float>& x, const std::vector<float>& wt,
                                const std::vector<float>& b, int64_t* oh_out, int64_t* ow_out) {
  const int64_t oh = (p.h + p.pads[0] + p.pads[2] - p.dilations[0] * (p.kh - 1) - 1) / p.strides[0] + 1;
  const int64_t ow = (p.w + p.pads[1] + p.pads[3] - p.dilations[1] * (p.kw - 1) - 1) / p.strides[1] + 1;
  *oh_out = oh;
  *ow_out = ow;
  const int64_t cg = p.c / p.group, mg = p.m / p.group;
  std::vector<float> y(p.n * p.m * oh * ow);
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t m = 0; m < p.m; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b.empty() ? 0 : b[m];
          const int64_t g = m / mg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t u = 0; u < p.kh; ++u)
              for (int64_t v = 0; v < p.kw; ++v) {
                const int64_t y0 = i * p.strides[0] - p.pads[0] + u * p.dilations[0];
                const int64_t x0 = j * p.strides[1] - p.pads[1] + v * p.dilations[1];
                if (y0 < 0 || y0 >= p.h || x0 < 0 || x0 >= p.w) continue;
                acc += static_cast<double>(x[((n * p.c + g * cg + c) * p.h + y0) * p.w + x0]) *
                       wt[((m * cg + c) * p.kh + u) * p.kw + v];
              }
          y[((n * p.m + m) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

class Conv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2d, MatchesDirectLoops) {
  const ConvCase p = GetParam();
  const auto x = RandomValues(p.n * p.c * p.h * p.w, 1);
  const auto wt = RandomValues(p.m * (p.c / p.group) * p.kh * p.kw, 2);
  const auto b = RandomValues(p.m, 3);
  ModelBuilder mb;
  mb.Input("x", {-1, p.c, p.h, p.w}).Weight("w", {p.m, p.c / p.group, p.kh, p.kw}, wt).Weight("b", {p.m}, b);
  mb.Node("Conv", {"x", "w", "b"}, {"y"}).Attr("group", p.group).Attr("strides", p.strides).Attr("pads", p.pads)
      .Attr("dilations", p.dilations);
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({p.n, p.c, p.h, p.w}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  int64_t oh = 0, ow = 0;
  const auto want = DirectConv2d(p, x, wt, b, &oh, &ow);
  EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{p.n, p.m, oh, ow}));
  EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Conv2d,
    ::testing::Values(ConvCase{2, 3, 9, 7, 4, 3, 3, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},     // plain
                      ConvCase{1, 4, 8, 8, 6, 3, 3, 2, {2, 2}, {1, 1, 1, 1}, {1, 1}},     // groups, stride, pad
                      ConvCase{1, 6, 10, 9, 6, 3, 3, 6, {1, 2}, {1, 0, 2, 1}, {1, 1}},    // depthwise, uneven pads
                      ConvCase{2, 6, 9, 9, 12, 3, 3, 6, {1, 1}, {1, 1, 1, 1}, {1, 1}},    // depthwise multiplier 2
                      ConvCase{1, 3, 11, 12, 5, 3, 2, 1, {2, 3}, {2, 1, 0, 2}, {2, 3}},   // dilations
                      ConvCase{3, 8, 5, 5, 16, 1, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}},    // pointwise fast path
                      ConvCase{1, 8, 6, 6, 4, 1, 1, 2, {2, 2}, {0, 0, 0, 0}, {1, 1}},     // strided 1x1 with groups
                      ConvCase{1, 2, 4, 4, 3, 5, 5, 1, {1, 1}, {3, 3, 3, 3}, {1, 1}},     // kernel larger than input
                      // A GEMM of 130 x 576 x 360: more rows, columns and depth than one block of each.
                      ConvCase{1, 40, 24, 24, 130, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}},
                      ConvCase{5, 40, 6, 6, 13, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}}));  // several images per GEMM

// Without an observer the Conv clamps its output for the Relu after it; the
// result equals running the two nodes apart (as with an observer).
TEST(ConvRelu, FusedEqualsSeparate) {
  const ConvCase p{3, 5, 7, 7, 9, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}};
  const auto x = RandomValues(p.n * p.c * p.h * p.w, 4);
  const auto wt = RandomValues(p.m * p.c * p.kh * p.kw, 5);
  const auto b = RandomValues(p.m, 6);
  ModelBuilder mb;
  mb.Input("x", {-1, p.c, p.h, p.w}).Weight("w", {p.m, p.c, p.kh, p.kw}, wt).Weight("b", {p.m}, b);
  mb.Node("Conv", {"x", "w", "b"}, {"c"}).Attr("pads", p.pads);
  mb.Node("Relu", {"c"}, {"y"});
  mb.Output("y");
  auto model = Model::FromProto(mb.Proto());
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto exec = Executor::Create(*model);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  const std::vector<Tensor> in = {Tensor::FromFloats({p.n, p.c, p.h, p.w}, x)};
  auto fused = exec->Run(in);
  int observed = 0;
  auto separate = exec->Run(in, [&](const std::string&, const Tensor&) { ++observed; });
  ASSERT_TRUE(fused.ok()) << fused.status().message();
  ASSERT_TRUE(separate.ok()) << separate.status().message();
  EXPECT_EQ(observed, 3);  // x, c and y
  int64_t oh = 0, ow = 0;
  auto want = DirectConv2d(p, x, wt, b, &oh, &ow);
  for (float& v : want) v = v > 0 ? v : 0;
  EXPECT_LT(test::MaxScaledDiff(want, (*fused)[0].values<float>()), test::kGemmTolerance);
  const auto f = (*fused)[0].values<float>(), s = (*separate)[0].values<float>();
  EXPECT_TRUE(std::equal(f.begin(), f.end(), s.begin(), s.end()));
}

// auto_pad SAME_* pads to ceil(in / stride) outputs, splitting odd totals as
// the ONNX spec says (extra at the end for UPPER, at the start for LOWER).
TEST(Conv2dAutoPad, SameAndValidMatchExplicitPads) {
  const int64_t h = 7, w = 8, k = 4, s = 2;
  const auto x = RandomValues(1 * 2 * h * w, 4);
  const auto wt = RandomValues(3 * 2 * k * k, 5);
  for (const std::string mode : {"SAME_UPPER", "SAME_LOWER", "VALID"}) {
    SCOPED_TRACE(mode);
    ModelBuilder mb;
    mb.Input("x", {1, 2, h, w}).Weight("w", {3, 2, k, k}, wt);
    mb.Node("Conv", {"x", "w"}, {"y"}).Attr("strides", std::vector<int64_t>{s, s});
    mb.Output("y");
    auto proto = mb.Proto();
    test::StringAttr(proto, "auto_pad", mode);
    auto out = test::RunGraph(proto, {Tensor::FromFloats({1, 2, h, w}, x)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    std::vector<int64_t> pads(4, 0);
    if (mode != "VALID") {
      for (int d = 0; d < 2; ++d) {
        const int64_t in = d == 0 ? h : w, outd = (in + s - 1) / s;
        const int64_t total = std::max<int64_t>(0, (outd - 1) * s + k - in);
        pads[d] = mode == "SAME_UPPER" ? total / 2 : total - total / 2;
        pads[d + 2] = total - pads[d];
      }
    }
    ConvCase p{1, 2, h, w, 3, k, k, 1, {s, s}, pads, {1, 1}};
    int64_t oh = 0, ow = 0;
    const auto want = DirectConv2d(p, x, wt, {}, &oh, &ow);
    if (mode != "VALID") {
      EXPECT_EQ(oh, (h + s - 1) / s);
      EXPECT_EQ(ow, (w + s - 1) / s);
    }
    EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{1, 3, oh, ow}));
    EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
  }
}

// 1-D and 3-D convolutions go through the same N-d im2col; a 3-D case with
// a singleton depth must equal the 2-D direct loops.
TEST(ConvNd, ThreeDWithUnitDepthEqualsTwoD) {
  ConvCase p{2, 4, 6, 7, 4, 3, 2, 2, {2, 1}, {1, 0, 1, 1}, {1, 2}};
  const auto x = RandomValues(p.n * p.c * p.h * p.w, 6);
  const auto wt = RandomValues(p.m * 2 * p.kh * p.kw, 7);
  ModelBuilder mb;
  mb.Input("x", {p.n, p.c, 1, p.h, p.w}).Weight("w", {p.m, 2, 1, p.kh, p.kw}, wt);
  mb.Node("Conv", {"x", "w"}, {"y"}).Attr("group", p.group).Attr("strides", std::vector<int64_t>{1, 2, 1})
      .Attr("pads", std::vector<int64_t>{0, 1, 0, 0, 1, 1}).Attr("dilations", std::vector<int64_t>{1, 1, 2});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({p.n, p.c, 1, p.h, p.w}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  int64_t oh = 0, ow = 0;
  const auto want = DirectConv2d(p, x, wt, {}, &oh, &ow);
  EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{p.n, p.m, 1, oh, ow}));
  EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
}

// ConvTranspose scatters each input pixel times the kernel into the output:
// Y[n, g*mg+m, i*s - p + u*d, ...] += X[n, g*cg+c, i, j] * W[g*cg+c, m, u, v].
TEST(ConvTranspose, MatchesScatterLoops) {
  const int64_t n = 2, c = 4, h = 3, w = 4, mg = 3, group = 2, k = 3, s = 2, pad = 1, op = 1, dil = 1;
  const auto x = RandomValues(n * c * h * w, 8);
  const auto wt = RandomValues(c * mg * k * k, 9);
  const auto b = RandomValues(mg * group, 10);
  ModelBuilder mb;
  mb.Input("x", {n, c, h, w}).Weight("w", {c, mg, k, k}, wt).Weight("b", {mg * group}, b);
  mb.Node("ConvTranspose", {"x", "w", "b"}, {"y"}).Attr("group", group).Attr("strides", std::vector<int64_t>{s, s})
      .Attr("pads", std::vector<int64_t>{pad, pad, pad, pad}).Attr("output_padding", std::vector<int64_t>{op, op});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({n, c, h, w}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const int64_t oh = s * (h - 1) + op + (k - 1) * dil + 1 - 2 * pad, ow = s * (w - 1) + op + (k - 1) * dil + 1 - 2 * pad;
  const int64_t m = mg * group, cg = c / group;
  std::vector<double> y(n * m * oh * ow, 0.0);
  for (int64_t in = 0; in < n; ++in)
    for (int64_t o = 0; o < m; ++o)
      for (int64_t p = 0; p < oh * ow; ++p) y[(in * m + o) * oh * ow + p] = b[o];
  for (int64_t in = 0; in < n; ++in)
    for (int64_t ci = 0; ci < c; ++ci)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j)
          for (int64_t mo = 0; mo < mg; ++mo)
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) {
                const int64_t yy = i * s - pad + u * dil, xx = j * s - pad + v * dil;
                if (yy < 0 || yy >= oh || xx < 0 || xx >= ow) continue;
                const int64_t oc = (ci / cg) * mg + mo;
                y[((in * m + oc) * oh + yy) * ow + xx] +=
                    static_cast<double>(x[((in * c + ci) * h + i) * w + j]) * wt[((ci * mg + mo) * k + u) * k + v];
              }
  std::vector<float> want(y.begin(), y.end());
  EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{n, m, oh, ow}));
  EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
}

TEST(ConvErrors, ChannelMismatchNamesTheNode) {
  ModelBuilder mb;
  mb.Input("x", {1, 3, 5, 5}).Weight("w", {4, 2, 3, 3});
  mb.Node("Conv", {"x", "w"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({1, 3, 5, 5}, RandomValues(75, 1))});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("Conv_1"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("channels"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace modelpress::runtime

namespace modelpress::runtime {
namespace {

// MaxPool 2-D (the four-at-a-time 2x2 path and the general one) against a
// direct loop over each window, with pads and odd sizes.
TEST(MaxPool2d, MatchesDirectLoops) {
  struct Case {
    int64_t h, w, k, s;
    std::vector<int64_t> pads;  // top, left, bottom, right
  };
  const std::vector<Case> cases = {Case{8, 8, 2, 2, {0, 0, 0, 0}},  Case{9, 21, 2, 2, {0, 0, 0, 0}},
                                   Case{7, 19, 2, 2, {1, 1, 1, 1}}, Case{6, 13, 2, 2, {0, 1, 0, 1}},
                                   Case{1, 1, 2, 2, {1, 1, 0, 0}},  Case{9, 10, 3, 2, {1, 1, 1, 1}}};
  for (const Case& p : cases) {
    const int64_t planes = 3;
    const auto x = testing::RandomValues(planes * p.h * p.w, 7);
    ModelBuilder mb;
    mb.Input("x", {1, planes, p.h, p.w});
    mb.Node("MaxPool", {"x"}, {"y"}).Attr("kernel_shape", std::vector<int64_t>{p.k, p.k})
        .Attr("strides", std::vector<int64_t>{p.s, p.s}).Attr("pads", p.pads);
    mb.Output("y");
    auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({1, planes, p.h, p.w}, x)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const int64_t oh = (p.h + p.pads[0] + p.pads[2] - p.k) / p.s + 1;
    const int64_t ow = (p.w + p.pads[1] + p.pads[3] - p.k) / p.s + 1;
    std::vector<float> want;
    for (int64_t c = 0; c < planes; ++c)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          float m = -INFINITY;
          for (int64_t a = 0; a < p.k; ++a)
            for (int64_t e = 0; e < p.k; ++e) {
              const int64_t r = i * p.s - p.pads[0] + a, q = j * p.s - p.pads[1] + e;
              if (r >= 0 && r < p.h && q >= 0 && q < p.w) m = std::max(m, x[(c * p.h + r) * p.w + q]);
            }
          want.push_back(m);
        }
    ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{1, planes, oh, ow}));
    const auto got = (*out)[0].values<float>();
    EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin(), got.end())) << p.h << "x" << p.w;
  }
}

}  // namespace
}  // namespace modelpress::runtime
