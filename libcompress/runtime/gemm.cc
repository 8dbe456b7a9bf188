// Sgemm: a blocked AVX2/FMA kernel chosen at run time, Eigen otherwise.
//
// The AVX2 path follows the usual layout of blocked GEMMs: B is packed in
// panels of 16 columns for a block of kKC rows, A in panels of 6 rows, and a
// 6x16 register tile accumulates one panel pair (fewer rows for a last
// short panel). Only the functions marked MP_AVX2 are compiled for AVX2; all
// have internal linkage and call no Eigen or standard-library templates, so
// nothing compiled for AVX2 can be picked by the linker for the portable code.
#include "runtime/gemm.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <memory>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MP_HAVE_AVX2_KERNEL 1
#define MP_AVX2 __attribute__((target("avx2,fma")))
#else
#define MP_HAVE_AVX2_KERNEL 0
#endif

namespace modelpress::runtime {
namespace {

void ApplyEpilogue(int64_t m, int64_t n, float* c, int64_t ldc, const GemmEpilogue& ep) {
  if (ep.row_bias == nullptr && ep.col_bias == nullptr && !ep.relu) return;
  for (int64_t i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    const float bias = ep.row_bias != nullptr ? ep.row_bias[i] : 0.0f;
    if (ep.col_bias != nullptr) {
      for (int64_t j = 0; j < n; ++j) row[j] += ep.col_bias[j];
    }
    if (ep.relu) {
      for (int64_t j = 0; j < n; ++j) {
        const float v = row[j] + bias;
        row[j] = v > 0.0f ? v : 0.0f;  // as the Relu kernel: NaN becomes 0
      }
    } else {
      for (int64_t j = 0; j < n; ++j) row[j] += bias;
    }
  }
}

void EigenGemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, const GemmEpilogue& ep, bool trans_b) {
  using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<RowMatF, 0, Stride> cm(c, m, n, Stride(ldc));
  Eigen::Map<const RowMatF, 0, Stride> am(a, m, k, Stride(lda));
  if (trans_b) {
    cm.noalias() = am * Eigen::Map<const RowMatF, 0, Stride>(b, n, k, Stride(ldb)).transpose();
  } else {
    cm.noalias() = am * Eigen::Map<const RowMatF, 0, Stride>(b, k, n, Stride(ldb));
  }
  ApplyEpilogue(m, n, c, ldc, ep);
}

// Register tile kMR x kNR; blocks of kMC rows of A, kKC of depth, kNC columns of B.
constexpr int64_t kMR = 6, kNR = 16, kKC = 256, kMC = 120, kNC = 512;
static_assert(kNR == kGemmPanel && kMC % kMR == 0);

#if MP_HAVE_AVX2_KERNEL

struct PackBuffers {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float[], Free> a{static_cast<float*>(std::aligned_alloc(64, kMC * kKC * sizeof(float)))};
  std::unique_ptr<float[], Free> b{static_cast<float*>(std::aligned_alloc(64, kNC * kKC * sizeof(float)))};
};

// B[0:kc, 0:nc] (ldb) into nc/16 panels of [kc][16], the last zero-padded.
MP_AVX2 void PackB(const float* b, int64_t ldb, int64_t kc, int64_t nc, float* out) {
  for (int64_t j = 0; j < nc; j += kNR) {
    const int64_t w = nc - j < kNR ? nc - j : kNR;
    const float* src = b + j;
    if (w == kNR) {
      for (int64_t p = 0; p < kc; ++p, out += kNR) {
        _mm256_store_ps(out, _mm256_loadu_ps(src + p * ldb));
        _mm256_store_ps(out + 8, _mm256_loadu_ps(src + p * ldb + 8));
      }
    } else {
      for (int64_t p = 0; p < kc; ++p, out += kNR) {
        int64_t q = 0;
        for (; q < w; ++q) out[q] = src[p * ldb + q];
        for (; q < kNR; ++q) out[q] = 0.0f;
      }
    }
  }
}

// The same from B's transpose: bt[0:nc, 0:kc] (ldb).
MP_AVX2 void PackBTransposed(const float* bt, int64_t ldb, int64_t kc, int64_t nc, float* out) {
  for (int64_t j = 0; j < nc; j += kNR, out += kNR * kc) {
    const int64_t w = nc - j < kNR ? nc - j : kNR;
    for (int64_t q = 0; q < kNR; ++q) {
      const float* src = bt + (j + q) * ldb;
      if (q < w) {
        for (int64_t p = 0; p < kc; ++p) out[p * kNR + q] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) out[p * kNR + q] = 0.0f;
      }
    }
  }
}

