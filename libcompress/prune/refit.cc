// Least-squares re-fit of pruned layers: the Gram accumulator, the exact
// per-row solve, SparseGPT's blocked OBS elimination and the OBS saliency.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#include "modelpress/parallel.h"
#include "modelpress/reconstruct.h"
#include "modelpress/sparsity.h"

namespace modelpress {
namespace {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VecD = Eigen::VectorXd;
using MapD = Eigen::Map<MatD>;

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

// The inverse of a lower-triangular L, in place: L^-1 replaces L in the
// lower triangle of `a` (diagonal included) and the strict upper triangle is
// not touched. Column block j0 of L^-1 is zero above row j0 and reads only
// columns j0.. of L, so the blocks are solved left to right in waves: a
// wave's blocks are solved in parallel into scratch and written back once
// all are done, which overwrites only columns no later block reads.
void InvertLowerInPlace(MapD a, int threads) {
  const int64_t c = a.rows();
  const int64_t kBlock = 64;
  const int64_t blocks = (c + kBlock - 1) / kBlock;
  const int64_t wave = threads > 0 ? threads : DefaultThreads();
  std::vector<MatD> scratch(static_cast<size_t>(wave));
  for (int64_t b0 = 0; b0 < blocks; b0 += wave) {
    const int64_t m = std::min(wave, blocks - b0);
    ParallelFor(
        m,
        [&](int64_t i) {
          const int64_t j0 = (b0 + i) * kBlock, n = std::min(kBlock, c - j0);
          MatD& rhs = scratch[i];
          rhs = MatD::Zero(c - j0, n);
          for (int64_t j = 0; j < n; ++j) rhs(j, j) = 1;
          a.bottomRightCorner(c - j0, c - j0).triangularView<Eigen::Lower>().solveInPlace(rhs);
        },
        threads);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t j0 = (b0 + i) * kBlock, n = std::min(kBlock, c - j0);
      const MatD& rhs = scratch[i];
      for (int64_t j = 0; j < n; ++j) {  // the diagonal block's lower triangle only
        for (int64_t t = 0; t <= j; ++t) a(j0 + j, j0 + t) = rhs(j, t);
      }
      a.block(j0 + n, j0, c - j0 - n, n) = rhs.bottomRows(c - j0 - n);
    }
  }
}

// H's diagonal plus the damping: damp * mean(diag H), with a zero diagonal
// entry first set to 1 (as Dampened does).
VecD DampenedDiagonal(const MapD& h, double damp) {
  const int64_t c = h.rows();
  double mean = c > 0 ? h.diagonal().mean() : 0.0;
  VecD d = h.diagonal();
  for (int64_t i = 0; i < c; ++i) {
    if (d(i) == 0) d(i) = 1;
  }
  if (mean == 0) mean = 1;
  d.array() += damp * mean;
  return d;
}

// Puts H back into `h` after FactorInPlace or a dampening of the diagonal:
// the strict upper triangle is copied from the strict lower one (H is
// symmetric), the diagonal from `diag`.
void RestoreGram(MapD h, const VecD& diag) {
  const int64_t c = h.rows();
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = i + 1; j < c; ++j) h(i, j) = h(j, i);
  }
  h.diagonal() = diag;
}

// Upper-triangular U with U^T U = Hd^-1 (Hd: H with the dampened diagonal
// `dd`), the factor SparseGPT eliminates with, from a single Cholesky: with P
// the reversal permutation and P Hd P = L L^T, U = P L^-1 P. Computed in H's
// own storage: H is reversed, factorised in place (L overwrites the lower
// triangle) and L is inverted in place, while the strict upper triangle keeps
// P H P; reversing again leaves U in the upper triangle (diagonal included)
// and H's strict lower triangle below it. RestoreGram undoes it, also after
// a failure.
Status FactorInPlace(MapD h, const VecD& dd, int threads) {
  h.reverseInPlace();
  h.diagonal() = dd.reverse();
  Eigen::LLT<Eigen::Ref<MatD>> llt(h);
  const bool ok = llt.info() == Eigen::Success;
  if (ok) InvertLowerInPlace(h, threads);
  h.reverseInPlace();
  return ok ? Status::Ok() : InvalidArgument("H is not positive definite");
}

// [H^-1]_ii from H = L L^T: the squared norms of the columns of L^-1. H is
// consumed: factorised and inverted in its own storage.
Result<VecD> InverseDiagonal(MatD h, int threads) {
  Eigen::LLT<Eigen::Ref<MatD>> llt(h);  // L overwrites the lower triangle of h
  if (llt.info() != Eigen::Success) return InvalidArgument("H is not positive definite");
  InvertLowerInPlace(MapD(h.data(), h.rows(), h.cols()), threads);
  h.triangularView<Eigen::StrictlyUpper>().setZero();
  return VecD(h.colwise().squaredNorm().transpose());
}

