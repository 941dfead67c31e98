// AVX2 + FMA 6x16 microkernel (this file alone is compiled with -mavx2 -mfma;
// it is only called after CPUID dispatch says the CPU has them).
//
// Register plan (16 ymm): 12 accumulators (6 rows x 2 vectors of 8 columns),
// 2 for the current k step of packed B, 1-2 for broadcasts of A. Each k step is
// 2 loads + 6 broadcasts + 12 FMAs; 12 independent FMA chains cover the 2 FMA
// pipes x 4-cycle latency of Zen 3. k is unrolled by 4 and packed A is
// prefetched ahead so the broadcasts hit L1.
#include <immintrin.h>

#include "gemm/kernel.h"

namespace pynn {
namespace gemm {

#define PYNN_KSTEP(ap, bp)                                                  \
  do {                                                                      \
    const __m256 b0 = _mm256_loadu_ps(bp);                                  \
    const __m256 b1 = _mm256_loadu_ps((bp) + 8);                            \
    __m256 av = _mm256_broadcast_ss(ap);                                    \
    c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01); \
    av = _mm256_broadcast_ss((ap) + 1);                                     \
    c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11); \
    av = _mm256_broadcast_ss((ap) + 2);                                     \
    c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21); \
    av = _mm256_broadcast_ss((ap) + 3);                                     \
    c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31); \
    av = _mm256_broadcast_ss((ap) + 4);                                     \
    c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41); \
    av = _mm256_broadcast_ss((ap) + 5);                                     \
    c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51); \
  } while (0)

void sgemm_avx2_6x16(int64_t k, float alpha, const float* a, const float* b,
                     float beta, float* c, int64_t rs_c, const float* bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();

  // C is written once at the end: start pulling its rows in now.
  for (int r = 0; r < MR; ++r) _mm_prefetch(reinterpret_cast<const char*>(c + r * rs_c), _MM_HINT_T0);

  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    _mm_prefetch(reinterpret_cast<const char*>(a + 64), _MM_HINT_T0);
    PYNN_KSTEP(a, b);
    PYNN_KSTEP(a + 6, b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(a + 80), _MM_HINT_T0);
    PYNN_KSTEP(a + 12, b + 32);
    PYNN_KSTEP(a + 18, b + 48);
    a += 4 * MR;
    b += 4 * NR;
  }
  for (; p < k; ++p) {
    PYNN_KSTEP(a, b);
    a += MR;
    b += NR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  const __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
  const __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
  // Same operation order as the generic kernel: alpha*ab, + beta*c, + bias.
  auto store = [&](float* cr, __m256 lo, __m256 hi) {
    lo = _mm256_mul_ps(va, lo);
    hi = _mm256_mul_ps(va, hi);
    if (beta != 0.f) {
      lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), lo);
      hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), hi);
    }
    if (bias) {
      lo = _mm256_add_ps(lo, bias0);
      hi = _mm256_add_ps(hi, bias1);
    }
    _mm256_storeu_ps(cr, lo);
    _mm256_storeu_ps(cr + 8, hi);
  };
  store(c, c00, c01);
  store(c + rs_c, c10, c11);
  store(c + 2 * rs_c, c20, c21);
  store(c + 3 * rs_c, c30, c31);
  store(c + 4 * rs_c, c40, c41);
  store(c + 5 * rs_c, c50, c51);
}

#undef PYNN_KSTEP

}  // namespace gemm
}  // namespace pynn
