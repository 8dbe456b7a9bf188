#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "modelpress/prune.h"
#include "modelpress/reconstruct.h"
#include "modelpress/runtime.h"
#include "modelpress/sparsity.h"
#include "support/model_builder.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

TensorView FloatView(const std::vector<float>& v, std::vector<int64_t> shape) {
  return {DType::kFloat32, std::move(shape), reinterpret_cast<const std::byte*>(v.data()), static_cast<int64_t>(v.size()),
          sizeof(float), Storage::kRaw};
}

// Inputs with correlated columns (as real activations are), so that a re-fit
// has something to compensate.
std::vector<float> CorrelatedRows(int64_t n, int64_t c, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * c));
  for (int64_t r = 0; r < n; ++r) {
    const float common = g(gen);
    for (int64_t j = 0; j < c; ++j) x[r * c + j] = 0.8f * common + 0.6f * g(gen) + (j % 3 == 0 ? 0.5f : 0.0f);
  }
  return x;
}

// Reference H = X^T X in double, one row at a time.
std::vector<double> NaiveGram(const std::vector<float>& x, int64_t n, int64_t c) {
  std::vector<double> h(static_cast<size_t>(c * c), 0.0);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = 0; i < c; ++i) {
      for (int64_t j = 0; j < c; ++j) h[i * c + j] += static_cast<double>(x[r * c + i]) * x[r * c + j];
    }
  }
  return h;
}

// Least squares min ||A z - b|| by modified Gram-Schmidt QR on A itself
// (never forms A^T A, so it shares nothing with the solver under test).
std::vector<double> LeastSquares(std::vector<std::vector<double>> a_cols, std::vector<double> b) {
  const size_t k = a_cols.size(), n = b.size();
  std::vector<std::vector<double>> r(k, std::vector<double>(k, 0.0));
  for (size_t j = 0; j < k; ++j) {
    for (size_t i = 0; i < j; ++i) {
      double d = 0;
      for (size_t t = 0; t < n; ++t) d += a_cols[i][t] * a_cols[j][t];
      r[i][j] = d;
      for (size_t t = 0; t < n; ++t) a_cols[j][t] -= d * a_cols[i][t];
    }
    double norm = 0;
    for (size_t t = 0; t < n; ++t) norm += a_cols[j][t] * a_cols[j][t];
    norm = std::sqrt(norm);
    r[j][j] = norm;
    for (size_t t = 0; t < n; ++t) a_cols[j][t] /= norm;
  }
  std::vector<double> qtb(k, 0.0), z(k, 0.0);
  for (size_t j = 0; j < k; ++j) {
    for (size_t t = 0; t < n; ++t) qtb[j] += a_cols[j][t] * b[t];
  }
  for (size_t j = k; j-- > 0;) {
    double s = qtb[j];
    for (size_t i = j + 1; i < k; ++i) s -= r[j][i] * z[i];
    z[j] = s / r[j][j];
  }
  return z;
}

