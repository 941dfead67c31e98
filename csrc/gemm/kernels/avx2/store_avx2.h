// The AVX2 kernels' epilogue (alpha, beta, bias on a 6x16 tile), shared by the
// microkernels and the small-matrix driver. Included only by *_avx2.cpp units,
// and `static inline`: no copy of it can leak into generic code.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "gemm/config.h"

namespace pynn::gemm::avx2 {

// The epilogue shared by the kernels: rows [0, mr) of c = alpha * acc + beta * c +
// bias, in the generic kernel's operation order; acc row r is (lo[r], hi[r]).
static inline void store_rows(const __m256* lo, const __m256* hi, int64_t mr, float alpha, float beta, float* c,
                              int64_t rs_c, const float* bias) {
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  for (int64_t r = 0; r < mr; ++r) {
    float* cr = c + r * rs_c;
    __m256 l = _mm256_mul_ps(va, lo[r]), h = _mm256_mul_ps(va, hi[r]);
    if (beta != 0.f) {
      l = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), l);
      h = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), h);
    }
    if (bias) {
      l = _mm256_add_ps(l, bias0);
      h = _mm256_add_ps(h, bias1);
    }
    _mm256_storeu_ps(cr, l);
    _mm256_storeu_ps(cr + 8, h);
  }
}

// The same from a 6x16 accumulator tile in memory (row-major, 16 floats per row).
static inline void store_tile(const float* acc, int64_t mr, float alpha, float beta, float* c, int64_t rs_c,
                              const float* bias) {
  __m256 lo[MR], hi[MR];
  for (int r = 0; r < MR; ++r) {
    lo[r] = _mm256_load_ps(acc + r * NR);
    hi[r] = _mm256_load_ps(acc + r * NR + 8);
  }
  store_rows(lo, hi, mr, alpha, beta, c, rs_c, bias);
}

}  // namespace pynn::gemm::avx2
