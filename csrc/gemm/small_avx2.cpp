// The small-matrix driver of the GEMM frame (BLIS's "sup" path), AVX2: products
// of at most kSmallWork multiply-adds run here on one thread, without packing or
// blocking. Intrinsics, so this frame file is an *_avx2.cpp (built with -mavx2
// -mfma, reached only after CPUID dispatch).
#include <immintrin.h>

#include <vector>

#include "gemm/kernels/avx2/store_avx2.h"
#include "gemm/kernels/kernels.h"

namespace pynn::gemm::avx2 {

// Unpacked ("sup") path for small products, where packing and blocking cost
// more than they save: 6x16 register tiles read A through its strides
// (broadcasts) and B rows in place (needs unit column stride), masked loads at
// the right edge. Each finished tile goes to a local buffer and only its valid
// part reaches C, with the whole epilogue applied there.
void sgemm_small(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t rs_a, int64_t cs_a,
                 const float* b, int64_t rs_b, float beta, float* c, int64_t rs_c, int64_t cs_c, const float* bias,
                 Act act, float act_alpha) {
  alignas(32) float acc[MR * NR];
  // The right-edge panel (n % 16 columns) is copied into a zero-padded k x 16
  // buffer: masked loads (vmaskmovps) straight from B measured 2-3x slower here.
  static thread_local std::vector<float> edge;
  for (int64_t j = 0; j < n; j += NR) {
    const int64_t nr = n - j < NR ? n - j : NR;
    const bool full = nr == NR;
    const float* bpanel = b + j;
    int64_t rs_bp = rs_b;
    if (!full) {
      edge.assign(static_cast<size_t>(k) * NR, 0.f);
      for (int64_t p = 0; p < k; ++p)
        for (int64_t q = 0; q < nr; ++q) edge[p * NR + q] = b[p * rs_b + j + q];
      bpanel = edge.data();
      rs_bp = NR;
    }
    for (int64_t i = 0; i < m; i += MR) {
      const int64_t mr = m - i < MR ? m - i : MR;
      // Rows past the edge repeat the last valid row (computed, never stored).
      const float* ar[MR];
      for (int r = 0; r < MR; ++r) ar[r] = a + (i + (r < mr ? r : mr - 1)) * rs_a;
      __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
      __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
      __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
      __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
      __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
      __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
      const float* bp = bpanel;
      for (int64_t p = 0; p < k; ++p, bp += rs_bp) {
        const __m256 b0 = _mm256_loadu_ps(bp);
        const __m256 b1 = _mm256_loadu_ps(bp + 8);
        const int64_t off = p * cs_a;
        __m256 av = _mm256_broadcast_ss(ar[0] + off);
        c00 = _mm256_fmadd_ps(av, b0, c00); c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(ar[1] + off);
        c10 = _mm256_fmadd_ps(av, b0, c10); c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(ar[2] + off);
        c20 = _mm256_fmadd_ps(av, b0, c20); c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(ar[3] + off);
        c30 = _mm256_fmadd_ps(av, b0, c30); c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(ar[4] + off);
        c40 = _mm256_fmadd_ps(av, b0, c40); c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(ar[5] + off);
        c50 = _mm256_fmadd_ps(av, b0, c50); c51 = _mm256_fmadd_ps(av, b1, c51);
      }
      _mm256_store_ps(acc + 0 * NR, c00); _mm256_store_ps(acc + 0 * NR + 8, c01);
      _mm256_store_ps(acc + 1 * NR, c10); _mm256_store_ps(acc + 1 * NR + 8, c11);
      _mm256_store_ps(acc + 2 * NR, c20); _mm256_store_ps(acc + 2 * NR + 8, c21);
      _mm256_store_ps(acc + 3 * NR, c30); _mm256_store_ps(acc + 3 * NR + 8, c31);
      _mm256_store_ps(acc + 4 * NR, c40); _mm256_store_ps(acc + 4 * NR + 8, c41);
      _mm256_store_ps(acc + 5 * NR, c50); _mm256_store_ps(acc + 5 * NR + 8, c51);
      // Epilogue, same order as the packed kernels: alpha*ab + beta*c + bias, then act.
      const float* bias_j = bias ? bias + j : nullptr;
      if (full && cs_c == 1) {
        store_tile(acc, mr, alpha, beta, c + i * rs_c + j, rs_c, bias_j);
        act_tile(act, c + i * rs_c + j, rs_c, mr, nr, act_alpha);
        continue;
      }
      // Edge or strided C: finish the tile locally, then copy its valid part.
      for (int64_t r = 0; r < mr; ++r) {
        const float* cr = c + (i + r) * rs_c + j * cs_c;
        for (int64_t q = 0; q < nr; ++q) {
          float v = alpha * acc[r * NR + q];
          if (beta != 0.f) v = beta * cr[q * cs_c] + v;
          if (bias) v += bias_j[q];
          acc[r * NR + q] = v;
        }
      }
      act_tile(act, acc, NR, mr, nr, act_alpha);
      for (int64_t r = 0; r < mr; ++r)
        for (int64_t q = 0; q < nr; ++q) c[(i + r) * rs_c + (j + q) * cs_c] = acc[r * NR + q];
    }
  }
}

}  // namespace pynn::gemm::avx2