// Exact re-fit of a block of rows `w` (row-major, `keep` in the same layout)
// with group matrix `hd`: w'_K = (Hd_KK)^-1 (Hd w)_K. Consecutive rows with
// the same kept set share one factorisation (every row of a channel-pruned
// layer has the same one). `first_row` is the block's first row in the
// tensor, for messages.
Status ExactRows(const MapD& hd, const MatF& w, const std::vector<uint8_t>& keep, int64_t first_row, MatF* out) {
  const int64_t c = hd.rows(), n = w.rows();
  std::vector<int64_t> kept, last;
  Eigen::LLT<MatD> llt;
  for (int64_t r = 0; r < n; ++r) {
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
        return InvalidArgument("H restricted to the kept columns of row " + std::to_string(first_row + r) +
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

// SparseGPT's elimination on a block of rows (row-major, `keep` in the same
// layout), in place: columns are visited left to right; a pruned weight's
// error (w - 0) / U_jj is spread over the later columns of its row along U's
// row j. Updates inside a block of columns are immediate, updates to later
// blocks are batched into one matrix product. U is read from the upper
// triangle of `u` (float64) and used in float32, one strip of `block` rows at
// a time.
void ObsRows(const MapD& u, const std::vector<uint8_t>& keep, int64_t block, MatF* rows) {
  const int64_t c = u.rows(), n = rows->rows();
  for (int64_t i1 = 0; i1 < c; i1 += block) {
    const int64_t i2 = std::min(c, i1 + block), b = i2 - i1;
    const MatF strip = u.block(i1, i1, b, c - i1).cast<float>();  // U's rows i1..i2, columns i1..
    MatF err = MatF::Zero(n, b);
    for (int64_t i = 0; i < b; ++i) {
      const int64_t j = i1 + i;
      const float d = strip(i, i);
      for (int64_t r = 0; r < n; ++r) {
        const float v = (*rows)(r, j);
        if (keep[r * c + j]) continue;
        const float e = v / d;
        err(r, i) = e;
        for (int64_t t = j + 1; t < i2; ++t) (*rows)(r, t) -= e * strip(i, t - i1);
        (*rows)(r, j) = 0;  // exactly zero, not w - e * d
      }
    }
    if (i2 < c) rows->rightCols(c - i2).noalias() -= err * strip.rightCols(c - i2);
  }
}

// Checks the arguments of RefitWeights and RefitWeightsInPlace.
Status CheckRefitArgs(const TensorView& w, const RowLayout& l, std::span<const uint8_t> keep,
                      std::span<const double> gram, int64_t groups, const RefitOptions& o, const RefitTarget* target) {
  MP_RETURN_IF_ERROR(CheckArgs(w, l, gram, groups, o.damp));
  if (static_cast<int64_t>(keep.size()) != w.size()) {
    return InvalidArgument("re-fit: the mask has " + std::to_string(keep.size()) + " entries for " +
                           std::to_string(w.size()) + " weights");
  }
  if (o.block < 1) return InvalidArgument("re-fit: the OBS block must be at least 1 column");
  if (target && (target->cross.size() != gram.size() || target->dense_gram.size() != gram.size())) {
    return InvalidArgument("re-fit: the target matrices do not match the Gram matrices in size");
  }
  return Status::Ok();
}

// The relative errors' sums over the measured rows of one group: ||X w||^2,
// and the squared output errors with the pruned and with the re-fitted weights.
struct ErrorSums {
  double signal = 0, before = 0, after = 0;
};

// The rows the errors are measured on, stacked as d = [w; pruned - w;
// fitted - w] (n rows each). Float32 for big layers without a target, whose
// products are float32 (w and pruned - w are exact in it; fitted - w is
// rounded as a float64 difference), float64 otherwise. Filled while the rows
// are re-fitted, so no other copy of them is kept.
class ErrorRows {
 public:
  ErrorRows(int64_t n, int64_t c, bool single) : n_(n), single_(single) {
    if (single) {
      f_.resize(3 * n, c);
    } else {
      d_.resize(3 * n, c);
    }
  }
  int64_t size() const { return n_; }
  bool single() const { return single_; }
  const MatD& d() const { return d_; }
  const MatF& f() const { return f_; }

  // Row p from the original weights and their mask.
  void SetOriginal(int64_t p, const float* w, const uint8_t* keep) {
    for (int64_t j = 0; j < Columns(); ++j) {
      const double wv = w[j];
      Put(p, j, wv);
      Put(n_ + p, j, (keep[j] ? wv : 0.0) - wv);
    }
  }
  // Row p's re-fitted weights (after SetOriginal).
  void SetFitted(int64_t p, const float* fitted) {
    for (int64_t j = 0; j < Columns(); ++j) {
      const double wv = single_ ? static_cast<double>(f_(p, j)) : d_(p, j);
      Put(2 * n_ + p, j, static_cast<double>(fitted[j]) - wv);
    }
  }

 private:
  int64_t Columns() const { return single_ ? f_.cols() : d_.cols(); }
  void Put(int64_t a, int64_t j, double v) {
    if (single_) {
      f_(a, j) = static_cast<float>(v);
    } else {
      d_(a, j) = v;
    }
  }

  int64_t n_ = 0;
  bool single_ = false;
  MatD d_;
  MatF f_;
};

// The error sums of one group's measured rows. `h` is the group's undampened
// H; `cross` and `dense` are X'^T X and X^T X with a target.
ErrorSums GroupErrors(const ErrorRows& rows, const MapD& h, const double* cross, const double* dense,
                      const RefitOptions& o) {
  const int64_t n = rows.size(), c = h.rows();
  ErrorSums s;
  if (n == 0) return s;
  VecD q(3 * n);
  if (!rows.single()) {
    const MatD& d = rows.d();
    if (cross) {
      // ||X' v - X w||^2 = v^T H' v - 2 v^T C w + w^T G w for v = pruned, fitted.
      Eigen::Map<const MatD> cm(cross, c, c), dm(dense, c, c);
      const MatD wv = d.topRows(n);
      const VecD wgw = (wv * dm).cwiseProduct(wv).rowwise().sum();
      q.head(n) = wgw;
      for (int part = 1; part <= 2; ++part) {
        const MatD v = d.middleRows(part * n, n) + wv;
        q.segment(part * n, n) = (v * h).cwiseProduct(v).rowwise().sum() -
                                 2 * (v * cm).cwiseProduct(wv).rowwise().sum() + wgw;
      }
    } else {
      q = (d * h).cwiseProduct(d).rowwise().sum();
    }
  } else {
    // Float32 products, with H converted one panel of rows at a time (H is
    // symmetric, so rows k0.. of H are its columns k0..).
    const MatF& df = rows.f();
    const int64_t kPanel = 128, panels = (c + kPanel - 1) / kPanel;
    std::vector<VecD> part(static_cast<size_t>(panels));
    ParallelFor(
        panels,
        [&](int64_t p) {
          const int64_t k0 = p * kPanel, kb = std::min(kPanel, c - k0);
          const MatF hp = h.middleRows(k0, kb).cast<float>();
          const MatF t = df * hp.transpose();  // columns k0.. of d H
          VecD& qp = part[p];
          qp.setZero(3 * n);
          for (int64_t a = 0; a < 3 * n; ++a) {
            for (int64_t k = 0; k < kb; ++k) qp(a) += static_cast<double>(t(a, k)) * df(a, k0 + k);
          }
        },
        o.threads);
    q.setZero();
    for (const VecD& v : part) q += v;
  }
  s.signal = q.head(n).sum();
  s.before = q.segment(n, n).sum();
  s.after = q.tail(n).sum();
  return s;
}

// The re-fit itself, on float32 weights `w` (laid out as `l`) in place, with
// `gram` as working storage (it holds H again on return, also on error).
Result<RefitResult> RefitInPlace(std::span<float> w, const RowLayout& l, std::span<const uint8_t> keep,
                                 std::span<double> gram, int64_t groups, const RefitOptions& o,
                                 const RefitTarget* target) {
  const int64_t rows = l.rows, c = l.columns(), per = rows / groups;
  RefitResult result;
  result.method = o.method == RefitMethod::kAuto ? (c <= o.exact_max_columns ? RefitMethod::kExact : RefitMethod::kObs)
                                                 : o.method;
  const bool obs = result.method == RefitMethod::kObs;
  // OBS rows go in bigger blocks: every block's lazy updates convert U's rows,
  // so small blocks would spend their time copying U rather than multiplying.
  const int64_t kRowBlock = obs ? 256 : 16;
  // Errors on every row, or every step-th row of big layers (the quadratic
  // forms cost rows * columns^2, as much as the re-fit itself).
  const int64_t step = o.error_rows > 0 && rows > o.error_rows ? (rows + o.error_rows - 1) / o.error_rows : 1;
  ErrorSums total;
  for (int64_t g = 0; g < groups; ++g) {
    MapD h(gram.data() + g * c * c, c, c);
    const VecD diag = h.diagonal();
    const VecD dd = DampenedDiagonal(h, o.damp);
    const int64_t g0 = g * per;
    // With a dense target the fit starts from w*, the unconstrained optimum;
    // ||X' v - X w||^2 = ||X' (v - w*)||^2 + const then (up to the damping),
    // so the same solvers apply with w* in place of w. w* = Hd^-1 (C w + (Hd -
    // H) w) is solved with a Cholesky of Hd (exact) or as U^T U times it (OBS).
    const double* cross = target ? target->cross.data() + g * c * c : nullptr;
    std::optional<Eigen::LLT<MatD>> start_llt;
    if (obs) {
      if (!FactorInPlace(h, dd, o.threads).ok()) {
        RestoreGram(h, diag);
        return InvalidArgument("re-fit: dampened H of group " + std::to_string(g) +
                               " is not positive definite (raise --damp)");
      }
    } else {
      h.diagonal() = dd;
      if (target) {
        start_llt.emplace(MatD(h));
        if (start_llt->info() != Eigen::Success) {
          h.diagonal() = diag;
          return InvalidArgument("re-fit: dampened H is not positive definite (raise --damp)");
        }
      }
    }
    // The measured rows of this group: every step-th row of the tensor.
    const int64_t first_pick = (g0 + step - 1) / step * step;
    const int64_t picks = first_pick < g0 + per ? (g0 + per - 1 - first_pick) / step + 1 : 0;
    ErrorRows measured(picks, c, !target && c > o.exact_max_columns);

    const int64_t blocks = (per + kRowBlock - 1) / kRowBlock;
    std::vector<Status> status(static_cast<size_t>(blocks));
    ParallelFor(
        blocks,
        [&](int64_t b) {
          const int64_t r0 = g0 + b * kRowBlock, n = std::min(g0 + per, r0 + kRowBlock) - r0;
          // The block's rows, row-major: original, kept (pruned and zero weights
          // dropped) and, once re-fitted, the result.
          MatF cur(n, c);
          std::vector<uint8_t> k(static_cast<size_t>(n * c));
          for (int64_t r = 0; r < n; ++r) {
            for (int64_t j = 0; j < c; ++j) {
              const int64_t e = l.Element(r0 + r, j);
              cur(r, j) = w[e];
              k[r * c + j] = keep[e] != 0 && cur(r, j) != 0;
            }
          }
          for (int64_t r = 0; r < n; ++r) {
            if ((r0 + r) % step != 0) continue;
            measured.SetOriginal((r0 + r - first_pick) / step, cur.row(r).data(), k.data() + r * c);
          }
          if (target) {
            Eigen::Map<const MatD> cm(cross, c, c);
            const MatD wg = cur.cast<double>().transpose();  // c x n
            MatD start = cm * wg + (dd - diag).asDiagonal() * wg;
            if (obs) {
              const MatD t = h.triangularView<Eigen::Upper>() * start;
              start.noalias() = h.triangularView<Eigen::Upper>().transpose() * t;
            } else {
              start = start_llt->solve(start);
            }
            cur = start.transpose().cast<float>();
          }
          if (obs) {
            ObsRows(h, k, o.block, &cur);
          } else {
            MatF out(n, c);
            status[b] = ExactRows(h, cur, k, r0, &out);
            if (!status[b].ok()) return;
            cur = std::move(out);
          }
          for (int64_t r = 0; r < n; ++r) {
            for (int64_t j = 0; j < c; ++j) w[l.Element(r0 + r, j)] = k[r * c + j] ? cur(r, j) : 0.0f;
            if ((r0 + r) % step == 0) measured.SetFitted((r0 + r - first_pick) / step, cur.row(r).data());
          }
        },
        o.threads);
    if (obs) {
      RestoreGram(h, diag);
    } else {
      h.diagonal() = diag;
    }
    for (const Status& s : status) MP_RETURN_IF_ERROR(s.WithPrefix("re-fit"));

    const ErrorSums e = GroupErrors(measured, h, cross,
                                    target ? target->dense_gram.data() + g * c * c : nullptr, o);
    total.signal += e.signal;
    total.before += e.before;
    total.after += e.after;
    result.error_rows_used += picks;
  }
  const auto rel = [&](double e) { return total.signal > 0 ? std::sqrt(std::max(0.0, e) / total.signal) : 0.0; };
  result.error_before = rel(total.before);
  result.error_after = rel(total.after);
  return result;
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

namespace {

// Adds X^T X of `n` rows `x` (row-major float32, c columns) to the lower
// triangle of `lower` (row-major c x c float64), one panel of rows of the
// product at a time: each panel is a float32 product, and only a panel
// (kPanel x c) is held at once, not a c x c matrix.
void AddLowerGram(const float* x, int64_t n, int64_t c, double* lower) {
  const int64_t kPanel = 256;
  Eigen::Map<const MatF> xm(x, n, c);
  for (int64_t i0 = 0; i0 < c; i0 += kPanel) {
    const int64_t i1 = std::min(c, i0 + kPanel);
    const MatF p = xm.middleCols(i0, i1 - i0).transpose() * xm.leftCols(i1);  // rows i0..i1, columns 0..i1
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j <= i; ++j) lower[i * c + j] += p(i - i0, j);
    }
  }
}

// Adds A^T B of `n` paired rows (row-major float32, c columns each) to
// `total` (row-major c x c float64), one panel of rows at a time as above.
void AddCross(const float* a, const float* b, int64_t n, int64_t c, double* total) {
  const int64_t kPanel = 256;
  Eigen::Map<const MatF> am(a, n, c), bm(b, n, c);
  for (int64_t i0 = 0; i0 < c; i0 += kPanel) {
    const int64_t i1 = std::min(c, i0 + kPanel);
    const MatF p = am.middleCols(i0, i1 - i0).transpose() * bm;
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j < c; ++j) total[i * c + j] += p(i - i0, j);
    }
  }
}

}  // namespace

