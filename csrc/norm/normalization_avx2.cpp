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

// One backward row (see the portable ln_backward_row_sums in normalization_impl.h): Σg and
// Σg·x̂ in two pairs of vector accumulators (16 floats a step), the column partials updated
// in place. x̂ = (x − mu)·inv and g = dy·gamma are rounded as the portable loop rounds them.
inline void ln_backward_row_sums(const float* __restrict xr, const float* __restrict dyr, const float* __restrict gm,
                                 float mu, float inv, int64_t c, float* __restrict pb, float* __restrict pg,
                                 float* sum_g, float* sum_gx) {
  const __m256 vmu = _mm256_set1_ps(mu), vinv = _mm256_set1_ps(inv);
  __m256 sg0 = _mm256_setzero_ps(), sg1 = sg0, sx0 = sg0, sx1 = sg0;
  auto step = [&](int64_t j, __m256& sg, __m256& sx) {
    const __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vmu), vinv);
    const __m256 d = _mm256_loadu_ps(dyr + j);
    const __m256 g = _mm256_mul_ps(d, _mm256_loadu_ps(gm + j));
    sg = _mm256_add_ps(sg, g);
    sx = _mm256_fmadd_ps(g, xh, sx);
    _mm256_storeu_ps(pb + j, _mm256_add_ps(_mm256_loadu_ps(pb + j), d));
    _mm256_storeu_ps(pg + j, _mm256_fmadd_ps(d, xh, _mm256_loadu_ps(pg + j)));
  };
  int64_t j = 0;
  for (; j + 16 <= c; j += 16) {
    step(j, sg0, sx0);
    step(j + 8, sg1, sx1);
  }
  if (j + 8 <= c) {
    step(j, sg0, sx0);
    j += 8;
  }
  alignas(32) float a[8], b[8];
  _mm256_store_ps(a, _mm256_add_ps(sg0, sg1));
  _mm256_store_ps(b, _mm256_add_ps(sx0, sx1));
  float sg = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  float sx = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
  for (; j < c; ++j) {
    const float xh = (xr[j] - mu) * inv;
    const float gj = dyr[j] * gm[j];
    sg += gj;
    sx += gj * xh;
    pb[j] += dyr[j];
    pg[j] += dyr[j] * xh;
  }
  *sum_g = sg;
  *sum_gx = sx;
}
}  // namespace
}  // namespace pynn::avx2
#define PYNN_LN_ROW_MOMENTS 1
#define PYNN_LN_BACKWARD_ROW_SUMS 1

#define PYNN_ISA avx2
#include "norm/normalization_impl.h"