TEST(GramAccumulator, MatchesNaiveSumAcrossChunksAndBatches) {
  const int64_t n = 53, c = 9;
  const auto x = CorrelatedRows(n, c, 1);
  GramAccumulator acc(c, /*chunk_rows=*/7);
  // Uneven batches: 0, 5, 20 and the rest rows.
  int64_t at = 0;
  for (int64_t take : {int64_t{0}, int64_t{5}, int64_t{20}, n - 25}) {
    ASSERT_TRUE(acc.Add(std::span(x).subspan(at * c, take * c), take).ok());
    at += take;
  }
  EXPECT_EQ(acc.rows(), n);
  const auto h = acc.Gram(), ref = NaiveGram(x, n, c);
  for (size_t i = 0; i < h.size(); ++i) EXPECT_NEAR(h[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << i;
  EXPECT_FALSE(acc.Add(std::span(x).subspan(0, 5), 1).ok());  // 5 values are not one row of 9
  std::vector<float> bad(c, 0.0f);
  bad[3] = NAN;
  EXPECT_FALSE(acc.Add(bad, 1).ok());
}

// A [out, in] layer, half its weights pruned by magnitude.
struct Layer {
  int64_t rows = 12, cols = 24, n = 200;
  std::vector<float> x, w;
  std::vector<uint8_t> keep;
  std::vector<double> h;
};

Layer MakeLayer(uint32_t seed, double sparsity = 0.5) {
  Layer l;
  l.x = CorrelatedRows(l.n, l.cols, seed);
  l.w = RandomValues(static_cast<size_t>(l.rows * l.cols), seed + 7);
  l.w[5] = 0.0f;  // an exact zero that must stay zero
  l.keep.resize(l.w.size());
  EXPECT_TRUE(UnstructuredMask({FloatView(l.w, {l.rows, l.cols}), {}}, sparsity, l.keep).ok());
  GramAccumulator acc(l.cols);
  EXPECT_TRUE(acc.Add(l.x, l.n).ok());
  l.h = acc.Gram();
  return l;
}

TEST(RefitWeights, ExactSolveEqualsIndependentLeastSquares) {
  const Layer l = MakeLayer(3);
  RefitOptions o;
  o.damp = 0;
  o.method = RefitMethod::kExact;
  auto r = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->method, RefitMethod::kExact);
  for (int64_t row = 0; row < l.rows; ++row) {
    std::vector<std::vector<double>> cols;
    std::vector<int64_t> kept;
    std::vector<double> target(static_cast<size_t>(l.n), 0.0);
    for (int64_t t = 0; t < l.n; ++t) {
      for (int64_t j = 0; j < l.cols; ++j) target[t] += static_cast<double>(l.x[t * l.cols + j]) * l.w[row * l.cols + j];
    }
    for (int64_t j = 0; j < l.cols; ++j) {
      if (!l.keep[row * l.cols + j] || l.w[row * l.cols + j] == 0) continue;
      kept.push_back(j);
      std::vector<double> col(static_cast<size_t>(l.n));
      for (int64_t t = 0; t < l.n; ++t) col[t] = l.x[t * l.cols + j];
      cols.push_back(std::move(col));
    }
    const auto z = LeastSquares(cols, target);
    for (size_t a = 0; a < kept.size(); ++a) {
      EXPECT_NEAR(r->weights[row * l.cols + kept[a]], z[a], 2e-4 * (1 + std::fabs(z[a]))) << row << "," << kept[a];
    }
  }
}

// With a dense target, the exact re-fit reproduces X w from perturbed inputs X'.
TEST(RefitWeights, DenseTargetEqualsIndependentLeastSquares) {
  const Layer l = MakeLayer(4);
  std::vector<float> xp = l.x;
  const auto noise = RandomValues(xp.size(), 99);
  for (size_t i = 0; i < xp.size(); ++i) xp[i] = 0.7f * xp[i] + 0.3f * noise[i];
  GramAccumulator hp(l.cols), g(l.cols);
  CrossGramAccumulator cross(l.cols, /*chunk_rows=*/33);
  ASSERT_TRUE(hp.Add(xp, l.n).ok());
  ASSERT_TRUE(g.Add(l.x, l.n).ok());
  ASSERT_TRUE(cross.Add(xp, l.x, l.n).ok());
  EXPECT_EQ(cross.rows(), l.n);
  // The cross product against a naive sum.
  const auto c = cross.Cross();
  for (int64_t i = 0; i < l.cols; ++i) {
    for (int64_t j = 0; j < l.cols; ++j) {
      double ref = 0;
      for (int64_t t = 0; t < l.n; ++t) ref += static_cast<double>(xp[t * l.cols + i]) * l.x[t * l.cols + j];
      EXPECT_NEAR(c[i * l.cols + j], ref, 1e-4 * (1 + std::fabs(ref)));
    }
  }
  const auto h = hp.Gram(), dense = g.Gram();
  const RefitTarget target{c, dense};
  RefitOptions o;
  o.damp = 0;
  o.method = RefitMethod::kExact;
  auto r = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, h, 1, o, &target);
  ASSERT_TRUE(r.ok()) << r.status().message();
  double num = 0, den = 0;
  for (int64_t row = 0; row < l.rows; ++row) {
    std::vector<std::vector<double>> cols;
    std::vector<int64_t> kept;
    std::vector<double> want(static_cast<size_t>(l.n), 0.0);
    for (int64_t t = 0; t < l.n; ++t) {
      for (int64_t j = 0; j < l.cols; ++j) want[t] += static_cast<double>(l.x[t * l.cols + j]) * l.w[row * l.cols + j];
    }
    for (int64_t j = 0; j < l.cols; ++j) {
      if (!l.keep[row * l.cols + j] || l.w[row * l.cols + j] == 0) continue;
      kept.push_back(j);
      std::vector<double> col(static_cast<size_t>(l.n));
      for (int64_t t = 0; t < l.n; ++t) col[t] = xp[t * l.cols + j];
      cols.push_back(std::move(col));
    }
    const auto z = LeastSquares(cols, want);
    for (size_t a = 0; a < kept.size(); ++a) {
      EXPECT_NEAR(r->weights[row * l.cols + kept[a]], z[a], 2e-4 * (1 + std::fabs(z[a]))) << row << "," << kept[a];
    }
    // The reported error is ||X' w' - X w|| / ||X w||.
    for (int64_t t = 0; t < l.n; ++t) {
      double y = 0;
      for (int64_t j = 0; j < l.cols; ++j) y += static_cast<double>(xp[t * l.cols + j]) * r->weights[row * l.cols + j];
      num += (y - want[t]) * (y - want[t]);
      den += want[t] * want[t];
    }
  }
  EXPECT_NEAR(r->error_after, std::sqrt(num / den), 1e-4);
  EXPECT_LT(r->error_after, r->error_before);
}