// A[0:mc, 0:kc] (lda) into mc/6 panels of [kc][6], the last zero-padded.
MP_AVX2 void PackA(const float* a, int64_t lda, int64_t mc, int64_t kc, float* out) {
  for (int64_t i = 0; i < mc; i += kMR, out += kMR * kc) {
    const int64_t h = mc - i < kMR ? mc - i : kMR;
    for (int64_t r = 0; r < kMR; ++r) {
      const float* src = a + (i + r) * lda;
      float* dst = out + r;
      if (r < h) {
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR] = src[p];
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR] = 0.0f;
      }
    }
  }
}

// Finishes one row of 16 results: adds what C holds (later k blocks), the
// bias, and clamps; stores `nr` of them.
MP_AVX2 inline void StoreRow(__m256 lo, __m256 hi, float* c, int64_t nr, bool accumulate, const float* bias,
                             const float* col_bias, bool relu) {
  if (nr == kNR) {
    if (accumulate) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(c));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(c + 8));
    }
    if (col_bias != nullptr) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(col_bias));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(col_bias + 8));
    }
    if (bias != nullptr) {
      const __m256 bv = _mm256_broadcast_ss(bias);
      lo = _mm256_add_ps(lo, bv);
      hi = _mm256_add_ps(hi, bv);
    }
    if (relu) {
      // max(x, 0) gives its second operand for a NaN x: 0, as the Relu kernel.
      lo = _mm256_max_ps(lo, _mm256_setzero_ps());
      hi = _mm256_max_ps(hi, _mm256_setzero_ps());
    }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  alignas(32) float t[kNR];
  _mm256_store_ps(t, lo);
  _mm256_store_ps(t + 8, hi);
  for (int64_t q = 0; q < nr; ++q) {
    float v = t[q];
    if (accumulate) v += c[q];
    if (col_bias != nullptr) v += col_bias[q];
    if (bias != nullptr) v += *bias;
    if (relu) v = v > 0.0f ? v : 0.0f;
    c[q] = v;
  }
}

// C[0:mr, 0:nr] (+)= one 6-row panel of A times one 16-column panel of B.
MP_AVX2 void MicroKernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t mr, int64_t nr,
                         bool accumulate, const float* bias, const float* col_bias, bool relu) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, ap += kMR, bp += kNR) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);  // caller-packed B may be unaligned
    __m256 a = _mm256_broadcast_ss(ap);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(ap + 1);
    c10 = _mm256_fmadd_ps(a, b0, c10);
    c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(ap + 2);
    c20 = _mm256_fmadd_ps(a, b0, c20);
    c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(ap + 3);
    c30 = _mm256_fmadd_ps(a, b0, c30);
    c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(ap + 4);
    c40 = _mm256_fmadd_ps(a, b0, c40);
    c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(ap + 5);
    c50 = _mm256_fmadd_ps(a, b0, c50);
    c51 = _mm256_fmadd_ps(a, b1, c51);
  }
  const __m256 rows[kMR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t r = 0; r < mr; ++r) {
    StoreRow(rows[r][0], rows[r][1], c + r * ldc, nr, accumulate, bias != nullptr ? bias + r : nullptr, col_bias,
             relu);
  }
}

// The same for a last panel of at most R (< 6) real rows: R rows of
// accumulators only, so no FMAs go to the panel's zero padding.
template <int R>
MP_AVX2 void MicroKernelRows(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int64_t mr,
                             int64_t nr, bool accumulate, const float* bias, const float* col_bias, bool relu) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p, ap += kMR, bp += kNR) {
    const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
    }
  }
  for (int64_t r = 0; r < mr; ++r) {
    StoreRow(lo[r], hi[r], c + r * ldc, nr, accumulate, bias != nullptr ? bias + r : nullptr, col_bias, relu);
  }
}

