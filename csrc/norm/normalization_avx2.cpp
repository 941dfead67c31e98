// AVX2+FMA build of the layer-norm row kernels (this file alone gets -mavx2 -mfma);
// reached only through the dispatch in normalization.cpp when use_avx2().
#include <immintrin.h>

#include <cstdint>

namespace pynn::avx2 {
namespace {
// Σx and Σx² of a row in double: 16 floats a step into eight independent accumulators, so
// the adds and FMAs (4-cycle latency) are throughput-bound rather than one chain long.
inline void ln_row_moments(const float* __restrict x, int64_t c, double* sum, double* sum_sq) {
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0, q0 = s0, q1 = s0, q2 = s0, q3 = s0;
  int64_t j = 0;
  for (; j + 16 <= c; j += 16) {
    const __m256 a = _mm256_loadu_ps(x + j), b = _mm256_loadu_ps(x + j + 8);
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a)), a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    const __m256d b0 = _mm256_cvtps_pd(_mm256_castps256_ps128(b)), b1 = _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1));
    s0 = _mm256_add_pd(s0, a0), s1 = _mm256_add_pd(s1, a1), s2 = _mm256_add_pd(s2, b0), s3 = _mm256_add_pd(s3, b1);
    q0 = _mm256_fmadd_pd(a0, a0, q0), q1 = _mm256_fmadd_pd(a1, a1, q1);
    q2 = _mm256_fmadd_pd(b0, b0, q2), q3 = _mm256_fmadd_pd(b1, b1, q3);
  }
  for (; j + 8 <= c; j += 8) {
    const __m256 a = _mm256_loadu_ps(x + j);
    const __m256d a0 = _mm256_cvtps_pd(_mm256_castps256_ps128(a)), a1 = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    s0 = _mm256_add_pd(s0, a0), s1 = _mm256_add_pd(s1, a1);
    q0 = _mm256_fmadd_pd(a0, a0, q0), q1 = _mm256_fmadd_pd(a1, a1, q1);
  }
  alignas(32) double sv[4], qv[4];
  _mm256_store_pd(sv, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  _mm256_store_pd(qv, _mm256_add_pd(_mm256_add_pd(q0, q1), _mm256_add_pd(q2, q3)));
  double s = (sv[0] + sv[1]) + (sv[2] + sv[3]), q = (qv[0] + qv[1]) + (qv[2] + qv[3]);
  for (; j < c; ++j) {
    const double v = x[j];
    s += v;
    q += v * v;
  }
  *sum = s;
  *sum_sq = q;
}
}  // namespace
}  // namespace pynn::avx2
#define PYNN_LN_ROW_MOMENTS 1

#define PYNN_ISA avx2
#include "norm/normalization_impl.h"