void GramAccumulator::Flush() {
  if (pending_ == 0) return;
  AddLowerGram(buffer_.data(), pending_, columns_, lower_.data());
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
  if (pending_ > 0) AddLowerGram(buffer_.data(), pending_, c, h.data());
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = i + 1; j < c; ++j) h[i * c + j] = h[j * c + i];
  }
  return h;
}

std::vector<double> GramAccumulator::ReleaseGram() {
  Flush();  // adds the pending rows as Gram() does
  const int64_t c = columns_;
  std::vector<double> h = std::move(lower_);
  for (int64_t i = 0; i < c; ++i) {
    for (int64_t j = i + 1; j < c; ++j) h[i * c + j] = h[j * c + i];
  }
  *this = GramAccumulator(0);
  return h;
}

CrossGramAccumulator::CrossGramAccumulator(int64_t columns, int64_t chunk_rows)
    : columns_(std::max<int64_t>(0, columns)),
      chunk_rows_(std::max<int64_t>(1, chunk_rows)),
      total_(static_cast<size_t>(columns_ * columns_), 0.0) {}

void CrossGramAccumulator::Flush() {
  if (pending_ == 0) return;
  AddCross(a_.data(), b_.data(), pending_, columns_, total_.data());
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
  if (pending_ > 0) AddCross(a_.data(), b_.data(), pending_, c, t.data());
  return t;
}