MP_AVX2 void GemmAvx2(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                      float* c, int64_t ldc, const GemmEpilogue& ep, bool trans_b, const float* b_packed,
                      const float* a_packed, PackBuffers& buf) {
  for (int64_t jc = 0; jc < n; jc += kNC) {
    const int64_t nc = n - jc < kNC ? n - jc : kNC;
    for (int64_t pc = 0; pc < k; pc += kKC) {
      const int64_t kc = k - pc < kKC ? k - pc : kKC;
      const bool accumulate = pc > 0, last = pc + kc == k;
      if (b_packed != nullptr) {
        // Panels of the whole depth k: panel jr of this block starts at row pc.
      } else if (trans_b) {
        PackBTransposed(b + jc * ldb + pc, ldb, kc, nc, buf.b.get());
      } else {
        PackB(b + pc * ldb + jc, ldb, kc, nc, buf.b.get());
      }
      for (int64_t ic = 0; ic < m; ic += kMC) {
        const int64_t mc = m - ic < kMC ? m - ic : kMC;
        if (a_packed == nullptr) PackA(a + ic * lda + pc, lda, mc, kc, buf.a.get());
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = nc - jr < kNR ? nc - jr : kNR;
          for (int64_t ir = 0; ir < mc; ir += kMR) {
            const int64_t mr = mc - ir < kMR ? mc - ir : kMR;
            const float* bias = last && ep.row_bias != nullptr ? ep.row_bias + ic + ir : nullptr;
            const float* col_bias = last && ep.col_bias != nullptr ? ep.col_bias + jc + jr : nullptr;
            const float* bp = b_packed != nullptr ? b_packed + ((jc + jr) * k + pc * kNR) : buf.b.get() + jr * kc;
            // A packed whole: panels of 6 rows over all of k (see SgemmPackA).
            const float* ap = a_packed != nullptr ? a_packed + ((ic + ir) * k + pc * kMR) : buf.a.get() + ir * kc;
            float* const cp = c + (ic + ir) * ldc + jc + jr;
            const bool relu = last && ep.relu;
            if (mr <= 2) {
              MicroKernelRows<2>(kc, ap, bp, cp, ldc, mr, nr, accumulate, bias, col_bias, relu);
            } else if (mr <= 4) {
              MicroKernelRows<4>(kc, ap, bp, cp, ldc, mr, nr, accumulate, bias, col_bias, relu);
            } else {
              MicroKernel(kc, ap, bp, cp, ldc, mr, nr, accumulate, bias, col_bias, relu);
            }
          }
        }
      }
    }
  }
}

#endif  // MP_HAVE_AVX2_KERNEL

}  // namespace

bool SgemmUsesAvx2() {
#if MP_HAVE_AVX2_KERNEL
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         std::getenv("MODELPRESS_NO_AVX2") == nullptr;
  return ok;
#else
  return false;
#endif
}

void Sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, const GemmEpilogue& ep, bool trans_b) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i) std::fill_n(c + i * ldc, n, 0.0f);
    ApplyEpilogue(m, n, c, ldc, ep);
    return;
  }
#if MP_HAVE_AVX2_KERNEL
  if (SgemmUsesAvx2()) {
    thread_local PackBuffers buf;
    GemmAvx2(m, n, k, a, lda, b, ldb, c, ldc, ep, trans_b, nullptr, nullptr, buf);
    return;
  }
#endif
  EigenGemm(m, n, k, a, lda, b, ldb, c, ldc, ep, trans_b);
}

int64_t SgemmPackedASize(int64_t m, int64_t k) { return (m + kMR - 1) / kMR * kMR * k; }

void SgemmPackA(int64_t m, int64_t k, const float* a, int64_t lda, float* out) {
  for (int64_t i = 0; i < m; i += kMR, out += kMR * k) {
    for (int64_t r = 0; r < kMR; ++r) {
      for (int64_t p = 0; p < k; ++p) out[p * kMR + r] = i + r < m ? a[(i + r) * lda + p] : 0.0f;
    }
  }
}

void SgemmPackedB(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b_packed, float* c,
                  int64_t ldc, const GemmEpilogue& ep, const float* a_packed) {
  if (m <= 0 || n <= 0) return;
#if MP_HAVE_AVX2_KERNEL
  if (k > 0 && SgemmUsesAvx2()) {
    thread_local PackBuffers buf;
    GemmAvx2(m, n, k, a, lda, nullptr, 0, c, ldc, ep, false, b_packed, a_packed, buf);
    return;
  }
#endif
  // Callers take this path only with the AVX2 kernel; scalar loops keep it
  // correct anyway.
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const float* bcol = b_packed + (j / kNR) * k * kNR + j % kNR;
      float sum = 0.0f;
      for (int64_t p = 0; p < k; ++p) {
        const float av = a_packed != nullptr ? a_packed[(i / kMR) * k * kMR + p * kMR + i % kMR] : a[i * lda + p];
        sum += av * bcol[p * kNR];
      }
      c[i * ldc + j] = sum;
    }
  }
  ApplyEpilogue(m, n, c, ldc, ep);
}

}  // namespace modelpress::runtime
