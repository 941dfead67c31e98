// Few-row kernel for the pre-packed GEMM (packed.cpp): rows [0, R) of A (read
// in place, unit column stride) against P packed B panels at once (panel q at
// b + q * ps). The unpacked-A edge kernel (ua_rows) takes one panel, so for
// R = 1 it carries only 2 accumulator chains: each k step waits out one FMA
// latency (batch-1 Dense / GEMV measured latency-bound). P panels give
// 2 * R * P independent chains (8-12). Every element's sum runs over k in the
// same order with the same FMAs and epilogue (store_rows) as ua_rows, so the
// result is bit-identical to the one-panel path.
#include <immintrin.h>

#include <cstdint>

#include "gemm/config.h"
#include "gemm/kernels/avx2/store_avx2.h"

namespace pynn::gemm::avx2 {
namespace {

template <int R, int P>
void rows_panels(int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t ps, float beta,
                 float* c, int64_t rs_c, const float* bias) {
  __m256 lo[P][R], hi[P][R];
  for (int q = 0; q < P; ++q)
    for (int r = 0; r < R; ++r) lo[q][r] = hi[q][r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < k; ++p) {
    __m256 x[R];
    for (int r = 0; r < R; ++r) x[r] = _mm256_broadcast_ss(a + r * rs_a + p);
    for (int q = 0; q < P; ++q) {
      const float* bq = b + q * ps + p * NR;
      const __m256 b0 = _mm256_loadu_ps(bq), b1 = _mm256_loadu_ps(bq + 8);
      for (int r = 0; r < R; ++r) {
        lo[q][r] = _mm256_fmadd_ps(x[r], b0, lo[q][r]);
        hi[q][r] = _mm256_fmadd_ps(x[r], b1, hi[q][r]);
      }
    }
  }
  for (int q = 0; q < P; ++q)
    store_rows(lo[q], hi[q], R, alpha, beta, c + q * NR, rs_c, bias ? bias + q * NR : nullptr);
}

}  // namespace

// Panels per call for mr rows (0: use the one-panel edge kernel).
int packed_rows_group(int64_t mr) { return mr == 1 ? 4 : (mr <= 3 ? 2 : 0); }

// Rows [0, mr) x packed_rows_group(mr) full panels: c rows rs_c apart, 16 * P
// columns with unit stride, all written; bias: 16 * P floats or nullptr.
void packed_rows_panels(int64_t mr, int64_t k, float alpha, const float* a, int64_t rs_a, const float* b, int64_t ps,
                        float beta, float* c, int64_t rs_c, const float* bias) {
  switch (mr) {
    case 1: return rows_panels<1, 4>(k, alpha, a, rs_a, b, ps, beta, c, rs_c, bias);
    case 2: return rows_panels<2, 2>(k, alpha, a, rs_a, b, ps, beta, c, rs_c, bias);
    default: return rows_panels<3, 2>(k, alpha, a, rs_a, b, ps, beta, c, rs_c, bias);
  }
}

}  // namespace pynn::gemm::avx2