std::vector<double> CrossGramAccumulator::ReleaseCross() {
  Flush();
  std::vector<double> t = std::move(total_);
  *this = CrossGramAccumulator(0);
  return t;
}

Result<RefitResult> RefitWeights(const TensorView& weights, int output_axis, std::span<const uint8_t> keep,
                                 std::span<const double> gram, int64_t groups, const RefitOptions& o,
                                 const RefitTarget* target) {
  MP_ASSIGN_OR_RETURN(RowLayout l, LayoutOf(weights, output_axis));
  MP_RETURN_IF_ERROR(CheckRefitArgs(weights, l, keep, gram, groups, o, target));
  std::vector<float> w(static_cast<size_t>(weights.size()));
  for (int64_t e = 0; e < weights.size(); ++e) w[e] = static_cast<float>(weights.AsDouble(e));
  std::vector<double> h(gram.begin(), gram.end());
  MP_ASSIGN_OR_RETURN(RefitResult result, RefitInPlace(w, l, keep, h, groups, o, target));
  result.weights = std::move(w);
  return result;
}

Result<RefitResult> RefitWeightsInPlace(const MutableTensorView& weights, int output_axis,
                                        std::span<const uint8_t> keep, std::span<double> gram, int64_t groups,
                                        const RefitOptions& o, const RefitTarget* target) {
  if (weights.dtype != DType::kFloat32) {
    return InvalidArgument("in-place re-fit needs float32 weights, got " + DTypeName(weights.dtype));
  }
  const TensorView view = weights.view();
  MP_ASSIGN_OR_RETURN(RowLayout l, LayoutOf(view, output_axis));
  MP_RETURN_IF_ERROR(CheckRefitArgs(view, l, keep, gram, groups, o, target));
  return RefitInPlace(weights.span<float>(), l, keep, gram, groups, o, target);
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
