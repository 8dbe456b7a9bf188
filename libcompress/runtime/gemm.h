// Single-precision GEMM for the executor's Conv and MatMul kernels:
// C = A * B (+ bias per row of C) (then max(0, .) when relu is set), all
// row-major with leading dimensions. On CPUs with AVX2 and FMA (checked at
// run time) a packed, blocked kernel written with intrinsics runs; elsewhere
// Eigen's portable build does.
#pragma once

#include <cstdint>

namespace modelpress::runtime {

struct GemmEpilogue {
  const float* row_bias = nullptr;  // m values, value i added to row i of C, or nullptr
  bool relu = false;                // clamp C at zero after the biases (NaN to 0, as the Relu kernel)
  const float* col_bias = nullptr;  // n values, value j added to column j of C, or nullptr
};

// C[m, n] (leading dim ldc) = A[m, k] (lda) * B[k, n] (ldb), then the epilogue.
// With trans_b, B is given as its transpose: [n, k] (ldb). C must not alias
// A or B.
void Sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
           int64_t ldc, const GemmEpilogue& epilogue = {}, bool trans_b = false);

// Whether Sgemm uses the AVX2/FMA kernel on this CPU (and SgemmPackedB may
// be called).
bool SgemmUsesAvx2();

// Columns per panel of a packed B.
constexpr int64_t kGemmPanel = 16;

// As Sgemm, with B already packed by the caller: panel P holds columns
// [16P, 16P + 16) as k rows of 16 values (B[p][16P + q] at
// b_packed[(P * k + p) * 16 + q]); a last partial panel is padded with any
// finite values. Only when SgemmUsesAvx2().
// a_packed, when not null, replaces A (a and lda are then unused): A packed
// once by SgemmPackA, for callers that multiply the same A many times.
void SgemmPackedB(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b_packed, float* c,
                  int64_t ldc, const GemmEpilogue& epilogue = {}, const float* a_packed = nullptr);

// A[m, k] (lda) packed for SgemmPackedB: SgemmPackedASize(m, k) floats.
int64_t SgemmPackedASize(int64_t m, int64_t k);
void SgemmPackA(int64_t m, int64_t k, const float* a, int64_t lda, float* out);

}  // namespace modelpress::runtime