TEST(RefitWeights, ErrorDropsPrunedAndZeroWeightsStayZero) {
  const Layer l = MakeLayer(5);
  for (RefitMethod m : {RefitMethod::kExact, RefitMethod::kObs}) {
    RefitOptions o;
    o.method = m;
    o.block = 5;  // several blocks and a partial last one
    auto r = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_GT(r->error_before, 0.05) << RefitMethodName(m);
    EXPECT_LT(r->error_after, 0.8 * r->error_before) << RefitMethodName(m);
    for (size_t i = 0; i < l.w.size(); ++i) {
      if (!l.keep[i] || l.w[i] == 0) {
        EXPECT_EQ(r->weights[i], 0.0f) << i;
      }
    }
    EXPECT_EQ(r->weights[5], 0.0f);
    EXPECT_EQ(CountZeros(FloatView(r->weights, {l.rows, l.cols})), l.rows * l.cols / 2);  // the zero counts toward it
  }
}

TEST(RefitWeights, ExactIsAtLeastAsGoodAsObs) {
  const Layer l = MakeLayer(9, 0.7);
  RefitOptions exact, obs;
  exact.method = RefitMethod::kExact;
  obs.method = RefitMethod::kObs;
  auto e = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, exact);
  auto s = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, obs);
  ASSERT_TRUE(e.ok() && s.ok());
  EXPECT_LE(e->error_after, s->error_after * (1 + 1e-4));
  EXPECT_LT(s->error_after, s->error_before);
}

TEST(RefitWeights, KeepingEverythingChangesNothing) {
  Layer l = MakeLayer(11);
  std::fill(l.keep.begin(), l.keep.end(), 1);
  for (RefitMethod m : {RefitMethod::kExact, RefitMethod::kObs}) {
    RefitOptions o;
    o.method = m;
    auto r = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, o);
    ASSERT_TRUE(r.ok());
    for (size_t i = 0; i < l.w.size(); ++i) EXPECT_NEAR(r->weights[i], l.w[i], 1e-4) << i;
    EXPECT_EQ(r->error_before, 0.0);
  }
}

TEST(RefitWeights, TransposedLayoutGivesTransposedResult) {
  const Layer l = MakeLayer(13);
  std::vector<float> wt(l.w.size());
  std::vector<uint8_t> kt(l.keep.size());
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t c = 0; c < l.cols; ++c) {
      wt[c * l.rows + r] = l.w[r * l.cols + c];
      kt[c * l.rows + r] = l.keep[r * l.cols + c];
    }
  }
  auto a = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, {});
  auto b = RefitWeights(FloatView(wt, {l.cols, l.rows}), 1, kt, l.h, 1, {});  // MatMul B [in, out]
  ASSERT_TRUE(a.ok() && b.ok());
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t c = 0; c < l.cols; ++c) EXPECT_FLOAT_EQ(a->weights[r * l.cols + c], b->weights[c * l.rows + r]);
  }
}

TEST(RefitWeights, RefusesMismatchedArguments) {
  const Layer l = MakeLayer(15);
  const TensorView w = FloatView(l.w, {l.rows, l.cols});
  EXPECT_FALSE(RefitWeights(w, 0, std::span(l.keep).first(3), l.h, 1, {}).ok());
  EXPECT_FALSE(RefitWeights(w, 0, l.keep, std::span(l.h).first(10), 1, {}).ok());
  EXPECT_FALSE(RefitWeights(w, 0, l.keep, l.h, 5, {}).ok());  // 12 rows in 5 groups
  RefitOptions o;
  o.damp = -1;
  EXPECT_FALSE(RefitWeights(w, 0, l.keep, l.h, 1, o).ok());
}

