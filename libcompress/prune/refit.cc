// Least-squares re-fit of pruned layers: the Gram accumulator, the exact
// per-row solve, SparseGPT's blocked OBS elimination and the OBS saliency.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "modelpress/parallel.h"
#include "modelpress/reconstruct.h"
#include "modelpress/sparsity.h"

namespace modelpress {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecD = Eigen::VectorXd;

// A tensor seen as rows (output_axis) x columns (the other axes, C order).
struct RowLayout {
  int64_t outer = 1, rows = 0, inner = 1;
  int64_t columns() const { return outer * inner; }
  int64_t Element(int64_t r, int64_t c) const { return ((c / inner) * rows + r) * inner + c % inner; }
};

Result<RowLayout> LayoutOf(const TensorView& w, int output_axis) {
  MP_ASSIGN_OR_RETURN(AxisSplit s, SplitAtAxis(w.shape(), output_axis));
  return RowLayout{s.outer, s.length, s.inner};
}

// Checks the arguments shared by RefitWeights and ObsSaliency.
Status CheckArgs(const TensorView& w, const RowLayout& l, std::span<const double> gram, int64_t groups, double damp) {
  const DType t = w.dtype();
  if (t != DType::kFloat32 && t != DType::kFloat16 && t != DType::kBfloat16 && t != DType::kFloat64) {
    return InvalidArgument("re-fit needs float32, float16, bfloat16 or float64 weights, got " + DTypeName(t));
  }
  if (groups < 1 || l.rows % groups != 0) {
    return InvalidArgument("re-fit: " + std::to_string(l.rows) + " rows cannot be split in " + std::to_string(groups) +
                           " groups");
  }
  const int64_t c = l.columns();
  if (static_cast<int64_t>(gram.size()) != groups * c * c) {
    return InvalidArgument("re-fit: the Gram matrices hold " + std::to_string(gram.size()) + " values, " +
                           std::to_string(groups) + " x " + std::to_string(c) + " x " + std::to_string(c) + " expected");
  }
  if (!(damp >= 0) || !std::isfinite(damp)) return InvalidArgument("re-fit: damp must be >= 0, got " + std::to_string(damp));
  return Status::Ok();
}

// H + damp * mean(diag H) * I of group g. A zero diagonal entry (an input
// that is always 0) gets 1 as SparseGPT does, so H stays invertible; its
// weight has no effect on the output either way.
MatD Dampened(std::span<const double> gram, int64_t g, int64_t c, double damp) {
  MatD h = Eigen::Map<const MatD>(gram.data() + g * c * c, c, c);
  double mean = c > 0 ? h.diagonal().mean() : 0.0;
  for (int64_t i = 0; i < c; ++i) {
    if (h(i, i) == 0) h(i, i) = 1;
  }
  if (mean == 0) mean = 1;
  h.diagonal().array() += damp * mean;
  return h;
}

// The inverse of a lower-triangular L, solved in column blocks in parallel.
MatD LowerInverse(const MatD& l, int threads) {
  const int64_t c = l.rows();
  MatD inv = MatD::Zero(c, c);
  const int64_t kBlock = 64;
  const int64_t blocks = (c + kBlock - 1) / kBlock;
  ParallelFor(
      blocks,
      [&](int64_t b) {
        const int64_t j0 = b * kBlock, n = std::min(kBlock, c - j0);
        // Column j of L^-1 is zero above row j, so only rows j0.. take part.
        MatD rhs = MatD::Zero(c - j0, n);
        for (int64_t j = 0; j < n; ++j) rhs(j, j) = 1;
        l.bottomRightCorner(c - j0, c - j0).triangularView<Eigen::Lower>().solveInPlace(rhs);
        inv.block(j0, j0, c - j0, n) = rhs;
      },
      threads);
  return inv;
}

// Upper-triangular U with U^T U = H^-1 (the factor SparseGPT eliminates
// with), from a single Cholesky: with P the reversal permutation and
// P H P = L L^T, U = P L^-1 P. Returned in float32. H is consumed: it is
// reversed and factorised in place, so at most H and L^-1 are held at once.
Result<MatF> InverseUpperFactor(MatD h, int threads) {
  h.reverseInPlace();
  Eigen::LLT<Eigen::Ref<MatD>> llt(h);  // L overwrites the lower triangle of h
  if (llt.info() != Eigen::Success) return InvalidArgument("H is not positive definite");
  h.triangularView<Eigen::StrictlyUpper>().setZero();
  MatD inv = LowerInverse(h, threads);
  h = MatD();
  inv.reverseInPlace();
  return MatF(inv.cast<float>());
}

// [H^-1]_ii from H = L L^T: the squared norms of the columns of L^-1.
Result<VecD> InverseDiagonal(const MatD& h, int threads) {
  Eigen::LLT<MatD> llt(h);
  if (llt.info() != Eigen::Success) return InvalidArgument("H is not positive definite");
  const MatD l = llt.matrixL();
  return VecD(LowerInverse(l, threads).colwise().squaredNorm().transpose());
}

// Exact re-fit of rows [r0, r1) of group matrix `hd`: w'_K = (Hd_KK)^-1 (Hd w)_K.
// Consecutive rows with the same kept set share one factorisation (every row
// of a channel-pruned layer has the same one).
Status ExactRows(const MatD& hd, const MatF& w, const std::vector<uint8_t>& keep, int64_t r0, int64_t r1, MatF* out) {
  const int64_t c = hd.rows();
  std::vector<int64_t> kept, last;
  Eigen::LLT<MatD> llt;
  for (int64_t r = r0; r < r1; ++r) {
    kept.clear();
    for (int64_t j = 0; j < c; ++j) {
      if (keep[r * c + j]) kept.push_back(j);
    }
    out->row(r).setZero();
    if (kept.empty()) continue;
    const int64_t k = static_cast<int64_t>(kept.size());
    if (kept != last) {
      MatD hk(k, k);
      for (int64_t a = 0; a < k; ++a) {
        for (int64_t b = 0; b < k; ++b) hk(a, b) = hd(kept[a], kept[b]);
      }
      llt.compute(hk);
      if (llt.info() != Eigen::Success) {
        return InvalidArgument("H restricted to the kept columns of row " + std::to_string(r) +
                               " is not positive definite (raise --damp)");
      }
      last = kept;
    }
    const VecD wd = w.row(r).transpose().cast<double>();
    const VecD hw = hd * wd;
    VecD rhs(k);
    for (int64_t a = 0; a < k; ++a) rhs(a) = hw(kept[a]);
    const VecD x = llt.solve(rhs);
    for (int64_t a = 0; a < k; ++a) (*out)(r, kept[a]) = static_cast<float>(x(a));
  }
  return Status::Ok();
}

// SparseGPT's elimination of rows [r0, r1): columns are visited left to
// right; a pruned weight's error (w - 0) / U_jj is spread over the later
// columns of its row along U's row j. Updates inside a block of columns are
// immediate, updates to later blocks are batched into one matrix product.
void ObsRows(const MatF& u, const std::vector<uint8_t>& keep, int64_t block, int64_t r0, int64_t r1, MatF* w) {
  const int64_t c = u.rows(), n = r1 - r0;
  MatF rows = w->middleRows(r0, n);
  for (int64_t i1 = 0; i1 < c; i1 += block) {
    const int64_t i2 = std::min(c, i1 + block), b = i2 - i1;
    MatF err = MatF::Zero(n, b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t j = i1 + i;
      const float d = u(j, j);
      for (int64_t r = 0; r < n; ++r) {
        const float v = rows(r, j);
        if (keep[(r0 + r) * c + j]) continue;
        const float e = v / d;
        err(r, i) = e;
        for (int64_t t = j + 1; t < i2; ++t) rows(r, t) -= e * u(j, t);
        rows(r, j) = 0;  // exactly zero, not w - e * d
      }
    }
    if (i2 < c) rows.rightCols(c - i2).noalias() -= err * u.block(i1, i2, b, c - i2);
  }
  w->middleRows(r0, n) = rows;
}

}  // namespace

