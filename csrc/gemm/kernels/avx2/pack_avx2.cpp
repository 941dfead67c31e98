// AVX2 packing of a full 6-row panel of row-major A (the common layout of
// activations). The scalar loop does 6 strided reads per k step; here 8 k
// steps of all 6 rows are loaded as 6 vectors, transposed in registers (8x8
// with 2 don't-care rows) and written as 8 overlapping 8-float stores of which
// the first 6 floats count. For the conv-like shapes (n = 64) packing A is a
// visible share of the time, so it is worth the ISA-specific code.
#include <immintrin.h>

#include "gemm/kernels/kernels.h"

namespace pynn::gemm::avx2 {

// Rows x[0..8) transposed: column q (element q of every row) stored at d + q * ld,
// q = 0..7 in order (pack_a's 8-float stores overlap, each later one wins).
static inline void transpose8_store(const __m256* x, float* d, int64_t ld) {
  const __m256 u0 = _mm256_unpacklo_ps(x[0], x[1]), u1 = _mm256_unpackhi_ps(x[0], x[1]);
  const __m256 u2 = _mm256_unpacklo_ps(x[2], x[3]), u3 = _mm256_unpackhi_ps(x[2], x[3]);
  const __m256 u4 = _mm256_unpacklo_ps(x[4], x[5]), u5 = _mm256_unpackhi_ps(x[4], x[5]);
  const __m256 u6 = _mm256_unpacklo_ps(x[6], x[7]), u7 = _mm256_unpackhi_ps(x[6], x[7]);
  const __m256 v0 = _mm256_shuffle_ps(u0, u2, 0x44), v1 = _mm256_shuffle_ps(u0, u2, 0xEE);
  const __m256 v2 = _mm256_shuffle_ps(u1, u3, 0x44), v3 = _mm256_shuffle_ps(u1, u3, 0xEE);
  const __m256 v4 = _mm256_shuffle_ps(u4, u6, 0x44), v5 = _mm256_shuffle_ps(u4, u6, 0xEE);
  const __m256 v6 = _mm256_shuffle_ps(u5, u7, 0x44), v7 = _mm256_shuffle_ps(u5, u7, 0xEE);
  _mm256_storeu_ps(d + 0 * ld, _mm256_permute2f128_ps(v0, v4, 0x20));
  _mm256_storeu_ps(d + 1 * ld, _mm256_permute2f128_ps(v1, v5, 0x20));
  _mm256_storeu_ps(d + 2 * ld, _mm256_permute2f128_ps(v2, v6, 0x20));
  _mm256_storeu_ps(d + 3 * ld, _mm256_permute2f128_ps(v3, v7, 0x20));
  _mm256_storeu_ps(d + 4 * ld, _mm256_permute2f128_ps(v0, v4, 0x31));
  _mm256_storeu_ps(d + 5 * ld, _mm256_permute2f128_ps(v1, v5, 0x31));
  _mm256_storeu_ps(d + 6 * ld, _mm256_permute2f128_ps(v2, v6, 0x31));
  _mm256_storeu_ps(d + 7 * ld, _mm256_permute2f128_ps(v3, v7, 0x31));
}

void pack_a_panel6_rowmajor(int64_t kc, const float* a, int64_t rs_a, float* dst) {
  const float* r0 = a;
  const float* r1 = a + rs_a;
  const float* r2 = a + 2 * rs_a;
  const float* r3 = a + 3 * rs_a;
  const float* r4 = a + 4 * rs_a;
  const float* r5 = a + 5 * rs_a;
  int64_t p = 0;
  // Each chunk's last store spills 2 floats into the next k step, which a later
  // chunk or the scalar tail overwrites: hence p + 8 < kc, never <=.
  for (; p + 8 < kc; p += 8) {
    const __m256 x[8] = {_mm256_loadu_ps(r0 + p), _mm256_loadu_ps(r1 + p), _mm256_loadu_ps(r2 + p),
                         _mm256_loadu_ps(r3 + p), _mm256_loadu_ps(r4 + p), _mm256_loadu_ps(r5 + p),
                         _mm256_setzero_ps(), _mm256_setzero_ps()};
    transpose8_store(x, dst + p * MR, MR);
  }
  for (; p < kc; ++p) {
    float* d = dst + p * MR;
    d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p];
    d[3] = r3[p]; d[4] = r4[p]; d[5] = r5[p];
  }
}

// Full NR-column panels [p0, p1) of a row-major B block (cs_b == 1), walked
// row by row: each k row of B is read once, front to back, and its 16-float
// pieces go to the p1 - p0 panel streams. The panel-by-panel order of the
// generic code reads B in 64-byte pieces rs_b apart instead, which measured
// slower when B comes from L3 (it is 400 KiB for a 784x128 Dense weight).
void pack_b_rowmajor(int64_t kc, const float* b, int64_t rs_b, float* dst, int64_t p0, int64_t p1) {
  for (int64_t p = 0; p < kc; ++p) {
    const float* src = b + p * rs_b + p0 * NR;
    float* d = dst + p0 * kc * NR + p * NR;
    for (int64_t jp = p0; jp < p1; ++jp, src += NR, d += kc * NR) {
      _mm256_storeu_ps(d, _mm256_loadu_ps(src));
      _mm256_storeu_ps(d + 8, _mm256_loadu_ps(src + 8));
    }
  }
}

// One full NR-column panel of a column-major B (rs_b == 1: B = W^T of a
// row-major W, the dX = dY W^T of a Dense backward): dst[p * NR + j] =
// b[j * cs_b + p]. Each column is contiguous in p, so 8 k steps of 8 columns
// are 8 loads, an 8x8 register transpose, and 8 stores of 8 floats, instead
// of 64 scalar loads and stores.
void pack_b_panel16_colmajor(int64_t kc, const float* b, int64_t cs_b, float* dst) {
  int64_t p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int j0 = 0; j0 < NR; j0 += 8) {
      const float* s0 = b + j0 * cs_b + p;
      __m256 x[8];
      for (int q = 0; q < 8; ++q) x[q] = _mm256_loadu_ps(s0 + q * cs_b);
      transpose8_store(x, dst + p * NR + j0, NR);
    }
  }
  for (; p < kc; ++p)
    for (int j = 0; j < NR; ++j) dst[p * NR + j] = b[j * cs_b + p];
}

}  // namespace pynn::gemm::avx2