// SparseGPT's elimination with a single pruned weight in column j of a row
// gives the least-squares optimum of the columns after j with the columns
// before j left as they are: U's row j (U^T U = H^-1) holds that update. One
// row per j checks U row by row against a solve that never forms H^-1.
// 150 columns: U is inverted in several column blocks, the last one partial.
TEST(RefitWeights, ObsSinglePruneEqualsLeastSquaresOverLaterColumns) {
  Layer l;
  l.cols = 150;
  l.n = 400;
  l.x = CorrelatedRows(l.n, l.cols, 19);
  l.w = RandomValues(static_cast<size_t>(l.rows * l.cols), 20);
  for (float& v : l.w) v = v == 0 ? 0.5f : v;  // no zero weight, so each row prunes exactly one
  GramAccumulator acc(l.cols);
  ASSERT_TRUE(acc.Add(l.x, l.n).ok());
  l.h = acc.Gram();
  const int64_t stride = 13;
  l.keep.assign(l.w.size(), 1);
  for (int64_t r = 0; r < l.rows; ++r) l.keep[r * l.cols + stride * r] = 0;
  RefitOptions o;
  o.damp = 0;
  o.method = RefitMethod::kObs;
  auto res = RefitWeights(FloatView(l.w, {l.rows, l.cols}), 0, l.keep, l.h, 1, o);
  ASSERT_TRUE(res.ok()) << res.status().message();
  for (int64_t r = 0; r < l.rows; ++r) {
    const int64_t j = stride * r;
    const float* w = &l.w[r * l.cols];
    const float* got = &res->weights[r * l.cols];
    for (int64_t t = 0; t < j; ++t) EXPECT_EQ(got[t], w[t]) << r << "," << t;
    EXPECT_EQ(got[j], 0.0f);
    if (j + 1 == l.cols) continue;
    // min over z of ||X_{>j} z - X_{>=j} w_{>=j}||.
    std::vector<double> b(static_cast<size_t>(l.n), 0.0);
    std::vector<std::vector<double>> cols;
    for (int64_t t = 0; t < l.n; ++t) {
      for (int64_t c = j; c < l.cols; ++c) b[t] += static_cast<double>(l.x[t * l.cols + c]) * w[c];
    }
    for (int64_t c = j + 1; c < l.cols; ++c) {
      std::vector<double> col(static_cast<size_t>(l.n));
      for (int64_t t = 0; t < l.n; ++t) col[t] = l.x[t * l.cols + c];
      cols.push_back(std::move(col));
    }
    const auto z = LeastSquares(cols, b);
    for (int64_t c = j + 1; c < l.cols; ++c) {
      EXPECT_NEAR(got[c], z[c - j - 1], 1e-3 * (1 + std::fabs(z[c - j - 1]))) << r << "," << c;
    }
  }
}

// The in-place re-fit writes what RefitWeights returns, and hands the Gram
// storage back holding H bit for bit (groups, both methods, with a target).
TEST(RefitWeights, InPlaceMatchesCopyAndRestoresGram) {
  const Layer a = MakeLayer(21), b = MakeLayer(22);
  std::vector<double> gram = a.h;
  gram.insert(gram.end(), b.h.begin(), b.h.end());  // two groups of 6 rows
  std::vector<double> cross = gram;
  for (size_t i = 0; i < cross.size(); ++i) cross[i] *= 0.9 + 0.01 * static_cast<double>(i % 7);  // not symmetric
  const RefitTarget target{cross, gram};
  for (RefitMethod m : {RefitMethod::kExact, RefitMethod::kObs}) {
    for (const RefitTarget* t : {static_cast<const RefitTarget*>(nullptr), &target}) {
      RefitOptions o;
      o.method = m;
      o.block = 5;
      auto want = RefitWeights(FloatView(a.w, {a.rows, a.cols}), 0, a.keep, gram, 2, o, t);
      ASSERT_TRUE(want.ok()) << want.status().message();
      std::vector<float> w = a.w;
      std::vector<double> h = gram;
      const MutableTensorView wm{DType::kFloat32, {a.rows, a.cols}, std::as_writable_bytes(std::span(w))};
      auto got = RefitWeightsInPlace(wm, 0, a.keep, h, 2, o, t);
      ASSERT_TRUE(got.ok()) << got.status().message();
      EXPECT_TRUE(got->weights.empty());
      EXPECT_EQ(w, want->weights) << RefitMethodName(m) << (t ? " with target" : "");
      EXPECT_EQ(got->error_before, want->error_before);
      EXPECT_EQ(got->error_after, want->error_after);
      EXPECT_LT(got->error_after, got->error_before);
      EXPECT_EQ(h, gram) << RefitMethodName(m) << (t ? " with target" : "");
    }
  }
}

TEST(RefitWeights, InPlaceFailureRestoresGram) {
  const Layer l = MakeLayer(23);
  std::vector<double> bad = l.h;
  for (int64_t i = 0; i < l.cols; ++i) bad[i * l.cols + i] = -bad[i * l.cols + i];  // not positive definite
  for (RefitMethod m : {RefitMethod::kExact, RefitMethod::kObs}) {
    const RefitTarget target{bad, bad};
    RefitOptions o;
    o.method = m;
    std::vector<float> w = l.w;
    std::vector<double> h = bad;
    const MutableTensorView wm{DType::kFloat32, {l.rows, l.cols}, std::as_writable_bytes(std::span(w))};
    EXPECT_FALSE(RefitWeightsInPlace(wm, 0, l.keep, h, 1, o, m == RefitMethod::kExact ? &target : nullptr).ok());
    EXPECT_EQ(h, bad) << RefitMethodName(m);
  }
  // Other weight types are refused in place.
  std::vector<double> w64(l.w.begin(), l.w.end());
  std::vector<double> h = l.h;
  const MutableTensorView wm{DType::kFloat64, {l.rows, l.cols}, std::as_writable_bytes(std::span(w64))};
  EXPECT_FALSE(RefitWeightsInPlace(wm, 0, l.keep, h, 1, {}).ok());
}