std::string_view RefitMethodName(RefitMethod m) {
  switch (m) {
    case RefitMethod::kAuto: return "auto";
    case RefitMethod::kExact: return "exact";
    case RefitMethod::kObs: return "obs";
  }
  return "?";
}

GramAccumulator::GramAccumulator(int64_t columns, int64_t chunk_rows)
    : columns_(std::max<int64_t>(0, columns)),
      chunk_rows_(std::max<int64_t>(1, chunk_rows)),
      lower_(static_cast<size_t>(columns_ * columns_), 0.0) {}

void GramAccumulator::Flush() {
  if (pending_ == 0) return;
  const int64_t c = columns_;
  // The chunk product lives only during the flush, so an accumulator holds H
  // and one chunk of rows between batches.
  MatF s = MatF::Zero(c, c);
  Eigen::Map<const MatF> x(buffer_.data(), pending_, c);
  s.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
  // Row-major storage: the lower triangle of row i is [i*c, i*c + i].
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = 0; j <= i; ++j) lower_[i * c + j] += s(i, j);
  }
  rows_ += pending_;
  pending_ = 0;
  buffer_.clear();
}

Status GramAccumulator::Add(std::span<const float> values, int64_t row_count) {
  if (row_count < 0 || static_cast<int64_t>(values.size()) != row_count * columns_) {
    return InvalidArgument("Gram accumulator: " + std::to_string(values.size()) + " values are not " +
                           std::to_string(row_count) + " rows of " + std::to_string(columns_));
  }
  for (float v : values) {
    if (!std::isfinite(v)) return InvalidArgument("Gram accumulator: input rows hold a non-finite value");
  }
  int64_t r = 0;
  while (r < row_count) {
    const int64_t take = std::min(row_count - r, chunk_rows_ - pending_);
    buffer_.insert(buffer_.end(), values.begin() + r * columns_, values.begin() + (r + take) * columns_);
    pending_ += take;
    r += take;
    if (pending_ == chunk_rows_) Flush();
  }
  return Status::Ok();
}

