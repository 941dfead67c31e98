// AVX2+FMA row softmax of the fused attention (this file alone gets -mavx2 -mfma; reached
// through the dispatch in attention.cpp when use_avx2()).
//
// Why its own: the attention rows are short (S = 64 keys in the Transformer benchmark) and
// there are many (B·H·T = 8192 per call there). The generic softmax_rows, written for the
// compiler to vectorise, took 0.43 ms for 8192 x 64 on one thread (~3 cycles an element):
// its max is an OpenMP simd reduction and exp_f32 goes through the auto-vectoriser. Here
// each pass is explicit 8-lane code with one horizontal reduction per pass, exp is
// simd::exp_nonpos (x − max <= 0), and a short tail is a masked vector, not a scalar loop.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "common/simd_avx2.h"

namespace pynn::nn::avx2 {
namespace {
inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
}  // namespace

// y = softmax(x) over each of `rows` rows of S floats (rows S apart), on the calling thread.
// NaN scores are skipped by the max (max_ps keeps its second operand) and come back through
// exp and the sum, as in softmax_rows.
void attention_softmax_rows(const float* x, float* y, int64_t rows, int64_t S) {
  const int64_t full = S / 8 * 8;
  const __m256i tail = simd::tail_mask(S - full);
  const __m256 neg_inf = _mm256_set1_ps(-HUGE_VALF);
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict xr = x + r * S;
    float* __restrict yr = y + r * S;
    __m256 m0 = neg_inf, m1 = neg_inf;
    int64_t j = 0;
    for (; j + 16 <= full; j += 16) {
      m0 = _mm256_max_ps(_mm256_loadu_ps(xr + j), m0);
      m1 = _mm256_max_ps(_mm256_loadu_ps(xr + j + 8), m1);
    }
    if (j < full) m0 = _mm256_max_ps(_mm256_loadu_ps(xr + j), m0);
    if (full < S)  // masked-off lanes -inf: they do not move the max
      m1 = _mm256_max_ps(_mm256_blendv_ps(neg_inf, _mm256_maskload_ps(xr + full, tail), _mm256_castsi256_ps(tail)),
                         m1);
    const __m256 vm = _mm256_set1_ps(hmax(_mm256_max_ps(m0, m1)));
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    for (j = 0; j + 16 <= full; j += 16) {
      const __m256 e0 = simd::exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vm));
      const __m256 e1 = simd::exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(xr + j + 8), vm));
      _mm256_storeu_ps(yr + j, e0);
      _mm256_storeu_ps(yr + j + 8, e1);
      s0 = _mm256_add_ps(s0, e0);
      s1 = _mm256_add_ps(s1, e1);
    }
    if (j < full) {
      const __m256 e0 = simd::exp_nonpos(_mm256_sub_ps(_mm256_loadu_ps(xr + j), vm));
      _mm256_storeu_ps(yr + j, e0);
      s0 = _mm256_add_ps(s0, e0);
    }
    if (full < S) {
      const __m256 e = _mm256_and_ps(simd::exp_nonpos(_mm256_sub_ps(_mm256_maskload_ps(xr + full, tail), vm)),
                                     _mm256_castsi256_ps(tail));
      _mm256_maskstore_ps(yr + full, tail, e);
      s1 = _mm256_add_ps(s1, e);
    }
    const __m256 inv = _mm256_set1_ps(1.f / hsum(_mm256_add_ps(s0, s1)));
    for (j = 0; j < full; j += 8) _mm256_storeu_ps(yr + j, _mm256_mul_ps(_mm256_loadu_ps(yr + j), inv));
    if (full < S) _mm256_maskstore_ps(yr + full, tail, _mm256_mul_ps(_mm256_maskload_ps(yr + full, tail), inv));
  }
}

}  // namespace pynn::nn::avx2