TEST(GramAccumulator, ReleaseGivesTheSameMatrices) {
  const int64_t n = 53, c = 9;
  const auto x = CorrelatedRows(n, c, 31), y = CorrelatedRows(n, c, 32);
  GramAccumulator h(c, /*chunk_rows=*/16);
  CrossGramAccumulator cross(c, /*chunk_rows=*/16);
  ASSERT_TRUE(h.Add(x, n).ok());
  ASSERT_TRUE(cross.Add(x, y, n).ok());
  const auto want_h = h.Gram(), want_c = cross.Cross();
  EXPECT_EQ(h.ReleaseGram(), want_h);  // 53 rows: the last chunk is still pending
  EXPECT_EQ(cross.ReleaseCross(), want_c);
  EXPECT_EQ(h.columns(), 0);
  EXPECT_EQ(cross.columns(), 0);
  EXPECT_TRUE(h.Gram().empty());
}

TEST(ObsSaliency, MasksKeepExactCountsAndNMPatterns) {
  const Layer l = MakeLayer(17);
  const TensorView w = FloatView(l.w, {l.rows, l.cols});
  auto s = ObsSaliency(w, 0, l.h, 1, 0.01);
  ASSERT_TRUE(s.ok()) << s.status().message();
  const TensorView sv = FloatView(*s, {l.rows, l.cols});
  EXPECT_EQ((*s)[5], 0.0f);  // a zero weight is the least salient
  std::vector<uint8_t> keep(l.w.size());
  ASSERT_TRUE(UnstructuredMask({sv, {}}, 0.7, keep).ok());
  EXPECT_EQ(std::count(keep.begin(), keep.end(), 0), static_cast<int64_t>(0.7 * l.rows * l.cols));
  EXPECT_EQ(keep[5], 0);
  ASSERT_TRUE(NMMask({sv, {}}, 1, 2, 4, keep).ok());
  std::vector<float> masked = l.w;
  for (size_t i = 0; i < masked.size(); ++i) masked[i] *= keep[i];
  EXPECT_TRUE(CheckNM(FloatView(masked, {l.rows, l.cols}), 1, 2, 4).compliant());
  // The OBS choice differs from |w| on correlated inputs and, once re-fitted
  // (what the saliency estimates), leaves a smaller error.
  std::vector<uint8_t> by_mag(l.w.size()), by_obs(l.w.size());
  ASSERT_TRUE(UnstructuredMask({w, {}}, 0.7, by_mag).ok());
  ASSERT_TRUE(UnstructuredMask({sv, {}}, 0.7, by_obs).ok());
  EXPECT_NE(by_mag, by_obs);
  RefitOptions exact;
  exact.method = RefitMethod::kExact;
  auto rm = RefitWeights(w, 0, by_mag, l.h, 1, exact), ro = RefitWeights(w, 0, by_obs, l.h, 1, exact);
  ASSERT_TRUE(rm.ok() && ro.ok());
  EXPECT_LT(ro->error_after, rm->error_after);
}

// ---- Model level ----