std::vector<double> GramAccumulator::Gram() const {
  const int64_t c = columns_;
  std::vector<double> h = lower_;
  if (pending_ > 0) {
    MatF s = MatF::Zero(c, c);
    Eigen::Map<const MatF> x(buffer_.data(), pending_, c);
    s.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
    for (int64_t i = 0; i < c; ++i) {
      for (int64_t j = 0; j <= i; ++j) h[i * c + j] += s(i, j);
    }
  }
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = i + 1; j < c; ++j) h[i * c + j] = h[j * c + i];
  }
  return h;
}

CrossGramAccumulator::CrossGramAccumulator(int64_t columns, int64_t chunk_rows)
    : columns_(std::max<int64_t>(0, columns)),
      chunk_rows_(std::max<int64_t>(1, chunk_rows)),
      total_(static_cast<size_t>(columns_ * columns_), 0.0) {}

void CrossGramAccumulator::Flush() {
  if (pending_ == 0) return;
  const int64_t c = columns_;
  Eigen::Map<const MatF> a(a_.data(), pending_, c), b(b_.data(), pending_, c);
  const MatF p = a.transpose() * b;
  for (int64_t i = 0; i < c * c; ++i) total_[i] += p.data()[i];
  rows_ += pending_;
  pending_ = 0;
  a_.clear();
  b_.clear();
}

Status CrossGramAccumulator::Add(std::span<const float> a, std::span<const float> b, int64_t row_count) {
  if (row_count < 0 || static_cast<int64_t>(a.size()) != row_count * columns_ || a.size() != b.size()) {
    return InvalidArgument("cross Gram accumulator: " + std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                           " values are not two sets of " + std::to_string(row_count) + " rows of " +
                           std::to_string(columns_));
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return InvalidArgument("cross Gram accumulator: a non-finite value");
  }
  int64_t r = 0;
  while (r < row_count) {
    const int64_t take = std::min(row_count - r, chunk_rows_ - pending_);
    a_.insert(a_.end(), a.begin() + r * columns_, a.begin() + (r + take) * columns_);
    b_.insert(b_.end(), b.begin() + r * columns_, b.begin() + (r + take) * columns_);
    pending_ += take;
    r += take;
    if (pending_ == chunk_rows_) Flush();
  }
  return Status::Ok();
}

std::vector<double> CrossGramAccumulator::Cross() const {
  const int64_t c = columns_;
  std::vector<double> t = total_;
  if (pending_ > 0) {
    Eigen::Map<const MatF> a(a_.data(), pending_, c), b(b_.data(), pending_, c);
    const MatF p = a.transpose() * b;
    for (int64_t i = 0; i < c * c; ++i) t[i] += p.data()[i];
  }
  return t;
}

