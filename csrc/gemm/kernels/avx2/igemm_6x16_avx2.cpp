// AVX2+FMA microkernel of the implicit-GEMM convolution (conv/igemm.cpp is its
// frame; compiled with -mavx2 -mfma and only reached after CPUID dispatch).
//
// Register plan as the 6x16 GEMM kernel: 12 ymm accumulators (6 pixels × 2×8
// channels), 2 ymm for the k step of the packed kernel, broadcasts of A. The
// difference is where A comes from: six row pointers into the NHWC input per
// tap instead of a packed k-major panel, so A is never copied; the broadcasts
// read x (hot in L1: neighbouring pixels share most of their taps).
#include <immintrin.h>

#include "gemm/kernels/kernels.h"

namespace pynn::gemm::avx2 {

void igemm_6x16(int64_t taps, int64_t run, const float* const* ind, const float* b, float* c, int64_t rs_c, int mr,
                int nr, bool accumulate, const float* bias, Act act, float act_alpha) {
  // Column masks for a partial tile (nr < 16): maskload/maskstore never touch masked-out lanes.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
  const bool full = mr == MR && nr == NR;
  __m256 acc[MR][2];
  for (int r = 0; r < MR; ++r) {
    if (accumulate && r < mr) {
      acc[r][0] = full ? _mm256_loadu_ps(c + r * rs_c) : _mm256_maskload_ps(c + r * rs_c, m0);
      acc[r][1] = full ? _mm256_loadu_ps(c + r * rs_c + 8) : _mm256_maskload_ps(c + r * rs_c + 8, m1);
    } else {
      acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    }
  }
  __m256 c00 = acc[0][0], c01 = acc[0][1], c10 = acc[1][0], c11 = acc[1][1], c20 = acc[2][0], c21 = acc[2][1];
  __m256 c30 = acc[3][0], c31 = acc[3][1], c40 = acc[4][0], c41 = acc[4][1], c50 = acc[5][0], c51 = acc[5][1];
  for (int64_t t = 0; t < taps; ++t, ind += MR) {
    const float* __restrict a0 = ind[0];
    const float* __restrict a1 = ind[1];
    const float* __restrict a2 = ind[2];
    const float* __restrict a3 = ind[3];
    const float* __restrict a4 = ind[4];
    const float* __restrict a5 = ind[5];
    for (int64_t q = 0; q < run; ++q, b += NR) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
      __m256 av = _mm256_broadcast_ss(a0 + q);
      c00 = _mm256_fmadd_ps(av, b0, c00);
      c01 = _mm256_fmadd_ps(av, b1, c01);
      av = _mm256_broadcast_ss(a1 + q);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
      av = _mm256_broadcast_ss(a2 + q);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
      av = _mm256_broadcast_ss(a3 + q);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
      av = _mm256_broadcast_ss(a4 + q);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
      av = _mm256_broadcast_ss(a5 + q);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
  }
  acc[0][0] = c00; acc[0][1] = c01; acc[1][0] = c10; acc[1][1] = c11; acc[2][0] = c20; acc[2][1] = c21;
  acc[3][0] = c30; acc[3][1] = c31; acc[4][0] = c40; acc[4][1] = c41; acc[5][0] = c50; acc[5][1] = c51;
  // ReLU (the common conv activation) is applied in registers with the bias; other
  // activations run over the stored tile (act_tile) while it is still in L1.
  const bool relu_here = bias && act == Act::Relu;
  if (bias) {
    const __m256 bi0 = _mm256_loadu_ps(bias), bi1 = _mm256_loadu_ps(bias + 8);
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      acc[r][0] = _mm256_add_ps(acc[r][0], bi0);
      acc[r][1] = _mm256_add_ps(acc[r][1], bi1);
      if (relu_here) {  // max(v, 0) with v first: a NaN stays NaN, as relu_f32
        acc[r][0] = _mm256_max_ps(zero, acc[r][0]);
        acc[r][1] = _mm256_max_ps(zero, acc[r][1]);
      }
    }
  }
  if (full) {
    for (int r = 0; r < MR; ++r) {
      _mm256_storeu_ps(c + r * rs_c, acc[r][0]);
      _mm256_storeu_ps(c + r * rs_c + 8, acc[r][1]);
    }
  } else {
    for (int r = 0; r < mr; ++r) {
      _mm256_maskstore_ps(c + r * rs_c, m0, acc[r][0]);
      _mm256_maskstore_ps(c + r * rs_c + 8, m1, acc[r][1]);
    }
  }
  if (bias && !relu_here) act_tile(act, c, rs_c, mr, nr, act_alpha);  // the activation comes with the last pass, as the bias does
}

}  // namespace pynn::gemm::avx2