// Relative output error ||y - ref|| / ||ref|| of `m` against `ref_model` on `x`.
double OutputError(const Model& m, const Model& ref_model, const runtime::Tensor& x) {
  auto e = runtime::Executor::Create(m);
  auto r = runtime::Executor::Create(ref_model);
  EXPECT_TRUE(e.ok() && r.ok());
  auto y = e->Run({x});
  auto yr = r->Run({x});
  EXPECT_TRUE(y.ok() && yr.ok());
  double num = 0, den = 0;
  const auto a = (*y)[0].values<float>(), b = (*yr)[0].values<float>();
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

quant::CalibrationData DataOf(const NpyArray& x, const Model& m) {
  auto d = quant::NpyCalibrationData(m, x, "calib.npy", 0, 16);
  EXPECT_TRUE(d.ok()) << d.status().message();
  return *d;
}

NpyArray Samples(std::vector<int64_t> shape, uint32_t seed) {
  NpyArray a;
  a.dtype = DType::kFloat32;
  a.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const auto x = CorrelatedRows(n / shape.back(), shape.back(), seed);
  a.data.resize(x.size() * sizeof(float));
  std::memcpy(a.data.data(), x.data(), a.data.size());
  return a;
}

// w3 values are random when empty.
Model Mlp(std::vector<float> w3 = {}) {
  ModelBuilder b;
  b.Input("x", {-1, 16})
      .Weight("w1", {16, 32})
      .Node("MatMul", {"x", "w1"}, {"h"})
      .Node("Relu", {"h"}, {"r"})
      .Weight("w2", {24, 32})
      .Weight("b2", {24})
      .Node("Gemm", {"r", "w2", "b2"}, {"g"})
      .Attr("transB", int64_t{1})
      .Node("Tanh", {"g"}, {"t"})
      .Weight("w3", {24, 8}, std::move(w3))
      .Node("MatMul", {"t", "w3"}, {"y"})
      .Output("y");
  return b.Build();
}

TEST(PruneReconstructed, GlobalUnstructuredKeepsExactTotalsAndBeatsMagnitude) {
  const NpyArray x = Samples({128, 16}, 21);
  const runtime::Tensor xt = runtime::Tensor::Borrow(DType::kFloat32, x.shape, x.data.data());
  const Model dense = Mlp();
  Model plain = Mlp(), refit = Mlp();
  UnstructuredOptions u;
  u.sparsity = 0.8;
  u.scope = PruneScope::kGlobal;
  auto rp = PruneUnstructured(plain, u);
  ReconstructOptions one;
  one.steps = 1;  // one step: plain pruning's masks, but for KeepRowsAlive
  auto rr = PruneUnstructuredReconstructed(refit, u, DataOf(x, refit), one);
  ASSERT_TRUE(rp.ok() && rr.ok()) << rr.status().message();
  EXPECT_EQ(rr->zeros_after, rp->zeros_after);  // the global threshold decides every layer's count
  for (size_t i = 0; i < rp->tensors.size(); ++i) EXPECT_EQ(rr->tensors[i].zeros_after, rp->tensors[i].zeros_after);
  ASSERT_EQ(rr->refits.size(), 3u);
  EXPECT_EQ(rr->refits[0].tensor, "w1");  // graph order
  EXPECT_EQ(rr->refits[2].tensor, "w3");
  for (const RefitReport& f : rr->refits) {
    EXPECT_EQ(f.method, "exact") << f.tensor;
    EXPECT_EQ(f.samples, 128) << f.tensor;
    EXPECT_LT(f.error_after, f.error_before) << f.tensor;
  }
  // The bias is untouched and every weight plain pruning zeroes is still zero,
  // except one weight in each output row plain pruning empties entirely
  // (MatMul [in, out]: rows are columns; Gemm transB=1: rows are rows).
  EXPECT_EQ(*refit.View("b2")->span<float>().data(), *dense.View("b2")->span<float>().data());
  struct Rows {
    const char* name;
    bool by_column;
    int64_t columns;
  };
  int64_t restored = 0;
  for (const Rows& t : {Rows{"w1", true, 32}, Rows{"w2", false, 32}, Rows{"w3", true, 8}}) {
    const auto a = plain.View(t.name)->span<float>(), b = refit.View(t.name)->span<float>();
    const int64_t n = static_cast<int64_t>(a.size());
    auto row_of = [&](int64_t i) { return t.by_column ? i % t.columns : i / t.columns; };
    std::vector<int64_t> plain_kept(static_cast<size_t>(t.by_column ? t.columns : n / t.columns), 0), extra(plain_kept.size(), 0);
    for (int64_t i = 0; i < n; ++i) plain_kept[row_of(i)] += a[i] != 0;
    for (int64_t i = 0; i < n; ++i) {
      if (a[i] == 0 && b[i] != 0) {
        EXPECT_EQ(plain_kept[row_of(i)], 0) << t.name << " " << i;
        ++extra[row_of(i)];
        ++restored;
      }
    }
    for (int64_t e : extra) EXPECT_LE(e, 1) << t.name;
  }
  EXPECT_LE(restored, 3);  // this model and seed empty only a few rows
  EXPECT_LT(OutputError(refit, dense, xt), 0.7 * OutputError(plain, dense, xt));
}

TEST(PruneReconstructed, ObsSaliencyKeepsCountsAndNM) {
  const NpyArray x = Samples({64, 16}, 23);
  Model m = Mlp();
  UnstructuredOptions u;
  u.sparsity = 0.6;
  ReconstructOptions o;
  o.saliency = MaskSaliency::kObs;
  auto r = PruneUnstructuredReconstructed(m, u, DataOf(x, m), o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const auto& t : r->tensors) EXPECT_EQ(t.zeros_after, static_cast<int64_t>(0.6 * t.parameters + 1e-9)) << t.name;

  Model n = Mlp();
  auto rn = PruneNMReconstructed(n, {}, DataOf(x, n), o);
  ASSERT_TRUE(rn.ok()) << rn.status().message();
  EXPECT_TRUE(CheckNM(*n.View("w1"), 0, 2, 4).compliant());
  EXPECT_TRUE(CheckNM(*n.View("w2"), 1, 2, 4).compliant());
  EXPECT_TRUE(CheckNM(*n.View("w3"), 0, 2, 4).compliant());
  for (const RefitReport& f : rn->refits) EXPECT_LE(f.error_after, f.error_before) << f.tensor;
}

int64_t Zeros(const Model& m, const std::string& name) {
  const auto v = m.View(name)->span<float>();
  return std::count(v.begin(), v.end(), 0.0f);
}

// Gradual pruning: every layer ends at the count the one-step global
// selection gives it, pruned weights are exact zeros, and the re-fit still
// lowers each layer's error against the dense model.
TEST(PruneReconstructed, StepsReachTheOneStepCountsOfEveryLayer) {
  const NpyArray x = Samples({128, 16}, 31);
  const runtime::Tensor xt = runtime::Tensor::Borrow(DType::kFloat32, x.shape, x.data.data());
  const Model dense = Mlp();
  UnstructuredOptions u;
  u.sparsity = 0.85;
  u.scope = PruneScope::kGlobal;
  Model one_step = Mlp(), gradual = Mlp(), plain = Mlp();
  ReconstructOptions o1, o4;
  o1.steps = 1;
  o4.steps = 4;
  auto r1 = PruneUnstructuredReconstructed(one_step, u, DataOf(x, one_step), o1);
  auto r4 = PruneUnstructuredReconstructed(gradual, u, DataOf(x, gradual), o4);
  ASSERT_TRUE(r1.ok() && r4.ok()) << r4.status().message();
  ASSERT_TRUE(PruneUnstructured(plain, u).ok());
  ASSERT_EQ(r1->tensors.size(), r4->tensors.size());
  for (size_t i = 0; i < r1->tensors.size(); ++i) {
    EXPECT_EQ(r4->tensors[i].zeros_after, r1->tensors[i].zeros_after) << r1->tensors[i].name;
    EXPECT_EQ(r4->tensors[i].zeros_after, Zeros(gradual, r4->tensors[i].name)) << r4->tensors[i].name;
    EXPECT_EQ(r4->tensors[i].zeros_before, 0) << r4->tensors[i].name;  // of the model as given
  }
  ASSERT_EQ(r4->refits.size(), 3u);  // the last step's re-fits
  for (const RefitReport& f : r4->refits) EXPECT_LT(f.error_after, f.error_before) << f.tensor;
  EXPECT_LT(OutputError(gradual, dense, xt), OutputError(plain, dense, xt));

  ReconstructOptions bad;
  bad.steps = 0;
  Model m = Mlp();
  EXPECT_FALSE(PruneUnstructuredReconstructed(m, u, DataOf(x, m), bad).ok());
}

// A layer whose weights are all smaller than the others' would lose every
// weight to a global threshold, leaving its output constant. With
// reconstruction each of its rows keeps one weight, and the weights given
// back are taken from the other layers, so the total stays exact.
TEST(PruneReconstructed, GlobalSelectionLeavesNoRowEmpty) {
  std::vector<float> small(24 * 8);
  for (size_t i = 0; i < small.size(); ++i) small[i] = 1e-3f * static_cast<float>((i * 37) % 19 + 1) * (i % 2 ? 1 : -1);
  const NpyArray x = Samples({64, 16}, 37);
  UnstructuredOptions u;
  u.sparsity = 0.7;
  u.scope = PruneScope::kGlobal;
  Model plain = Mlp(small);
  auto rp = PruneUnstructured(plain, u);
  ASSERT_TRUE(rp.ok());
  ASSERT_EQ(Zeros(plain, "w3"), 24 * 8);  // the case: plain pruning empties w3
  for (int steps : {1, 3}) {
    for (MaskSaliency s : {MaskSaliency::kMagnitude, MaskSaliency::kObs}) {
      Model m = Mlp(small);
      ReconstructOptions o;
      o.steps = steps;
      o.saliency = s;
      auto r = PruneUnstructuredReconstructed(m, u, DataOf(x, m), o);
      ASSERT_TRUE(r.ok()) << r.status().message();
      EXPECT_EQ(r->zeros_after, rp->zeros_after) << steps;
      const auto w3 = m.View("w3")->span<float>();
      for (int64_t col = 0; col < 8; ++col) {  // MatMul [in, out]: a row is a column of w3
        int kept = 0;
        for (int64_t i = 0; i < 24; ++i) kept += w3[i * 8 + col] != 0;
        EXPECT_GE(kept, 1) << "steps " << steps << ", output " << col;
      }
    }
  }
}

// H built from im2col must describe the convolution exactly: the error the
// report computes from H equals the output error measured by running the
// pruned convolution (no bias, first layer, so its input is the data).
TEST(PruneReconstructed, ConvErrorFromGramMatchesExecutedOutput) {
  struct Case {
    std::vector<int64_t> strides, pads, dilations;
    int64_t group;
  };
  for (const Case& c : {Case{{1, 1}, {1, 1, 1, 1}, {1, 1}, 1}, Case{{2, 1}, {0, 2, 1, 0}, {1, 2}, 2},
                        Case{{2, 2}, {1, 1, 1, 1}, {2, 1}, 4}}) {
    ModelBuilder b;
    b.Input("x", {-1, 4, 7, 6})
        .Weight("w", {8, 4 / c.group, 3, 3})
        .Node("Conv", {"x", "w"}, {"y"})
        .Attr("strides", c.strides)
        .Attr("pads", c.pads)
        .Attr("dilations", c.dilations)
        .Attr("group", c.group)
        .Output("y");
    const Model dense = b.Build();
    Model m = b.Build();
    const NpyArray x = Samples({6, 4, 7, 6}, 29);
    UnstructuredOptions u;
    u.sparsity = 0.5;
    ReconstructOptions one;
    one.steps = 1;  // the mask of plain pruning
    auto r = PruneUnstructuredReconstructed(m, u, DataOf(x, m), one);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->refits.size(), 1u);
    Model plain = b.Build();
    ASSERT_TRUE(PruneUnstructured(plain, u).ok());
    const runtime::Tensor xt = runtime::Tensor::Borrow(DType::kFloat32, x.shape, x.data.data());
    EXPECT_NEAR(r->refits[0].error_before, OutputError(plain, dense, xt), 1e-4) << c.group;
    EXPECT_NEAR(r->refits[0].error_after, OutputError(m, dense, xt), 1e-4) << c.group;
    EXPECT_LT(r->refits[0].error_after, r->refits[0].error_before);
  }
}