Result<RefitResult> RefitWeights(const TensorView& weights, int output_axis, std::span<const uint8_t> keep,
                                 std::span<const double> gram, int64_t groups, const RefitOptions& o,
                                 const RefitTarget* target) {
  MP_ASSIGN_OR_RETURN(RowLayout l, LayoutOf(weights, output_axis));
  MP_RETURN_IF_ERROR(CheckArgs(weights, l, gram, groups, o.damp));
  if (static_cast<int64_t>(keep.size()) != weights.size()) {
    return InvalidArgument("re-fit: the mask has " + std::to_string(keep.size()) + " entries for " +
                           std::to_string(weights.size()) + " weights");
  }
  if (o.block < 1) return InvalidArgument("re-fit: the OBS block must be at least 1 column");
  const int64_t rows = l.rows, c = l.columns(), per = rows / groups;
  if (target && (target->cross.size() != gram.size() || target->dense_gram.size() != gram.size())) {
    return InvalidArgument("re-fit: the target matrices do not match the Gram matrices in size");
  }
  RefitResult result;
  result.method = o.method == RefitMethod::kAuto ? (c <= o.exact_max_columns ? RefitMethod::kExact : RefitMethod::kObs)
                                                 : o.method;
  // Row-major copies: original, kept (pruned zeroed) and re-fitted.
  MatF w(rows, c);
  std::vector<uint8_t> k(static_cast<size_t>(rows * c));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) {
      const int64_t e = l.Element(r, j);
      w(r, j) = static_cast<float>(weights.AsDouble(e));
      k[r * c + j] = keep[e] != 0 && w(r, j) != 0;
    }
  }
  // With a dense target the fit starts from w*, the unconstrained optimum;
  // ||X' v - X w||^2 = ||X' (v - w*)||^2 + const then (up to the damping), so
  // the same solvers apply with w* in place of w.
  MatF start = w;
  if (target) {
    for (int64_t g = 0; g < groups; ++g) {
      const MatD hd = Dampened(gram, g, c, o.damp);
      Eigen::LLT<MatD> llt(hd);
      if (llt.info() != Eigen::Success) return InvalidArgument("re-fit: dampened H is not positive definite (raise --damp)");
      Eigen::Map<const MatD> cross(target->cross.data() + g * c * c, c, c);
      const MatD wg = w.middleRows(g * per, per).cast<double>().transpose();  // c x per
      const MatD rhs = cross * wg + (hd - Eigen::Map<const MatD>(gram.data() + g * c * c, c, c)) * wg;
      start.middleRows(g * per, per) = llt.solve(rhs).transpose().cast<float>();
    }
  }
  MatF fitted(rows, c);
  // OBS rows go in bigger blocks: every block's lazy updates repack U's rows,
  // so small blocks would spend their time copying U rather than multiplying.
  const int64_t kRowBlock = result.method == RefitMethod::kObs ? 256 : 16;
  for (int64_t g = 0; g < groups; ++g) {
    MatD hd = Dampened(gram, g, c, o.damp);
    const int64_t g0 = g * per, blocks = (per + kRowBlock - 1) / kRowBlock;
    std::vector<Status> status(static_cast<size_t>(blocks));
    if (result.method == RefitMethod::kExact) {
      ParallelFor(
          blocks,
          [&](int64_t b) {
            const int64_t r0 = g0 + b * kRowBlock;
            status[b] = ExactRows(hd, start, k, r0, std::min(g0 + per, r0 + kRowBlock), &fitted);
          },
          o.threads);
    } else {
      auto u = InverseUpperFactor(std::move(hd), o.threads);
      if (!u.ok()) return InvalidArgument("re-fit: dampened H of group " + std::to_string(g) + " is not positive definite (raise --damp)");
      const MatF& uf = *u;
      fitted.middleRows(g0, per) = start.middleRows(g0, per);
      ParallelFor(
          blocks,
          [&](int64_t b) {
            const int64_t r0 = g0 + b * kRowBlock;
            ObsRows(uf, k, o.block, r0, std::min(g0 + per, r0 + kRowBlock), &fitted);
          },
          o.threads);
    }
    for (const Status& s : status) MP_RETURN_IF_ERROR(s.WithPrefix("re-fit"));
  }

  // Errors on every row, or every step-th row of big layers (the quadratic
  // forms cost rows * columns^2, as much as the re-fit itself).
  const int64_t step = o.error_rows > 0 && rows > o.error_rows ? (rows + o.error_rows - 1) / o.error_rows : 1;
  double signal = 0, before = 0, after = 0;
  for (int64_t g = 0; g < groups; ++g) {
    std::vector<int64_t> pick;
    for (int64_t r = g * per; r < (g + 1) * per; ++r) {
      if (r % step == 0) pick.push_back(r);
    }
    if (pick.empty()) continue;
    const int64_t n = static_cast<int64_t>(pick.size());
    MatD d(3 * n, c);  // w, pruned - w, fitted - w
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < c; ++j) {
        const double wv = w(pick[i], j);
        d(i, j) = wv;
        d(n + i, j) = (k[pick[i] * c + j] ? wv : 0.0) - wv;
        d(2 * n + i, j) = static_cast<double>(fitted(pick[i], j)) - wv;
      }
    }
    Eigen::Map<const MatD> h(gram.data() + g * c * c, c, c);
    VecD q(3 * n);
    if (target) {
      // ||X' v - X w||^2 = v^T H' v - 2 v^T C w + w^T G w for v = pruned, fitted.
      Eigen::Map<const MatD> cross(target->cross.data() + g * c * c, c, c);
      Eigen::Map<const MatD> dense(target->dense_gram.data() + g * c * c, c, c);
      const MatD wv = d.topRows(n);
      const VecD wgw = (wv * dense).cwiseProduct(wv).rowwise().sum();
      q.head(n) = wgw;
      for (int part = 1; part <= 2; ++part) {
        const MatD v = d.middleRows(part * n, n) + wv;
        q.segment(part * n, n) = (v * h).cwiseProduct(v).rowwise().sum() -
                                 2 * (v * cross).cwiseProduct(wv).rowwise().sum() + wgw;
      }
    } else if (c <= o.exact_max_columns) {
      q = (d * h).cwiseProduct(d).rowwise().sum();
    } else {
      const MatF df = d.cast<float>(), hf = h.cast<float>();
      const int64_t chunks = (3 * n + 31) / 32;
      ParallelFor(
          chunks,
          [&](int64_t b) {
            const int64_t a0 = b * 32, m = std::min<int64_t>(32, 3 * n - a0);
            const MatF p = df.middleRows(a0, m) * hf;
            for (int64_t i = 0; i < m; ++i) q(a0 + i) = p.row(i).cast<double>().dot(df.row(a0 + i).cast<double>());
          },
          o.threads);
    }
    signal += q.head(n).sum();
    before += q.segment(n, n).sum();
    after += q.tail(n).sum();
  }
  const auto rel = [&](double e) { return signal > 0 ? std::sqrt(std::max(0.0, e) / signal) : 0.0; };
  result.error_before = rel(before);
  result.error_after = rel(after);
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t r = g * per; r < (g + 1) * per; ++r) result.error_rows_used += r % step == 0;
  }
  result.weights.resize(static_cast<size_t>(weights.size()));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < c; ++j) result.weights[l.Element(r, j)] = k[r * c + j] ? fitted(r, j) : 0.0f;
  }
  return result;
}

Result<std::vector<float>> ObsSaliency(const TensorView& weights, int output_axis, std::span<const double> gram,
                                       int64_t groups, double damp, int threads) {
  MP_ASSIGN_OR_RETURN(RowLayout l, LayoutOf(weights, output_axis));
  MP_RETURN_IF_ERROR(CheckArgs(weights, l, gram, groups, damp));
  const int64_t c = l.columns(), per = l.rows / groups;
  std::vector<float> s(static_cast<size_t>(weights.size()));
  for (int64_t g = 0; g < groups; ++g) {
    auto diag = InverseDiagonal(Dampened(gram, g, c, damp), threads);
    if (!diag.ok()) return InvalidArgument("OBS saliency: dampened H of group " + std::to_string(g) + " is not positive definite (raise --damp)");
    for (int64_t r = g * per; r < (g + 1) * per; ++r) {
      for (int64_t j = 0; j < c; ++j) {
        const int64_t e = l.Element(r, j);
        const double w = weights.AsDouble(e);
        s[e] = static_cast<float>(w * w / (*diag)(j));
      }
    }
  }
  return s;
}

}  // namespace modelpress