TEST(PruneReconstructed, ChannelsRefitTheConsumer) {
  ModelBuilder b;
  b.Input("x", {-1, 16})
      .Weight("w1", {16, 24})
      .Node("MatMul", {"x", "w1"}, {"h"})
      .Node("Relu", {"h"}, {"r"})
      .Weight("w2", {24, 6})
      .Node("MatMul", {"r", "w2"}, {"y"})
      .Output("y");
  const Model dense = b.Build();
  Model plain = b.Build(), m = b.Build();
  const NpyArray x = Samples({96, 16}, 31);
  ChannelPruneOptions c;
  c.ratio = 0.5;
  auto rp = PruneChannels(plain, c);
  auto rr = PruneChannelsReconstructed(m, c, DataOf(x, m), {});
  ASSERT_TRUE(rp.ok() && rr.ok()) << rr.status().message();
  EXPECT_EQ(m.View("w2")->shape(), plain.View("w2")->shape());
  ASSERT_EQ(rr->refits.size(), 1u);
  EXPECT_EQ(rr->refits[0].tensor, "w2");
  EXPECT_LT(rr->refits[0].error_after, rr->refits[0].error_before);
  const runtime::Tensor xt = runtime::Tensor::Borrow(DType::kFloat32, x.shape, x.data.data());
  EXPECT_NEAR(rr->refits[0].error_before, OutputError(plain, dense, xt), 1e-4);
  EXPECT_NEAR(rr->refits[0].error_after, OutputError(m, dense, xt), 1e-4);
}

// Layers the re-fit does not handle still get their mask, with a reason.
TEST(PruneReconstructed, UnsupportedLayersArePrunedWithoutRefit) {
  ModelBuilder b;
  b.Input("x", {-1, 4, 5, 5})
      .Weight("ct", {4, 6, 3, 3})
      .Node("ConvTranspose", {"x", "ct"}, {"t"})
      .Weight("c", {8, 6, 3, 3})
      .Node("Conv", {"t", "c"}, {"y"})
      .Output("y");
  Model m = b.Build();
  const NpyArray x = Samples({8, 4, 5, 5}, 37);
  UnstructuredOptions u;
  u.sparsity = 0.5;
  auto r = PruneUnstructuredReconstructed(m, u, DataOf(x, m), {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->refits.size(), 2u);
  for (const RefitReport& f : r->refits) {
    if (f.tensor == "ct") {
      EXPECT_EQ(f.method, "none");
      EXPECT_NE(f.reason.find("convtranspose"), std::string::npos) << f.reason;
    } else {
      EXPECT_EQ(f.method, "exact");
      EXPECT_LT(f.error_after, f.error_before);
    }
  }
  EXPECT_EQ(CountZeros(*m.View("ct")), 4 * 6 * 9 / 2);
  EXPECT_EQ(CountZeros(*m.View("c")), 8 * 6 * 9 / 2);
}

TEST(PruneReconstructed, BadDataLeavesTheModelUnchanged) {
  Model m = Mlp();
  const std::string before = m.proto().SerializeAsString();
  quant::CalibrationData none;
  none.source = "empty.npy";
  EXPECT_FALSE(PruneUnstructuredReconstructed(m, {}, none, {}).ok());
  ReconstructOptions o;
  o.refit.damp = -0.5;
  const NpyArray x = Samples({8, 16}, 3);
  EXPECT_FALSE(PruneUnstructuredReconstructed(m, {}, DataOf(x, m), o).ok());
  EXPECT_EQ(m.proto().SerializeAsString(), before);
}

}  // namespace
}  // namespace modelpress
